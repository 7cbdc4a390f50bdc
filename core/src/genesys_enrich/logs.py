"""Logging: one JSON object per line for machines (Lambda, CloudWatch), plain text for people."""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any

from .models import Outcome

logger = logging.getLogger("genesys_enrich")

_RESERVED = frozenset(logging.makeLogRecord({}).__dict__) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    """Formats a record as JSON: time, level, logger, message, and any ``extra=`` keys."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        entry |= {k: v for k, v in record.__dict__.items() if k not in _RESERVED}
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def configure(*, json_lines: bool, level: int | str = logging.INFO) -> None:
    """Send genesys-enrich's logs (and plugins' under it) to stderr in the chosen format."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        JsonFormatter() if json_lines else logging.Formatter("%(levelname)s %(name)s: %(message)s")
    )
    logger.handlers[:] = [handler]
    logger.setLevel(level)
    logger.propagate = False


def log_outcome(outcome: Outcome) -> None:
    """One line per event: the outcome, with its fields' names (not their values) and timings."""
    level = logging.WARNING if outcome.status == "failed" else logging.INFO
    if not logger.isEnabledFor(level):
        return  # INFO off: not even the line's fields are gathered
    logger.log(
        level,
        "%s: %s",
        outcome.status.value,
        outcome.reason,
        extra={
            "event_id": outcome.event_id,
            "interaction_id": outcome.interaction_id,
            "status": outcome.status.value,
            "retryable": outcome.retryable,
            "fields": sorted(outcome.fields),
            "provenance": outcome.provenance,
            "sources": {r.source: r.to_json() for r in outcome.sources},
            "duration_ms": round(outcome.duration_ms, 2),
        },
    )
