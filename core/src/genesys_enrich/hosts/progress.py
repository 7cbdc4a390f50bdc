"""Progress for ``genesys-enrich run``: a bar with rate and ETA on a terminal, plain lines if not.

A few lines of our own rather than a library: all that is needed is one line redrawn on a terminal
and a plain line now and then in logs and CI. tqdm disables itself, or writes carriage returns, when
stderr is not a terminal; rich would add a sizeable dependency to the core distribution, which every
Lambda deployment package carries.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TextIO

_BAR_WIDTH = 24


class Progress:
    """Reports ``done`` out of ``total`` events to ``stream`` (stderr), at most every ``interval``.

    Args:
        stream: where to write.
        total: events expected, or ``None`` when unknown (stdin): then there is no bar nor ETA.
        terminal: redraw one line in place; otherwise print a plain line each ``interval``.
        interval: seconds between updates (default: 0.1 on a terminal, 10 otherwise).
        clock: monotonic seconds (tests pass their own).
    """

    def __init__(
        self,
        stream: TextIO,
        *,
        total: int | None,
        terminal: bool,
        interval: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.stream = stream
        self.total = total
        self.terminal = terminal
        self.interval = interval if interval is not None else (0.1 if terminal else 10.0)
        self._clock = clock
        self._started = clock()
        self._last = self._started
        self._drawn = False

    def update(self, done: int, failed: int, *, force: bool = False) -> None:
        now = self._clock()
        if not force and now - self._last < self.interval:
            return
        self._last = now
        line = self.line(done, failed, now - self._started)
        if self.terminal:
            self.stream.write("\r\x1b[2K" + line)
            self._drawn = True
        else:
            self.stream.write(line + "\n")
        self.stream.flush()

    def say(self, text: str) -> None:
        """Print a message without garbling the bar."""
        self._clear()
        self.stream.write(text + "\n")
        self.stream.flush()

    def finish(self, done: int, failed: int) -> None:
        """Print the final state and leave the terminal on a fresh line."""
        self.update(done, failed, force=True)
        if self.terminal:
            self.stream.write("\n")
            self._drawn = False
            self.stream.flush()

    def line(self, done: int, failed: int, elapsed: float) -> str:
        rate = done / elapsed if elapsed > 0 else 0.0
        parts = [f"{done:,} events" if self.total is None else f"{done:,}/{self.total:,} events"]
        if self.total:
            share = min(done / self.total, 1.0)
            parts.append(f"{share:.0%}")
            if self.terminal:
                filled = round(share * _BAR_WIDTH)
                parts.insert(0, "[" + "#" * filled + "." * (_BAR_WIDTH - filled) + "]")
        parts.append(f"{rate:,.0f}/s")
        if self.total and rate > 0 and done < self.total:
            parts.append(f"ETA {_duration((self.total - done) / rate)}")
        parts.append(f"{failed:,} failed")
        return "  ".join(parts)

    def _clear(self) -> None:
        if self.terminal and self._drawn:
            self.stream.write("\r\x1b[2K")
            self._drawn = False


def _duration(seconds: float) -> str:
    seconds = round(seconds)
    if seconds < 60:
        return f"{seconds}s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes}m{seconds:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"
