"""AWS Lambda SnapStart: a snapshot of an initialised process, restored for each new environment.

With SnapStart on, Lambda runs the init phase once when a version is published (the handler
module's import, which then also builds the settings, plugins and HTTP client), snapshots the
process and restores copies of it instead of cold-starting. What must not carry over from the
snapshot into each copy is renewed after restore, through the runtime's hook
(``snapshot_restore_py``, present only in the Lambda runtime): the kept-alive connections, the
Genesys token, the rate limiter's clock, and the random generator's state (every copy would
otherwise draw the same retry jitter). See docs/operations.md.
"""

from __future__ import annotations

import importlib
import os
import random
from collections.abc import Callable
from typing import Any

INITIALIZATION_TYPE = "AWS_LAMBDA_INITIALIZATION_TYPE"
"""Set by Lambda; ``snap-start`` while it initialises a process to snapshot."""


def snapshotting() -> bool:
    """Whether this process is being initialised for a SnapStart snapshot."""
    return os.environ.get(INITIALIZATION_TYPE) == "snap-start"


def after_restore(renew: Callable[[], Any]) -> bool:
    """Call ``renew`` (then reseed ``random``) in each copy restored from a snapshot; ``False``
    outside the Lambda runtime, where nothing is ever restored."""
    try:
        hooks = importlib.import_module("snapshot_restore_py")
    except ImportError:
        return False

    def restored() -> None:
        random.seed()  # from os.urandom: this copy's own
        renew()

    hooks.register_after_restore(restored)
    return True
