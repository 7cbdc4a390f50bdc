"""Property tests: whatever arrives (arbitrary JSON and bytes, wrong types, huge strings, deep
nesting, unicode, path- and query-like ids), every reader and parser ends in one clear result or
one of our errors, never an unhandled exception."""

from __future__ import annotations

import asyncio
import io
import json
import math
import os
import re
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from unittest import mock

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from genesys_enrich.dead_letters import DeadLetter, DeadLetterFile, read_dead_letters
from genesys_enrich.decoding import MAX_DEPTH, Undecodable, decode_json, line_bytes, line_text
from genesys_enrich.errors import ConfigError, EventError
from genesys_enrich.events import NotHandled, parse_event
from genesys_enrich.genesys.requests import DryRun, write_request
from genesys_enrich.hosts.cli import replay_item
from genesys_enrich.hosts.inputs import Item, Unreadable, count_events, read_events
from genesys_enrich.models import (
    Conflict,
    Outcome,
    SourceResult,
    SourceStatus,
    Status,
    WriteRequest,
)
from genesys_enrich.pipeline import Pipeline
from genesys_enrich.settings import ENV_PREFIX, SEED_ENV_NAMES, Settings, load_settings
from genesys_enrich.testing import customer_start_event, sample, seed_event

property_test = settings(
    deadline=None,  # a slow, busy machine must not fail a property
    # The autouse fixtures (a clean environment, a scratch working directory) hold for every
    # example alike.
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

HOSTILE_TEXT = st.sampled_from(
    [
        "../x",
        "../../etc/passwd",
        "a?b#c",
        "%2F",
        "..%2F..%2F",
        "a/b",
        "",
        " ",
        "\n",
        "\x00",
        "\u202e",  # right-to-left override
        "\ud800",  # a lone surrogate
        "\uff18f7e6d5c-4b3a-2109-8765-4321fedcba09",  # a full-width digit
        "8f7e6d5c-4b3a-2109-8765-4321fedcba09\n",
        "8f7e6d5c-4b3a-2109-8765-4321fedcba09?x=1",
        "8F7E6D5C-4B3A-2109-8765-4321FEDCBA09",
        "tel:+1 (555) 010-0199",
        "x" * 300,
        "x" * 300_000,
    ]
)
TEXT = st.text() | HOSTILE_TEXT
SCALARS = st.none() | st.booleans() | st.integers() | st.floats() | TEXT
JSON = st.recursive(
    SCALARS,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(TEXT, children, max_size=4),
    max_leaves=12,
)


def nested(depth: int, leaf: Any = 1) -> Any:
    value = leaf
    for level in range(depth):
        value = [value] if level % 2 else {"k": value}
    return value


DEEP = st.integers(min_value=1, max_value=400).map(nested)
"""Deep, yet shallow enough for json.dumps and for Hypothesis to print a failing example."""
VALUES = JSON | DEEP
DEEP_TEXT = st.integers(min_value=1, max_value=5_000).map(lambda depth: "[" * depth + "]" * depth)
"""Nesting as text, as deep as any file may hold."""


def _set(event: dict[str, Any], path: tuple[str, ...], value: Any) -> dict[str, Any]:
    node = event
    for key in path[:-1]:
        child = node.get(key)
        if not isinstance(child, dict):
            return event  # the path is gone: an earlier change replaced a parent
        node = child
    node[path[-1]] = value
    return event


SEED_PATHS = [
    ("id",),
    ("source",),
    ("detail",),
    ("detail", "interactionId"),
    ("detail", "externalCustomerId"),
    ("detail", "type"),
    ("detail", "direction"),
]
PARTNER_PATHS = [
    ("id",),
    ("source",),
    ("detail-type",),
    ("detail",),
    ("detail", "metadata"),
    ("detail", "metadata", "CorrelationId"),
    ("detail", "eventBody"),
    *(
        ("detail", "eventBody", key)
        for key in (
            "conversationId",
            "participantId",
            "externalContactId",
            "conversationExternalContactIds",
            "ani",
            "dnis",
            "addressFrom",
            "mediaType",
            "direction",
        )
    ),
]


@st.composite
def events(draw: st.DrawFn) -> Any:
    """A real event of either shape with some fields replaced by anything, or anything at all."""
    kind = draw(st.sampled_from(["seed", "partner", "sample", "anything"]))
    if kind == "anything":
        return draw(VALUES)
    if kind == "seed":
        event, paths = seed_event(), SEED_PATHS
    elif kind == "partner":
        event = customer_start_event(external_contact_id="uwu", ani="tel:+15550100199")
        paths = PARTNER_PATHS
    else:
        event, paths = sample("customer-start-chat"), PARTNER_PATHS
    for path in draw(st.lists(st.sampled_from(paths), max_size=4)):
        event = _set(event, path, draw(VALUES))
    return event


_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


@property_test
@given(event=events())
def test_any_event_parses_to_a_safe_interaction_or_says_why_not(event: Any) -> None:
    """An event is parsed, skipped or refused with our error; what parses has ids that are
    UUIDs and only those, so no id can steer the write to another path."""
    try:
        interaction = parse_event(event)
    except (EventError, NotHandled) as error:
        message = str(error)
        assert message
        return
    assert _UUID.fullmatch(interaction.interaction_id)
    assert interaction.participant_id is None or _UUID.fullmatch(interaction.participant_id)
    for key in interaction.customer_keys.values():
        assert 0 < len(key) <= 256
        assert not re.search(r"[\x00-\x1f\x7f]", key)
    path = write_request(interaction, {"x": 1}).path
    assert re.fullmatch(r"/api/v2/[a-z0-9/-]+", path)


@property_test
@given(event=events())
def test_any_event_ends_in_one_outcome_that_serialises(event: Any) -> None:
    """Through the pipeline, any event ends in one outcome, never an internal error, and the
    outcome is one line of JSON."""
    outcome = asyncio.run(Pipeline([], [], DryRun()).process(event))
    assert not outcome.reason.startswith("internal error")
    line = json.dumps(outcome.to_json())
    assert len(line.splitlines()) == 1


@property_test
@given(
    data=st.binary() | (TEXT | DEEP_TEXT).map(lambda text: text.encode("utf-8", "surrogatepass"))
)
def test_decode_json_returns_a_value_or_undecodable(data: bytes) -> None:
    try:
        decode_json(data)
    except Undecodable as error:
        message = str(error)
        assert message


@property_test
@given(value=VALUES)
def test_decode_json_reads_what_json_wrote_unless_too_deep(value: Any) -> None:
    text = json.dumps(value)
    try:
        decoded = decode_json(text.encode())
    except Undecodable as error:
        message = str(error)
        assert message == f"nested more than {MAX_DEPTH} levels deep"
        return
    assert json.dumps(decoded) == text


@property_test
@given(line=st.binary())
def test_a_line_kept_as_text_gives_back_its_bytes(line: bytes) -> None:
    """Whatever its bytes, a line kept in a dead letter can be written out exactly."""
    text = line_text(line)
    assert line_bytes(text) == line.rstrip(b"\r\n")
    assert json.loads(json.dumps(text)) == text


# The readers of our own files --------------------------------------------------------------

LINES = st.lists(
    st.binary().map(lambda data: data.replace(b"\n", b""))
    | VALUES.map(lambda value: json.dumps(value).encode())
    | DEEP_TEXT.map(str.encode)
    | st.sampled_from([b'{"event": null, "reason": 5, "attempts": -1}', b"\xff", b"\r"]),
    max_size=6,
)


@contextmanager
def scratch() -> Iterator[Path]:
    with tempfile.TemporaryDirectory() as folder:
        yield Path(folder)


@property_test
@given(lines=LINES, suffix=st.sampled_from([".jsonl", ".json", ".txt"]))
def test_any_input_file_gives_one_item_per_event_and_keeps_every_bad_line(
    lines: list[bytes], suffix: str
) -> None:
    """Files and stdin of any bytes are read into items and unreadables, as many as
    count_events promised, and each unreadable line is kept exactly."""
    data = b"\n".join(lines) + b"\n"
    with scratch() as folder:
        path = folder / f"events{suffix}"
        path.write_bytes(data)
        items = list(read_events([str(path)]))
        assert count_events([str(path)]) == len(items)
    from_stdin = list(read_events(["-"], stdin=io.BytesIO(data)))
    assert len(from_stdin) == len(items)
    for item in items:
        assert isinstance(item, Item | Unreadable)
        if isinstance(item, Unreadable):
            assert item.text is not None
            assert line_bytes(item.text) in data
            assert "is not JSON: " in item.reason


@property_test
@given(lines=LINES)
def test_any_dead_letter_file_replays_each_line_alone(lines: list[bytes]) -> None:
    """Every line of a dead-letter file, whatever it holds, becomes one item to replay, and one
    that fails again is kept as it was: written back and read again, it is the same input."""
    with scratch() as folder:
        path = folder / "dead-letter.jsonl"
        path.write_bytes(b"\n".join(lines) + b"\n")
        letters = list(read_dead_letters(path))
        assert [number for number, _ in letters] == [
            number for number, line in enumerate(lines, start=1) if line.strip()
        ]
        items = [replay_item(number, letter, path) for number, letter in letters]
        again = folder / "again.jsonl"
        with DeadLetterFile(again) as rewritten:
            for item in items:
                rewritten.add(_failed_again(item))
        letters_again = read_dead_letters(again) if items else iter(())
        reread = [replay_item(number, letter, again) for number, letter in letters_again]
    assert [_input_of(item) for item in reread] == [_input_of(item) for item in items]
    assert [item.attempts for item in reread] == [item.attempts + 1 for item in items]


def _failed_again(item: Item | Unreadable) -> DeadLetter:
    outcome = Outcome(Status.FAILED, "still failing")
    if isinstance(item, Unreadable):
        return DeadLetter.of(
            None, outcome, origin=item.origin, attempts=item.attempts + 1, text=item.text
        )
    return DeadLetter.of(item.event, outcome, origin=item.origin, attempts=item.attempts + 1)


def _input_of(item: Item | Unreadable) -> tuple[str, str | None]:
    if isinstance(item, Unreadable):
        return item.origin, item.text
    return item.origin, json.dumps(item.event)


@property_test
@given(
    event=VALUES,
    text=st.none() | st.text(),
    reason=st.text(),
    origin=st.text(),
    attempts=st.integers(min_value=0, max_value=10**6),
    retryable=st.booleans(),
)
def test_a_dead_letter_reads_back_as_written(
    event: Any, text: str | None, reason: str, origin: str, attempts: int, retryable: bool
) -> None:
    letter = DeadLetter(
        event=event,
        reason=reason,
        attempts=attempts,
        origin=origin,
        event_id="e-1",
        retryable=retryable,
        failed_at="2026-01-02T03:04:05.000+00:00",
        text=text,
    )
    with scratch() as folder:
        path = folder / "dead.jsonl"
        with DeadLetterFile(path) as file:
            file.add(letter)
        [(number, read)] = list(read_dead_letters(path))
    assert number == 1
    if read.text is not None and read.event is None and letter.event is not None:
        # Too deep to read back as a dead letter: kept whole as the line's text instead.
        assert json.loads(read.text) == json.loads(json.dumps(letter.to_json()))
        return
    assert json.dumps(read.to_json()) == json.dumps(letter.to_json())


# Outcomes -----------------------------------------------------------------------------------

FIELDS = st.dictionaries(TEXT, JSON, max_size=5)
OUTCOMES = st.builds(
    Outcome,
    status=st.sampled_from(Status),
    reason=TEXT,
    event_id=st.none() | TEXT,
    interaction_id=st.none() | TEXT,
    fields=FIELDS,
    provenance=st.dictionaries(TEXT, TEXT, max_size=3),
    conflicts=st.lists(st.builds(Conflict, field=TEXT, kept=TEXT, values=FIELDS), max_size=2).map(
        tuple
    ),
    sources=st.lists(
        st.builds(
            SourceResult,
            source=TEXT,
            status=st.sampled_from(SourceStatus),
            duration_ms=st.floats(min_value=0, max_value=1e9),
            error=st.none() | TEXT,
        ),
        max_size=3,
    ).map(tuple),
    retryable=st.booleans(),
    duration_ms=st.floats(min_value=0, max_value=1e9),
    request=st.none() | st.builds(WriteRequest, method=st.just("PATCH"), path=TEXT, body=FIELDS),
)


@property_test
@given(outcome=OUTCOMES)
def test_an_outcome_is_one_line_of_json_that_reads_back(outcome: Outcome) -> None:
    """What --output writes for an outcome is one line, and reads back to the same values."""
    line = json.dumps(outcome.to_json())
    assert len(line.splitlines()) == 1
    read = json.loads(line)
    assert read["status"] == outcome.status.value
    assert read["reason"] == outcome.reason
    assert json.dumps(read["fields"]) == json.dumps(outcome.fields)
    assert read["event_id"] == outcome.event_id


# Settings -----------------------------------------------------------------------------------

SECRET = "s3cret-never-shown"
SETTING_KEYS = st.sampled_from(
    [
        "environment",
        "client_id",
        "client_secret",
        "api_url",
        "timeout_seconds",
        "retry_attempts",
        "requests_per_minute",
        "sources",
        "mappers",
        "topics",
        "concurrency",
        "source_timeout_seconds",
        "duplicate_window_seconds",
        "duplicate_capacity",
        "base_url",
        "api_key",
    ]
) | st.text(min_size=1, max_size=10)
SECTIONS = st.sampled_from(
    ["genesys", "pipeline", "intake", "plugins.rest", "plugins.sql", "plugins"]
) | st.text(min_size=1, max_size=8)
TOML_VALUES = st.recursive(
    st.booleans() | st.integers() | st.floats() | TEXT,
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=5), children, max_size=3)
    ),
    max_leaves=8,
)


def toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)  # inf, -inf and nan are TOML too
    if isinstance(value, str):
        return json.dumps(value)  # JSON's string escapes are TOML's
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(item) for item in value) + "]"
    pairs = (f"{json.dumps(key)} = {toml_value(item)}" for key, item in value.items())
    return "{" + ", ".join(pairs) + "}"


TOML_DOCUMENTS = st.dictionaries(
    SECTIONS, st.dictionaries(SETTING_KEYS, TOML_VALUES, max_size=4), max_size=4
).map(
    lambda sections: "".join(
        f"[{'.'.join(json.dumps(part) for part in section.split('.'))}]\n"
        + "".join(f"{json.dumps(key)} = {toml_value(value)}\n" for key, value in keys.items())
        for section, keys in sections.items()
    ).encode("utf-8", "surrogatepass")
)
ENV_NAMES = st.sampled_from(
    [
        *SEED_ENV_NAMES,
        f"{ENV_PREFIX}GENESYS__TIMEOUT_SECONDS",
        f"{ENV_PREFIX}GENESYS__CLIENT_SECRET",
        f"{ENV_PREFIX}GENESYS",
        f"{ENV_PREFIX}PIPELINE__SOURCES",
        f"{ENV_PREFIX}PIPELINE__CONCURRENCY",
        f"{ENV_PREFIX}PIPELINE",
        f"{ENV_PREFIX}INTAKE__DUPLICATE_WINDOW_SECONDS",
        f"{ENV_PREFIX}PLUGINS",
        f"{ENV_PREFIX}PLUGINS__REST__API_KEY",
        f"{ENV_PREFIX}PLUGINS__REST__FIELDS",
    ]
)
ENV_TEXT = st.text(st.characters(exclude_categories=["Cs"], exclude_characters="\x00"))
ENV_VALUES = (
    ENV_TEXT
    | VALUES.map(json.dumps)
    | DEEP_TEXT
    | st.sampled_from(["{" * 5_000, "1e999", "nan", "-inf", "1" * 5_000])
)


