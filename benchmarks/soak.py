"""Soak: thousands of events with random faults through `genesys-enrich run`, then `replay` with
the faults off, checked event by event.

    python3 -m uv run python benchmarks/soak.py --events 10000 [--seed 1] [--json FILE]

The events go to the loopback fakes, faults on:

* Genesys: 5% of API requests answer 503; three bursts of 429 with ``Retry-After: 1``; every token
  revoked once mid-run; connections refused for a few seconds; 2% of interactions have ended (404);
  1% are refused 403 (a role lacking the permission: a misconfiguration);
* the CRM: 3% of lookups answer 502, 1% hang past the source timeout, and its key is rotated for
  1% of the lookups (401: a misconfiguration);
* 1.2% hostile lines among them: nested past any parser's limit, not JSON, not UTF-8, truncated,
  ids that are paths, wrong types, control characters, over 256 KB.

`genesys-enrich run --concurrency 64` takes them in a child process (whose memory is sampled),
then the faults are turned off and `genesys-enrich replay` takes the dead-letter file. Every CRM
customer's fields are derived from its id, so each write can be checked against the customer its
event names. The checks: exactly one outcome per input line; no write carries another customer's
data; every transient or misconfigured failure lands after replay; every event that should be
written is; the hostile lines, and only they, stay in the dead-letter file; memory flat. The
figures print as tables and go to a JSON file. Fault decisions are seeded (``--seed``), so a rerun
injects the same faults; what timing decides (which events a refused-connection spell catches)
varies a little.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from genesys_enrich.genesys.requests import attribute_value
from genesys_enrich.hosts.report import table
from genesys_enrich.testing import FakeCrm, FakeGenesys, customer_start_event, seed_event

SELECTED = ("crmAccountId", "lifetimeValue", "loyaltyTier", "lastPurchaseDate")
"""The fields [plugins.fields] writes by default."""
TIERS = ("Bronze", "Silver", "Gold", "Platinum")
CRM_KEY = "soak-crm-key"

GOOD_KINDS = {
    "seed": 46,  # the seed's shape, looked up by customer id: written to the interaction context
    "contact": 40,  # Genesys' customer.start, by external contact id: participant attributes
    "unknown": 5,  # a customer the CRM does not know: skipped
    "no_key": 3,  # no customer key at all: skipped
    "other_topic": 3,  # customer.end: skipped
    "ended": 2,  # Genesys answers 404: skipped
    "forbidden": 1,  # Genesys answers 403 until the role is fixed: written after replay
}
"""Each event's kind, and its weight in 100."""
WRITTEN = frozenset({"seed", "contact", "forbidden"})
HOSTILE_SHARE = 0.012
HOSTILE_KINDS = (
    "deep_array",
    "deep_object",
    "not_json",
    "truncated",
    "not_utf8",
    "path_id",
    "wrong_types",
    "control_chars",
    "huge",
    "scalar",
    "deep_but_parseable",
    "no_source",
)


def customer_fields(customer_id: str) -> dict[str, Any]:
    """What the fake CRM holds for a customer: every value derived from the id."""
    digest = hashlib.sha256(customer_id.encode()).digest()
    return {
        "crmAccountId": f"ACCT-{customer_id}",
        "lifetimeValue": int.from_bytes(digest[:3], "big") / 100,
        "loyaltyTier": TIERS[digest[3] % len(TIERS)],
        "lastPurchaseDate": f"2024-{1 + digest[4] % 12:02d}-{1 + digest[5] % 28:02d}T10:00:00Z",
        "segment": f"segment-{customer_id}",
    }


@dataclass
class Line:
    """One input line and what it should end as."""

    data: bytes
    kind: str
    event_id: str | None = None
    interaction_id: str | None = None
    customer: str | None = None
    context: bool = False
    """Written to the interaction context (seed shape) rather than participant attributes."""

    @property
    def hostile(self) -> bool:
        return self.kind in HOSTILE_KINDS

    def expected_write(self) -> dict[str, Any]:
        assert self.customer is not None
        values = {name: customer_fields(self.customer)[name] for name in SELECTED}
        if self.context:
            return values
        return {name: attribute_value(value) for name, value in values.items()}


