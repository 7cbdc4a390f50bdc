"""Run plain-function (blocking) lookups in threads of their own source.

A blocking lookup cannot be interrupted: when the core's timeout gives up on it, its thread keeps
waiting on the CRM. With one shared thread pool, a hung CRM would soon hold every thread and starve
the healthy sources. Each blocking source therefore gets its own small pool, and once all of its
threads are still busy with earlier lookups, the next lookup fails at once (retryable) instead of
queueing behind them: a hung source costs itself, never the others.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor

from genesys_enrich._sources import BlockingCrmSource
from genesys_enrich.errors import SourceError
from genesys_enrich.models import Interaction, JSONValue


class BlockingLookup:
    """Calls ``source.lookup`` in one of ``threads`` threads reserved for this source."""

    def __init__(self, source: BlockingCrmSource, *, threads: int) -> None:
        self._source = source
        self._threads = threads
        self._executor = ThreadPoolExecutor(threads, thread_name_prefix=f"source-{source.name}")
        self._busy = 0
        self._lock = threading.Lock()

    async def __call__(self, interaction: Interaction) -> Mapping[str, JSONValue] | None:
        with self._lock:
            if self._busy >= self._threads:
                msg = (
                    f"all {self._threads} threads of {self._source.name} are still busy with "
                    "earlier lookups (is the CRM hanging?)"
                )
                raise SourceError(msg, retryable=True)
            self._busy += 1
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self._run, interaction)

    def _run(self, interaction: Interaction) -> Mapping[str, JSONValue] | None:
        try:
            return self._source.lookup(interaction)
        finally:
            with self._lock:
                self._busy -= 1

    def close(self) -> None:
        """Stop accepting lookups; threads still waiting on a CRM end on their own."""
        self._executor.shutdown(wait=False, cancel_futures=True)
