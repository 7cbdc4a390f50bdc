"""Read events for the command line: JSON files (one event or a list), JSONL, directories, stdin.

JSONL is read line by line, so a file of any length runs in flat memory. A line or file that is not
JSON becomes an :class:`Unreadable` item in the stream, so it gets an outcome like any other event.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any


@dataclass(frozen=True, slots=True)
class Unreadable:
    """Input that could not be decoded into an event."""

    origin: str
    reason: str
    text: str | None = None
    """The input as read, kept so a dead letter loses nothing (``None`` for a missing file)."""
    attempts: int = 0
    """Times it was tried before (from a dead-letter file)."""


@dataclass(frozen=True, slots=True)
class Item:
    """One event from the input and where it came from (``file:line`` or ``file[index]``)."""

    origin: str
    event: Any
    attempts: int = 0
    """Times it was tried before (from a dead-letter file)."""


def read_events(names: Iterable[str], stdin: IO[str] | None = None) -> Iterator[Item | Unreadable]:
    """Every event in the named files, directories (their ``*.json`` and ``*.jsonl``), or ``-``."""
    for name in names:
        if name == "-":
            yield from _read_stream("stdin", stdin or sys.stdin)
            continue
        path = Path(name)
        if path.is_dir():
            files = sorted(p for p in path.iterdir() if p.suffix in (".json", ".jsonl"))
        elif path.is_file():
            files = [path]
        else:
            yield Unreadable(name, f"{name}: no such file or directory")
            continue
        for file in files:
            with file.open(encoding="utf-8") as stream:
                yield from _read_stream(str(file), stream)


def _read_stream(origin: str, stream: IO[str]) -> Iterator[Item | Unreadable]:
    """JSONL when the first line is a JSON value on its own; otherwise one JSON document."""
    first = ""
    for line in stream:
        if line.strip():
            first = line
            break
    if not first:
        return
    try:
        value = json.loads(first)
    except json.JSONDecodeError:
        yield from _read_document(origin, first + stream.read())
        return
    yield from _items(origin, value, line=1)
    for number, line in enumerate(stream, start=2):
        if not line.strip():
            continue
        try:
            yield Item(f"{origin}:{number}", json.loads(line))
        except json.JSONDecodeError as error:
            yield Unreadable(
                f"{origin}:{number}",
                f"{origin} line {number} is not JSON: {error.msg}",
                line.rstrip("\n"),
            )


def _read_document(origin: str, text: str) -> Iterator[Item | Unreadable]:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as error:
        yield Unreadable(origin, f"{origin} is neither JSON nor JSONL: {error}", text)
        return
    yield from _items(origin, value, line=None)


def _items(origin: str, value: Any, line: int | None) -> Iterator[Item]:
    if isinstance(value, list):
        for index, event in enumerate(value):
            yield Item(f"{origin}[{index}]", event)
    else:
        yield Item(f"{origin}:{line}" if line else origin, value)


def count_events(names: Iterable[str]) -> int | None:
    """How many events :func:`read_events` will yield, for a progress bar's ETA; ``None`` when the
    input includes stdin. JSONL lines are counted, not decoded, so this is quick."""
    total = 0
    for name in names:
        if name == "-":
            return None
        path = Path(name)
        if path.is_dir():
            files = [p for p in path.iterdir() if p.suffix in (".json", ".jsonl")]
        elif path.is_file():
            files = [path]
        else:
            total += 1  # read_events yields one Unreadable for it
            continue
        for file in files:
            with file.open(encoding="utf-8") as stream:
                total += _count_stream(stream)
    return total


def _count_stream(stream: IO[str]) -> int:
    for line in stream:
        if line.strip():
            first = line
            break
    else:
        return 0
    try:
        value = json.loads(first)
    except json.JSONDecodeError:
        try:
            value = json.loads(first + stream.read())
        except json.JSONDecodeError:
            return 1
        return len(value) if isinstance(value, list) else 1
    head = len(value) if isinstance(value, list) else 1
    return head + sum(1 for line in stream if line.strip())