def build_lines(events: int, rng: random.Random) -> list[Line]:
    customers = [f"C-{number:06d}" for number in range(max(50, events // 5))]
    kinds, weights = zip(*GOOD_KINDS.items(), strict=True)
    lines = [_good(rng.choices(kinds, weights)[0], rng, customers) for _ in range(events)]
    hostile = round(events * HOSTILE_SHARE)
    for number in range(hostile):
        kind = HOSTILE_KINDS[number % len(HOSTILE_KINDS)]
        lines.insert(rng.randrange(len(lines) + 1), _hostile(kind, rng))
    return lines


def _uuid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def _json(event: Any) -> bytes:
    return json.dumps(event).encode()


def _good(kind: str, rng: random.Random, customers: list[str]) -> Line:
    event_id, interaction = _uuid(rng), _uuid(rng)
    customer = rng.choice(customers)
    if kind in ("seed", "forbidden", "ended") or (kind == "unknown" and rng.random() < 0.5):
        who = f"U-{rng.getrandbits(32)}" if kind == "unknown" else customer
        event = seed_event(who, interaction_id=interaction, event_id=event_id)
        return Line(_json(event), kind, event_id, interaction, who, context=True)
    topic_kind = {"other_topic": "v2.detail.events.conversation.{id}.customer.end"}
    if kind == "unknown":
        customer = f"U-{rng.getrandbits(32)}"
    event = customer_start_event(
        external_contact_id=None if kind == "no_key" else customer,
        conversation_id=interaction,
        participant_id=_uuid(rng),
        event_id=event_id,
        **({"topic": topic_kind[kind]} if kind in topic_kind else {}),
    )
    return Line(_json(event), kind, event_id, interaction, customer)


def _hostile(kind: str, rng: random.Random) -> Line:
    event_id = _uuid(rng)
    event = seed_event("C-000001", interaction_id=_uuid(rng), event_id=event_id)
    data: bytes
    if kind == "deep_array":
        data = b"[" * 100_000
    elif kind == "deep_object":
        data = b'{"a":' * 50_000 + b"1" + b"}" * 50_000
    elif kind == "not_json":
        data = b"{this line is not json"
    elif kind == "truncated":
        data = _json(event)[:120]
    elif kind == "not_utf8":
        data = b'{"id": "\xff\xfe\xfd", "source": "genesys.cloud"}'
    elif kind == "path_id":
        event["detail"]["interactionId"] = "../../oauth/token"
        data = _json(event)
    elif kind == "wrong_types":
        event["detail"] = ["not", "an", "object"]
        data = _json(event)
    elif kind == "control_chars":
        event["detail"]["externalCustomerId"] = "C-000001\u0000\u001b[2J"
        data = _json(event)
    elif kind == "huge":
        event["detail"]["notes"] = "x" * 300_000
        data = _json(event)
    elif kind == "scalar":
        data = b"42"
    elif kind == "deep_but_parseable":
        nested: Any = {"interactionId": "../x"}
        for _ in range(400):
            nested = {"a": nested}
        event["detail"] = nested
        data = _json(event)
    else:  # no_source
        del event["source"]
        data = _json(event)
    parsed = kind not in ("deep_array", "deep_object", "not_json", "truncated", "not_utf8")
    return Line(data, kind, event_id if parsed and kind != "scalar" else None)


@dataclass
class Trigger:
    at: float
    """Share of the expected CRM lookups after which it fires."""
    name: str
    action: Callable[[], None]
    fired: bool = False


@dataclass
class Faults:
    """The faults the run meets, and the record of what was injected."""

    genesys: FakeGenesys
    crm: FakeCrm
    refuse_seconds: float
    burst: int
    rotation: int
    """CRM lookups answered 401 after the key is rotated, before it is restored."""
    triggers: list[Trigger] = field(default_factory=list)
    rotated_at: int | None = None

    def __post_init__(self) -> None:
        burst = lambda: self.genesys.fail_next(  # noqa: E731
            429, times=self.burst, on="api", retry_after="1"
        )
        self.triggers = [
            Trigger(0.15, "429 burst", burst),
            Trigger(0.35, "token revoked", self.genesys.revoke_tokens),
            Trigger(0.45, "429 burst", burst),
            Trigger(0.55, "connections refused", self._refuse),
            Trigger(0.75, "429 burst", burst),
            Trigger(0.85, "CRM key rotated", self._rotate),
        ]

    def _refuse(self) -> None:
        self.genesys.refuse_connections(self.refuse_seconds)

    def _rotate(self) -> None:
        self.rotated_at = len(self.crm.requests)
        self.crm.api_key = "rotated-" + CRM_KEY

    def tick(self, progress: float) -> None:
        for trigger in self.triggers:
            if not trigger.fired and progress >= trigger.at:
                trigger.fired = True
                trigger.action()
        if (
            self.rotated_at is not None
            and len(self.crm.requests) >= self.rotated_at + self.rotation
        ):
            self.crm.api_key = CRM_KEY
            self.rotated_at = None

    def off(self) -> None:
        """Heal everything for the replay; ended conversations stay ended."""
        self.genesys.fail_rate = 0.0
        self.genesys.forbidden.clear()
        self.crm.fail_rate = 0.0
        self.crm.hang_rate = 0.0
        self.crm.api_key = CRM_KEY
        self.rotated_at = None


def settings_text(genesys: FakeGenesys, crm: FakeCrm) -> str:
    return f"""
[genesys]
api_url = "{genesys.url}"
login_url = "{genesys.url}"
client_id = "{genesys.client_id}"
client_secret = "{genesys.client_secret}"
requests_per_minute = 1000000
connect_timeout_seconds = 1.0
read_timeout_seconds = 3.0
timeout_seconds = 10.0
retry_wait_initial_seconds = 0.05
retry_wait_max_seconds = 0.5
max_retry_after_seconds = 2.0

[pipeline]
sources = ["rest"]
mappers = ["fields"]
source_timeout_seconds = 1.0

[plugins.rest]
base_url = "{crm.url}"
api_key = "{CRM_KEY}"
timeout_seconds = 0.8
retry_attempts = 2
"""


def _clean_environment() -> dict[str, str]:
    """This environment without anything that would point the command elsewhere."""
    seed_names = {"GENESYS_CLIENT_ID", "GENESYS_CLIENT_SECRET", "GENESYS_ENVIRONMENT"}
    seed_names |= {"GENESYS_API_URL", "GENESYS_LOGIN_URL", "CRM_API_BASE_URL", "CRM_API_KEY"}
    return {
        name: value
        for name, value in os.environ.items()
        if not name.startswith("GENESYS_ENRICH_") and name not in seed_names
    }


def _rss_kb(pid: int) -> int | None:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    for line in status.splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return None


@dataclass
class Child:
    code: int
    seconds: float
    summary: dict[str, Any] | None
    stderr: str
    samples: list[tuple[float, int]]
    """(seconds since start, resident KB), every 0.1 s."""
    cpu_seconds: float

    @property
    def crashed(self) -> bool:
        """It ended without printing its summary: a traceback, not an exit status."""
        return self.summary is None


def run_command(
    args: list[str], workdir: Path, *, on_tick: Callable[[], None] | None = None
) -> Child:
    """Run `genesys-enrich ARGS` in a child process, sampling its memory and calling ``on_tick``
    every 20 ms meanwhile."""
    command = [sys.executable, "-m", "genesys_enrich.hosts.cli", *args]
    started = time.monotonic()
    cpu_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    samples: list[tuple[float, int]] = []
    with (
        (workdir / "stdout.txt").open("w+") as stdout,
        (workdir / "stderr.txt").open("w+") as stderr,
        subprocess.Popen(  # noqa: S603 - this interpreter, our command
            command, cwd=workdir, stdout=stdout, stderr=stderr, env=_clean_environment()
        ) as child,
    ):
        next_sample = 0.0
        while child.poll() is None:
            now = time.monotonic() - started
            if on_tick is not None:
                on_tick()
            if now >= next_sample:
                rss = _rss_kb(child.pid)
                if rss is not None:
                    samples.append((now, rss))
                next_sample = now + 0.1
            time.sleep(0.02)
        stdout.seek(0)
        text = stdout.read().strip()
        stderr.seek(0)
        errors = stderr.read()
    cpu = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu_seconds = cpu.ru_utime + cpu.ru_stime - cpu_before.ru_utime - cpu_before.ru_stime
    try:
        summary = json.loads(text.splitlines()[-1]) if text else None
    except ValueError:
        summary = None
    elapsed = time.monotonic() - started
    return Child(child.returncode, elapsed, summary, errors, samples, cpu_seconds)


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]


def memory(samples: list[tuple[float, int]]) -> dict[str, Any]:
    """Peak resident memory in the first and last quarter of the run, and whether it stayed flat
    (the last within 10% or 8 MB of the first, whichever is larger)."""
    if len(samples) < 8:
        return {"samples": len(samples), "flat": None}
    end = samples[-1][0]
    first = max(kb for t, kb in samples if t <= end / 4)
    last = max(kb for t, kb in samples if t >= end * 3 / 4)
    allowed = max(first * 0.10, 8 * 1024)
    return {
        "samples": len(samples),
        "first_quarter_peak_mb": round(first / 1024, 1),
        "last_quarter_peak_mb": round(last / 1024, 1),
        "growth_mb": round((last - first) / 1024, 1),
        "flat": last - first <= allowed,
    }


def run_soak(events: int, seed: int, workdir: Path) -> dict[str, Any]:
    """Run the soak in ``workdir`` and return its figures and checks."""
    for name in ("run.jsonl", "dead.jsonl", "replay.jsonl"):  # a run appends to dead letters
        (workdir / name).unlink(missing_ok=True)
    rng = random.Random(seed)  # noqa: S311 - a reproducible workload, not a secret
    lines = build_lines(events, rng)
    with (workdir / "events.jsonl").open("wb") as stream:
        for line in lines:
            stream.write(line.data + b"\n")
    customers = {line.customer: customer_fields(line.customer) for line in lines if line.customer}
    known = {key: value for key, value in customers.items() if key.startswith("C-")}
    ended = {line.interaction_id for line in lines if line.kind == "ended"}
    forbidden = {line.interaction_id for line in lines if line.kind == "forbidden"}
    lookups = sum(1 for line in lines if line.customer and line.kind != "other_topic")
    quick = events < 5000
    with (
        FakeGenesys(fail_rate=0.05, seed=seed, missing=ended, forbidden=forbidden) as genesys,  # type: ignore[arg-type]
        FakeCrm(
            known,
            api_key=CRM_KEY,
            fail_rate=0.03,
            fail_status=502,
            hang_rate=0.01,
            hang_seconds=2.0,
            seed=seed,
        ) as crm,
    ):
        faults = Faults(
            genesys,
            crm,
            refuse_seconds=1.0 if quick else 3.0,
            burst=max(10, events // 300),
            rotation=max(5, events // 100),
        )
        (workdir / "settings.toml").write_text(settings_text(genesys, crm))
        common = ["--settings", "settings.toml", "--concurrency", "64", "--quiet", "--json"]
        run = run_command(
            [
                "run",
                "events.jsonl",
                "--output",
                "run.jsonl",
                "--dead-letter",
                "dead.jsonl",
                *common,
            ],
            workdir,
            on_tick=lambda: faults.tick(len(crm.requests) / max(1, lookups)),
        )
        injected = {
            "genesys_503": genesys.statuses[503],
            "genesys_429": genesys.statuses[429],
            "genesys_429_bursts": sum(t.fired for t in faults.triggers if t.name == "429 burst"),
            "token_revoked": int(faults.triggers[1].fired),
            "genesys_401_after_revoke": genesys.statuses[401],
            "genesys_refused_seconds": sum(genesys.refusals),
            "genesys_404_ended": genesys.statuses[404],
            "genesys_403_forbidden": genesys.statuses[403],
            "crm_502": crm.statuses[502],
            "crm_hangs": crm.hangs,
            "crm_401_rotated_key": crm.statuses[401],
            "hostile_lines": sum(line.hostile for line in lines),
        }
        dead_after_run = read_jsonl(workdir / "dead.jsonl")
        faults.off()
        writes_before_replay = len(genesys.writes)
        replay = run_command(["replay", "dead.jsonl", "--output", "replay.jsonl", *common], workdir)
        writes = list(genesys.writes)
    return {
        "events": events,
        "seed": seed,
        "lines": len(lines),
        "injected": injected,
        **check(lines, workdir, dead_after_run, writes, writes_before_replay, run, replay),
    }


def _origin_line(origin: str) -> int | None:
    """The 0-based input line of a dead letter's origin, ``events.jsonl:N``."""
    name, _, number = origin.rpartition(":")
    return int(number) - 1 if name.endswith("events.jsonl") and number.isdigit() else None


def check(
    lines: list[Line],
    workdir: Path,
    dead_after_run: list[dict[str, Any]],
    writes: list[Any],
    writes_before_replay: int,
    run: Child,
    replay: Child,
) -> dict[str, Any]:
    run_outcomes = read_jsonl(workdir / "run.jsonl")
    replay_outcomes = read_jsonl(workdir / "replay.jsonl")
    dead_after_replay = read_jsonl(workdir / "dead.jsonl")
    # In input order; a hostile line may be refused before its id is read.
    one_each = len(run_outcomes) == len(lines) and all(
        outcome["event_id"] == line.event_id or (line.hostile and outcome["event_id"] is None)
        for line, outcome in zip(lines, run_outcomes, strict=False)
    )
    final = {index: outcome for index, outcome in enumerate(run_outcomes)}
    replayed_lines = [_origin_line(letter.get("origin", "")) for letter in dead_after_run]
    for index, outcome in zip(replayed_lines, replay_outcomes, strict=False):
        if index is not None:
            final[index] = outcome
    kept_in_run = [
        i for i, o in enumerate(run_outcomes) if o.get("failure") in ("transient", "misconfigured")
    ]
    unrecovered = [i for i in kept_in_run if final[i]["status"] == "failed" or final[i]["failure"]]
    misclassified = [
        i
        for i, o in enumerate(run_outcomes)
        if o["status"] == "failed" and (o["failure"] == "bad_event") != lines[i].hostile
    ]
    written = Counter(write.interaction_id for write in writes)
    lost = [
        i
        for i, line in enumerate(lines)
        if line.kind in WRITTEN and not written[line.interaction_id]
    ]
    by_interaction = {line.interaction_id: line for line in lines if line.kind in WRITTEN}
    misdirected = sum(
        1
        for write in writes
        if (line := by_interaction.get(write.interaction_id)) is None
        or write.values != line.expected_write()
    )
    expected = {"seed": "enriched", "contact": "enriched", "forbidden": "enriched"}
    wrong_final = [
        i
        for i, line in enumerate(lines)
        if i in final
        and final[i]["status"] != ("failed" if line.hostile else expected.get(line.kind, "skipped"))
    ]
    poison = {i for i, line in enumerate(lines) if line.hostile}
    left = [_origin_line(letter.get("origin", "")) for letter in dead_after_replay]
    checks = {
        "one_outcome_per_line": one_each,
        "every_failure_dead_lettered": len(dead_after_run)
        == sum(o["status"] == "failed" or bool(o.get("failure")) for o in run_outcomes),
        "one_replay_outcome_per_dead_letter": len(replay_outcomes) == len(dead_after_run),
        "lost": len(lost),
        "misdirected": misdirected,
        "unrecovered_after_replay": len(unrecovered),
        "misclassified": len(misclassified),
        "wrong_final_status": len(wrong_final),
        "poison_stays_dead_and_alone": sorted(i for i in left if i is not None) == sorted(poison)
        and len(left) == len(poison),
        "replay_crashed": replay.crashed,
    }
    ok = (
        checks["one_outcome_per_line"]
        and checks["every_failure_dead_lettered"]
        and checks["one_replay_outcome_per_dead_letter"]
        and checks["poison_stays_dead_and_alone"]
        and not any(checks[k] for k in ("lost", "misdirected", "unrecovered_after_replay"))
        and not checks["misclassified"]
        and not checks["wrong_final_status"]
        and not run.crashed
        and not replay.crashed
    )
    return {
        "run": {
            "exit": run.code,
            "crashed": run.crashed,
            "seconds": round(run.seconds, 1),
            "cpu_seconds": round(run.cpu_seconds, 1),
            "statuses": dict(Counter(o["status"] for o in run_outcomes)),
            "failures": dict(Counter(o["failure"] for o in run_outcomes if o["failure"])),
            "dead_letters": len(dead_after_run),
            "writes": writes_before_replay,
            "summary": run.summary,
        },
        "replay": {
            "exit": replay.code,
            "crashed": replay.crashed,
            "seconds": round(replay.seconds, 1),
            "cpu_seconds": round(replay.cpu_seconds, 1),
            "statuses": dict(Counter(o["status"] for o in replay_outcomes)),
            "failures": dict(Counter(o["failure"] for o in replay_outcomes if o["failure"])),
            "dead_letters_left": len(dead_after_replay),
            "writes": len(writes) - writes_before_replay,
            "stderr_tail": replay.stderr[-2000:] if replay.crashed else "",
        },
        "rewrites": sum(count - 1 for count in written.values() if count > 1),
        "memory": memory(run.samples),
        "checks": checks,
        "passed": ok,
        "examples": {
            "lost": [lines[i].kind for i in lost[:5]],
            "unrecovered": [final[i]["reason"][:200] for i in unrecovered[:5]],
            "misclassified": [run_outcomes[i]["reason"][:200] for i in misclassified[:5]],
            "wrong_final": [
                (lines[i].kind, final[i]["status"], final[i]["reason"][:160])
                for i in wrong_final[:5]
            ],
        },
    }


def print_report(result: dict[str, Any]) -> None:
    injected = result["injected"]
    hostile = injected["hostile_lines"]
    print(f"soak: {result['events']:,} events + {hostile} hostile lines, seed {result['seed']}\n")
    print(
        table(["fault injected", "count"], [[name, str(value)] for name, value in injected.items()])
    )
    rows = []
    for phase in ("run", "replay"):
        figures = result[phase]
        for status, count in sorted(figures["statuses"].items()):
            rows.append([phase, status, str(count)])
        for kind, count in sorted(figures["failures"].items()):
            rows.append([phase, f"  failure: {kind}", str(count)])
    print()
    print(table(["phase", "outcome", "events"], rows))
    memory = result["memory"]
    checks = result["checks"]
    print()
    rows = [[name, str(value)] for name, value in checks.items()]
    rows.append(["memory flat", str(memory.get("flat"))])
    print(table(["check", "result"], rows))
    print(
        f"\nrun: {result['run']['seconds']} s, exit {result['run']['exit']}, "
        f"{result['run']['dead_letters']} dead letters; replay: {result['replay']['seconds']} s, "
        f"{result['replay']['dead_letters_left']} left; rewrites: {result['rewrites']}"
    )
    if memory.get("flat") is not None:
        print(
            f"memory (RSS of the run): first quarter peak {memory['first_quarter_peak_mb']} MB, "
            f"last quarter peak {memory['last_quarter_peak_mb']} MB"
        )
    print(f"\n{'PASSED' if result['passed'] else 'FAILED'}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", type=Path, default=Path("soak-report.json"), metavar="FILE")
    parser.add_argument("--keep", type=Path, metavar="DIR", help="work in DIR and keep its files")
    args = parser.parse_args()
    if args.keep:
        args.keep.mkdir(parents=True, exist_ok=True)
        result = run_soak(args.events, args.seed, args.keep)
    else:
        with tempfile.TemporaryDirectory(prefix="soak-") as workdir:
            result = run_soak(args.events, args.seed, Path(workdir))
    args.json.write_text(json.dumps(result, indent=2) + "\n")
    print_report(result)
    print(f"figures: {args.json}")
    return 0 if result["passed"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