SECRET_PLACES = st.sampled_from(
    [
        "GENESYS_CLIENT_SECRET",
        "CRM_API_KEY",
        f"{ENV_PREFIX}GENESYS__CLIENT_SECRET",
        f"{ENV_PREFIX}PLUGINS__REST__API_KEY",
        f"{ENV_PREFIX}PLUGINS__SQL__PASSWORD",
        f"{ENV_PREFIX}PLUGINS__SQL__DSN",
        "[genesys] client_secret",
        "[plugins.rest] api_key",
        "[plugins.hubspot] token",
        "[plugins.sql] dsn",
    ]
)


@property_test
@given(
    document=TOML_DOCUMENTS | st.binary() | ENV_TEXT.map(str.encode),
    environment=st.dictionaries(ENV_NAMES, ENV_VALUES, max_size=3),
    secret_at=SECRET_PLACES,
)
def test_any_settings_load_or_say_what_is_wrong_and_never_show_a_secret(
    document: bytes, environment: dict[str, str], secret_at: str
) -> None:
    """A settings file of any content with any environment gives settings or one ConfigError;
    a secret set among them shows neither in the error nor in the settings' repr."""
    secret = f"postgresql://app:{SECRET}@db/crm" if secret_at.lower().endswith("dsn") else SECRET
    if secret_at.startswith("["):
        table, key = secret_at[1:].split("] ")
        document += f"\n[{table}]\n{key} = {json.dumps(secret)}\n".encode()
    else:
        environment = environment | {secret_at: secret}
    with scratch() as folder, mock.patch.dict(os.environ, environment):
        path = folder / "settings.toml"
        path.write_bytes(document)
        try:
            loaded = load_settings(path)
        except ConfigError as error:
            message = str(error)
            assert message.startswith(("settings file ", "invalid settings"))
            assert SECRET not in message
            return
    assert isinstance(loaded, Settings)
    assert SECRET not in repr(loaded)
    for seconds in (loaded.genesys.timeout_seconds, loaded.intake.duplicate_window_seconds):
        assert math.isfinite(seconds)
