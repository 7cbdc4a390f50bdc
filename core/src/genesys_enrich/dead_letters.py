"""Dead letters: failed events kept whole, with why they failed and how often, so none is lost.

A dead-letter file is JSON Lines, one object per failed event::

    {"event": {...}, "event_id": "...", "origin": "events.jsonl:12", "reason": "...",
     "retryable": true, "attempts": 1, "failed_at": "2026-11-29T01:02:03.456+00:00"}

``event`` is the event exactly as it was read. Input that was not JSON has ``"event": null`` and its
text in ``"text"``. ``genesys-enrich replay FILE`` runs the events again and rewrites the file with
those that still fail, their ``attempts`` one higher. Editing an event in the file before replaying
it is fine: it is read back as written.
"""

from __future__ import annotations

import contextlib
import json
import os
import stat
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Self

from .decoding import MAX_DEPTH, decode_json, line_text, numbered_lines
from .models import Outcome


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """One failed event, kept for replay."""

    event: Any
    """The event as read; ``None`` when the input could not be decoded (see :attr:`text`)."""
    reason: str
    attempts: int
    """How many times it has been tried and failed."""
    origin: str = ""
    """Where it was read from: ``file:line`` or ``file[index]``."""
    event_id: str | None = None
    retryable: bool = False
    failed_at: str = ""
    text: str | None = None
    """The undecodable input, when :attr:`event` is ``None``."""

    @classmethod
    def of(
        cls, event: Any, outcome: Outcome, *, origin: str, attempts: int, text: str | None = None
    ) -> DeadLetter:
        """The dead letter for an event that just failed for the ``attempts``-th time."""
        return cls(
            event=event,
            reason=outcome.reason,
            attempts=attempts,
            origin=origin,
            event_id=outcome.event_id,
            retryable=outcome.retryable,
            failed_at=datetime.now(UTC).isoformat(timespec="milliseconds"),
            text=text,
        )

    def to_json(self) -> dict[str, Any]:
        data = {
            "event": self.event,
            "event_id": self.event_id,
            "origin": self.origin,
            "reason": self.reason,
            "retryable": self.retryable,
            "attempts": self.attempts,
            "failed_at": self.failed_at,
        }
        if self.text is not None:
            data["text"] = self.text
        return data

    @classmethod
    def from_json(cls, data: Any) -> DeadLetter:
        """Read one line's object back.

        Raises:
            ValueError: it is not a dead letter; the message says what is missing.
        """
        if not isinstance(data, dict) or "event" not in data or "reason" not in data:
            msg = "not a dead letter: expected an object with 'event' and 'reason'"
            raise ValueError(msg)
        attempts = data.get("attempts", 0)
        if not isinstance(attempts, int) or isinstance(attempts, bool) or attempts < 0:
            msg = f"'attempts' must be a whole number, got {attempts!r}"
            raise ValueError(msg)
        text = data.get("text")
        return cls(
            event=data["event"],
            reason=str(data["reason"]),
            attempts=attempts,
            origin=str(data.get("origin") or ""),
            event_id=data.get("event_id") if isinstance(data.get("event_id"), str) else None,
            retryable=bool(data.get("retryable", False)),
            failed_at=str(data.get("failed_at") or ""),
            text=text if isinstance(text, str) else None,
        )


def read_dead_letters(path: Path) -> Iterator[tuple[int, DeadLetter]]:
    """``(line number, dead letter)`` for each line of the file, streamed.

    A line that is not a dead letter (hand-edited into broken JSON, bytes that are not UTF-8,
    nested too deeply) comes back as one whose :attr:`~DeadLetter.text` is the line and whose
    reason names its line number, so a replay fails it alone and keeps it rather than dropping it.
    """
    with path.open("rb") as stream:
        for number, line in numbered_lines(stream):
            try:
                yield number, DeadLetter.from_json(decode_json(line, max_depth=MAX_DEPTH + 1))
            except ValueError as error:  # Undecodable is a ValueError
                reason = f"{path} line {number} is not a dead letter: {error}"
                yield (
                    number,
                    DeadLetter(event=None, reason=reason, attempts=0, text=line_text(line)),
                )


class DeadLetterFile:
    """Writes dead letters to a JSON Lines file, creating it only when the first one arrives.

    Args:
        path: the file.
        replace: ``False`` appends to what the file holds (a run never erases earlier dead
            letters); ``True`` writes a new file that replaces the old one on :meth:`close`, all at
            once, so an interrupted replay never leaves half a file.
        dry_run: keep nothing: a dry run writes nothing at all, not even its failures.
    """

    def __init__(self, path: Path, *, replace: bool = False, dry_run: bool = False) -> None:
        self.path = path
        self.replace = replace
        self.dry_run = dry_run
        self.count = 0
        """Dead letters written by this writer."""
        self._stream: IO[str] | None = None
        self._temporary: Path | None = None

    def add(self, letter: DeadLetter) -> None:
        if self.dry_run:
            return
        if self._stream is None:
            self._stream = self._open()
        self._stream.write(json.dumps(letter.to_json()) + "\n")
        self.count += 1

    def _open(self) -> IO[str]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if not self.replace:
            return self.path.open("a", encoding="utf-8")
        handle, name = tempfile.mkstemp(
            prefix=f".{self.path.name}.", suffix=".tmp", dir=self.path.parent
        )
        self._temporary = Path(name)
        # mkstemp makes the file private; the one it replaces keeps the permissions it had.
        with contextlib.suppress(FileNotFoundError):
            self._temporary.chmod(stat.S_IMODE(self.path.stat().st_mode))
        return os.fdopen(handle, "w", encoding="utf-8")

    def close(self, *, commit: bool = True) -> None:
        """Flush. When replacing: swap the new file in (empty if nothing failed), or with
        ``commit=False`` throw it away and leave the old file as it was."""
        if self._stream is not None:
            self._stream.close()
            self._stream = None
        if not self.replace or self.dry_run:
            return
        if self._temporary is None:
            if commit:
                self.path.write_text("", encoding="utf-8")
        elif commit:
            self._temporary.replace(self.path)
        else:
            self._temporary.unlink(missing_ok=True)
        self._temporary = None

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close(commit=exc_type is None)
