"""Decoding JSON that came from outside: the one function every reader of events uses.

Input files, stdin, dead-letter files (which people edit) and JSON in environment variables are
all decoded by :func:`decode_json`, which raises :class:`Undecodable` for anything it cannot
accept (not JSON, not UTF-8, an integer too long to read, nesting deeper than
:data:`MAX_DEPTH`) and nothing else, so a reader can fail one line and go on with the next.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

MAX_DEPTH = 200
"""The deepest nesting of lists and objects decoded. Far deeper than any event accepted (see
:data:`genesys_enrich.events.MAX_EVENT_DEPTH`), even wrapped in a dead letter; far shallower than
Python's recursion limit (about a thousand), so whatever was read can be written out again (to
an outcome, a log line, a dead letter) from anywhere in the program."""


class Undecodable(ValueError):
    """The data is not JSON that can be accepted; ``str(self)`` says why in a few words."""


def decode_json(data: bytes | str, *, max_depth: int = MAX_DEPTH) -> Any:
    """The JSON value in ``data``: UTF-8 bytes (a leading byte-order mark allowed), or text
    from :func:`line_text`, whose bytes that were not UTF-8 are still refused as such.

    Args:
        max_depth: the deepest nesting accepted. A reader of dead letters, which wrap an event
            in one more level, accepts ``MAX_DEPTH + 1``, so that every event read can be read
            back from its dead letter.

    Raises:
        Undecodable: for every input that is not accepted, whatever the reason.
    """
    try:
        raw = data if isinstance(data, bytes) else line_bytes(data)
        value = json.loads(raw.decode("utf-8-sig"))
    except UnicodeDecodeError as error:
        msg = f"not UTF-8 (byte {error.start + 1} is {error.object[error.start]:#04x})"
        raise Undecodable(msg) from None
    except json.JSONDecodeError as error:
        raise Undecodable(error.msg) from None
    except RecursionError:
        raise Undecodable(_too_deep(max_depth)) from None
    except ValueError as error:  # an integer of more digits than Python converts
        raise Undecodable(str(error).split(":", 1)[0]) from None
    if deeper_than(value, max_depth):
        raise Undecodable(_too_deep(max_depth))
    return value


def _too_deep(limit: int) -> str:
    return f"nested more than {limit} levels deep"


def deeper_than(value: Any, limit: int) -> bool:
    """Whether lists and objects nest more than ``limit`` levels deep in ``value`` (a scalar has
    depth 0). Walks without recursion, so any depth is safe to measure."""
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, Mapping):
            children: Iterable[Any] = node.values()
        elif isinstance(node, list | tuple):
            children = node
        else:
            continue
        if depth + 1 > limit:
            return True
        stack.extend((child, depth + 1) for child in children)
    return False


def numbered_lines(lines: Iterable[bytes]) -> Iterator[tuple[int, bytes]]:
    """``(line number, line)`` for each line that is not blank, counting from 1."""
    return ((number, line) for number, line in enumerate(lines, start=1) if line.strip())


def line_text(line: bytes) -> str:
    """A line kept as text whatever its bytes, its ending removed. Bytes that are not UTF-8 become
    lone surrogates (``\\udcNN`` in JSON), so :func:`line_bytes` gives the line back exactly."""
    return line.decode("utf-8", errors="surrogateescape").rstrip("\r\n")


def line_bytes(text: str) -> bytes:
    """The bytes of a line kept by :func:`line_text` (other lone surrogates as they are)."""
    try:
        return text.encode("utf-8", errors="surrogateescape")
    except UnicodeEncodeError:
        return text.encode("utf-8", errors="surrogatepass")
