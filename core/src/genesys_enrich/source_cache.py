"""A per-source cache of what lookups found, for customers who call again within minutes.

Off by default (``[pipeline] source_cache_seconds = 0``). When on, each source's answer for a
customer is kept for that many seconds, at most ``source_cache_size`` answers in all (the least
recently used go first). An entry is keyed by the source's name and every customer key the event
carries (customer id, external contact id, phone, email), so an answer is only ever reused for an
event naming exactly the same customer, and never by another source. Only answers with fields are
kept: a failure, a timeout or "no match" is asked again next time, so a CRM that recovers, or a
customer added to it, is seen at once.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Mapping

from .models import Interaction, JSONValue

Key = tuple[str, tuple[tuple[str, str], ...]]


class SourceCache:
    """Found fields by source and customer, bounded in time and size.

    Args:
        seconds: how long an answer is reused.
        size: the most answers kept, over all sources.
        clock: ``time.monotonic``; tests pass another.
    """

    def __init__(
        self, seconds: float, size: int, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.seconds = seconds
        self.size = size
        self._clock = clock
        self._entries: OrderedDict[Key, tuple[float, dict[str, JSONValue]]] = OrderedDict()
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, source: str, interaction: Interaction) -> dict[str, JSONValue] | None:
        """The fields ``source`` found for this customer within the last ``seconds``, if any."""
        key = _key(source, interaction)
        entry = self._entries.get(key)
        if entry is None or entry[0] <= self._clock():
            if entry is not None:
                del self._entries[key]
            self.misses += 1
            return None
        self._entries.move_to_end(key)
        self.hits += 1
        return dict(entry[1])  # a copy: what a caller does with it never reaches the cache

    def put(self, source: str, interaction: Interaction, fields: Mapping[str, JSONValue]) -> None:
        """Keep what ``source`` found for this customer."""
        key = _key(source, interaction)
        self._entries[key] = (self._clock() + self.seconds, dict(fields))
        self._entries.move_to_end(key)
        while len(self._entries) > self.size:
            self._entries.popitem(last=False)


def _key(source: str, interaction: Interaction) -> Key:
    return source, tuple(sorted(interaction.customer_keys.items()))
