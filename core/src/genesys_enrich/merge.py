"""Merge what several sources said about one customer into one record, by priority."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence

from .models import Conflict, Field, JSONValue, Record


def merge(
    contributions: Sequence[tuple[str, Mapping[str, JSONValue]]],
) -> tuple[Record, tuple[Conflict, ...]]:
    """Merge ``(source name, fields)`` pairs given in priority order, highest first.

    Each field takes the value of the first source that gave it; the record remembers that source.
    When sources disagree on a field, a :class:`Conflict` lists every source's value, so nothing is
    dropped silently. Sources that agree are not a conflict.
    """
    offers: dict[str, dict[str, JSONValue]] = {}
    for source, fields in contributions:
        for name, value in fields.items():
            offers.setdefault(name, {}).setdefault(source, value)
    record: dict[str, Field] = {}
    conflicts: list[Conflict] = []
    for name, by_source in offers.items():
        winner, value = next(iter(by_source.items()))
        record[name] = Field(value, winner)
        if any(_json(other) != _json(value) for other in by_source.values()):
            conflicts.append(Conflict(field=name, kept=winner, values=by_source))
    return Record(record), tuple(conflicts)


def _json(value: JSONValue) -> str:
    """Compare as written: in Python ``True == 1``, in Genesys ``"true"`` is not ``"1"``."""
    return json.dumps(value, sort_keys=True)
