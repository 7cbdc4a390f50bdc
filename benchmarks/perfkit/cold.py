"""One cold start: import a handler, give it one event, report when each step ended.

    python cold.py MODULE EVENT_JSON

Prints ``{"started", "imported", "answered", "result"}``, ``time.monotonic()`` instants (the clock
the parent and Node share on Linux), so the parent can add the interpreter's own start-up.
"""

import time

started = time.monotonic()

import importlib  # noqa: E402 - the clock starts first
import json  # noqa: E402
import sys  # noqa: E402


class Context:
    """The slice of the Lambda context the handler reads."""

    def get_remaining_time_in_millis(self) -> int:
        return 30_000


handler = importlib.import_module(sys.argv[1]).handler
imported = time.monotonic()
result = handler(json.loads(sys.argv[2]), Context())
answered = time.monotonic()
times = {"started": started, "imported": imported, "answered": answered}
print(json.dumps(times | {"result": result}))
