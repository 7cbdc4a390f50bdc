"""How old an event is, and whether it is too old to write.

An event carries its time in up to four places: EventBridge's ``time``, and the body's own
(``detail.eventBody.eventTime`` and ``detail.timestamp`` in Genesys' events,
``detail.initiationTimestamp`` in the seed's). An event is as young as the newest of them, so an
event is stale only when every time it carries is old: a conversation that started that long ago
is surely over, and an attribute written now would reach no agent. An event with no usable time
is never stale; it is judged on the rest.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from typing import Any

from .events import event_id_of
from .models import Outcome, Status

_PLACES = (
    ("time",),
    ("detail", "eventBody", "eventTime"),
    ("detail", "timestamp"),
    ("detail", "initiationTimestamp"),
)
"""Where an event may carry its time, as key paths."""

_MILLISECONDS = 1e11
"""An epoch number above this is in milliseconds (Genesys' ``eventTime``): 1e11 seconds is the
year 5138, 1e11 milliseconds is 1973."""


def event_time(event: Any) -> tuple[str, float] | None:
    """The newest time the event carries, as ``(where, epoch seconds)``; ``None`` without one."""
    newest: tuple[str, float] | None = None
    for where, seconds in _times(event):
        if newest is None or seconds > newest[1]:
            newest = (where, seconds)
    return newest


def stale_outcome(event: Any, *, max_age: float, now: float) -> Outcome | None:
    """A ``skipped`` outcome when the event is older than ``max_age`` seconds at ``now`` (epoch
    seconds), saying how old; ``None`` when it is fresh, carries no time, or ``max_age`` is 0."""
    if max_age <= 0:
        return None
    found = event_time(event)
    if found is None:
        return None
    where, seconds = found
    age = now - seconds
    if age <= max_age:
        return None
    when = datetime.fromtimestamp(seconds, UTC).isoformat(timespec="seconds")
    reason = (
        f"stale: the event is {_duration(age)} old ({where} {when}), more than [intake] "
        f"max_event_age_seconds ({_duration(max_age)}): the conversation is surely over, so "
        "nothing is written late"
    )
    return Outcome(Status.SKIPPED, reason, event_id=event_id_of(event))


def _times(event: Any) -> Iterator[tuple[str, float]]:
    for path in _PLACES:
        value: Any = event
        for key in path:
            value = value.get(key) if isinstance(value, Mapping) else None
        seconds = _epoch_seconds(value)
        if seconds is not None:
            yield ".".join(path), seconds


def _epoch_seconds(value: Any) -> float | None:
    """ISO 8601 text (naive means UTC) or an epoch number in seconds or milliseconds."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        number = float(value)
        if not math.isfinite(number) or number <= 0:
            return None
        return number / 1000 if number > _MILLISECONDS else number
    if isinstance(value, str) and len(value) <= 40:
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            return None
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=UTC)
        try:
            return parsed.timestamp()
        except (OverflowError, OSError, ValueError):
            return None
    return None


def _duration(seconds: float) -> str:
    """``45 s``, ``7 min 5 s``, ``3 h 2 min``, ``12 days``."""
    whole = int(seconds)
    if whole < 60:
        return f"{whole} s"
    minutes, secs = divmod(whole, 60)
    if minutes < 60:
        return f"{minutes} min {secs} s" if secs else f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    return f"{hours // 24} days"
