"""Read events for the command line: JSON files (one event or a list), JSONL, directories, stdin.

JSONL is read line by line, so a file of any length runs in flat memory; a ``.jsonl`` file always
is, whatever its first line. A JSON document (a ``.json`` file, or stdin that is not JSONL) is read
whole; one that does not parse is read line by line after all. A line that is not JSON becomes an
:class:`Unreadable` item in the stream, so it gets an outcome like any other event.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from genesys_enrich.decoding import (
    Undecodable,
    decode_json,
    line_bytes,
    line_text,
    numbered_lines,
)

_SUFFIXES = (".json", ".jsonl")
"""The files a directory given as input contributes."""


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


def read_events(names: Iterable[str], stdin: IO[Any] | None = None) -> Iterator[Item | Unreadable]:
    """Every event in the named files, directories (their ``*.json`` and ``*.jsonl``), or ``-``."""
    for name in names:
        if name == "-":
            yield from _read_stream("stdin", _lines(stdin or sys.stdin), jsonl=False)
            continue
        files = _files(name)
        if files is None:
            yield Unreadable(name, f"{name}: no such file or directory")
            continue
        for file in files:
            try:
                with file.open("rb") as stream:
                    yield from _read_stream(str(file), stream, jsonl=file.suffix == ".jsonl")
            except OSError as error:
                yield Unreadable(str(file), f"{file} cannot be read: {error.strerror or error}")


def missing_inputs(names: Iterable[str]) -> list[str]:
    """The names that are neither ``-`` nor an existing file or directory."""
    return [name for name in names if name != "-" and _files(name) is None]


def input_reading(names: Iterable[str], path: Path) -> str | None:
    """The input among ``names`` that would read ``path`` (the file itself, or a directory it
    sits in with a suffix that is read), or ``None``. Paths are compared resolved."""
    target = path.resolve()
    for name in names:
        if name == "-":
            continue
        given = Path(name).resolve()
        if given == target or (given.is_dir() and _read_in_directory(target, given)):
            return name
    return None


def _read_in_directory(file: Path, directory: Path) -> bool:
    return file.parent == directory and file.suffix in _SUFFIXES


def count_events(names: Iterable[str]) -> int | None:
    """How many events :func:`read_events` will yield, for a progress bar's ETA; ``None`` when the
    input includes stdin. JSONL lines are counted, not decoded, so this is quick."""
    total = 0
    for name in names:
        if name == "-":
            return None
        files = _files(name)
        if files is None:
            total += 1  # read_events yields one Unreadable for it
            continue
        for file in files:
            try:
                with file.open("rb") as stream:
                    total += _count_stream(stream, jsonl=file.suffix == ".jsonl")
            except OSError:
                total += 1
    return total


def _files(name: str) -> list[Path] | None:
    """The file, or the directory's JSON and JSONL files in order; ``None`` when neither exists."""
    path = Path(name)
    if path.is_dir():
        return sorted(p for p in path.iterdir() if p.suffix in _SUFFIXES and p.is_file())
    return [path] if path.is_file() else None


def _lines(stream: IO[Any]) -> Iterator[bytes]:
    """Lines as bytes, from a binary stream or a text one (stdin may be either)."""
    binary = getattr(stream, "buffer", None)
    if binary is not None:
        yield from binary
    else:
        for line in stream:
            yield line if isinstance(line, bytes) else line_bytes(line)


def _read_stream(
    origin: str, lines: Iterable[bytes], *, jsonl: bool
) -> Iterator[Item | Unreadable]:
    """A ``.jsonl`` input line by line. Anything else: JSONL when its first line is a JSON value on
    its own; otherwise one JSON document or, when it is not one, line by line after all, so each bad
    line fails on its own and the good ones still run."""
    numbered = numbered_lines(lines)
    first = next(numbered, None)
    if first is None:
        return
    try:
        value = decode_json(first[1])
    except Undecodable:
        if jsonl:
            yield from _read_lines(origin, [first])
        else:
            rest = list(numbered)
            yield from _read_document(origin, [first, *rest])
            return
    else:
        yield from _items(origin, value, line=first[0])
    yield from _read_lines(origin, numbered)


def _read_lines(origin: str, numbered: Iterable[tuple[int, bytes]]) -> Iterator[Item | Unreadable]:
    for number, line in numbered:
        try:
            yield Item(f"{origin}:{number}", decode_json(line))
        except Undecodable as error:
            yield Unreadable(
                f"{origin}:{number}",
                f"{origin} line {number} is not JSON: {error}",
                line_text(line),
            )


def _read_document(origin: str, numbered: list[tuple[int, bytes]]) -> Iterator[Item | Unreadable]:
    try:
        value = decode_json(b"".join(line for _, line in numbered))
    except Undecodable:
        yield from _read_lines(origin, numbered)
        return
    yield from _items(origin, value, line=None)


def _items(origin: str, value: Any, line: int | None) -> Iterator[Item]:
    if isinstance(value, list):
        for index, event in enumerate(value):
            yield Item(f"{origin}[{index}]", event)
    else:
        yield Item(f"{origin}:{line}" if line else origin, value)


def _count_stream(lines: Iterable[bytes], *, jsonl: bool) -> int:
    """How many items :func:`_read_stream` makes of ``lines``."""
    numbered = (line for line in lines if line.strip())
    first = next(numbered, None)
    if first is None:
        return 0
    try:
        value = decode_json(first)
    except Undecodable:
        if jsonl:
            return 1 + sum(1 for _ in numbered)
        rest = list(numbered)
        try:
            value = decode_json(first + b"".join(rest))
        except Undecodable:
            return 1 + len(rest)
        return len(value) if isinstance(value, list) else 1
    head = len(value) if isinstance(value, list) else 1
    return head + sum(1 for _ in numbered)
