"""Logging: one JSON object per line for machines (Lambda, CloudWatch), plain text for people."""

from __future__ import annotations

import hashlib
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


WHOLE_EVENT_CHARS = 32_768
"""A dropped event up to this size (as compact JSON) is logged whole; a larger one by its size,
its SHA-256 and its first :data:`EXCERPT_CHARS` characters, enough to find it at its source."""
EXCERPT_CHARS = 1_024

_ABSENT: Any = object()


def log_outcome(outcome: Outcome, *, event: Any = _ABSENT, text: str | None = None) -> None:
    """One line per event: the outcome, with its fields' names (not their values) and timings.

    An event dropped for good (a failure not kept for another try) is logged too, since the log
    is then the only place it survives: pass it as ``event``, or as ``text`` when it could not be
    decoded. Events carry customer keys (ids, a phone number), never our credentials.
    """
    level = logging.WARNING if outcome.status == "failed" else logging.INFO
    extra: dict[str, Any] = {
        "event_id": outcome.event_id,
        "interaction_id": outcome.interaction_id,
        "status": outcome.status.value,
        "retryable": outcome.retryable,
        "failure": None if outcome.failure is None else outcome.failure.value,
        "fields": sorted(outcome.fields),
        "provenance": outcome.provenance,
        "sources": {r.source: r.to_json() for r in outcome.sources},
        "duration_ms": round(outcome.duration_ms, 2),
    }
    if outcome.status == "failed" and not outcome.keep:
        if text is not None:
            extra |= _dropped_text(text)
        elif event is not _ABSENT:
            extra |= _dropped_event(event)
    logger.log(level, "%s: %s", outcome.status.value, outcome.reason, extra=extra)


def _dropped_event(event: Any) -> dict[str, Any]:
    try:
        text = json.dumps(event, separators=(",", ":"), ensure_ascii=False)
    except (TypeError, ValueError, RecursionError):  # not from JSON: nothing to find it by
        return {"event_text": f"<{type(event).__name__} that is not JSON>"}
    if len(text) <= WHOLE_EVENT_CHARS:
        return {"event": event}
    return _dropped_text(text)


def _dropped_text(text: str) -> dict[str, Any]:
    if len(text) <= WHOLE_EVENT_CHARS:
        return {"event_text": text}
    data = text.encode("utf-8", errors="backslashreplace")
    return {
        "event_excerpt": text[:EXCERPT_CHARS],
        "event_bytes": len(data),
        "event_sha256": hashlib.sha256(data).hexdigest(),
    }
