"""Logging: one JSON object per line for machines (Lambda, CloudWatch), plain text for people.

Every event's outcome is one record of the ``genesys_enrich.outcome`` logger (see
:func:`log_outcome` for its keys). In AWS Lambda the records go up the standard logging tree to the
root logger, whose handler is the runtime's: Lambda writes them with its own JSON format when the
function's log format is JSON, and with :class:`JsonFormatter` (the same keys) when it is Text. A
handler you add to the root logger, or to ``genesys_enrich``, sees them too.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import sys
from datetime import UTC, datetime
from typing import Any, TextIO

from .models import Outcome
from .telemetry import EventTrace, current_invocation, current_trace

logger = logging.getLogger("genesys_enrich")
outcome_logger = logging.getLogger("genesys_enrich.outcome")

_RESERVED = frozenset(logging.makeLogRecord({}).__dict__) | {
    "message",
    "asctime",
    "aws_request_id",  # set by the Lambda runtime's log filter: written as requestId
    "_frame_type",  # the Lambda runtime's
}


class JsonFormatter(logging.Formatter):
    """One JSON object per record: ``timestamp``, ``level``, ``logger``, ``message``, the Lambda
    ``requestId`` and the SQS message of the event being processed (when known), and any
    ``extra=`` keys. The first five are named as in Lambda's own JSON log format, so a query works
    whichever of the two wrote the line.

    Args:
        end: appended to each line; the Lambda runtime's handler, unlike a ``StreamHandler``,
            expects its formatter to end the line.
    """

    def __init__(self, *, end: str = "") -> None:
        super().__init__()
        self._end = end

    def format(self, record: logging.LogRecord) -> str:
        created = datetime.fromtimestamp(record.created, UTC)
        entry: dict[str, Any] = {
            "timestamp": created.strftime("%Y-%m-%dT%H:%M:%S.")
            + f"{created.microsecond // 1000:03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        request_id = current_invocation().request_id or getattr(record, "aws_request_id", None)
        if request_id:
            entry["requestId"] = request_id
        trace = current_trace()
        if trace is not None and trace.sqs_message_id is not None:
            entry["sqs_message_id"] = trace.sqs_message_id
        entry |= {k: v for k, v in record.__dict__.items() if k not in _RESERVED}
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str) + self._end


class _OwnHandler(logging.StreamHandler[TextIO]):
    """The stderr handler :func:`configure` installs (and replaces when called again)."""


def configure(*, json_lines: bool, level: int | str = logging.INFO) -> None:
    """Send genesys-enrich's logs (and plugins' under it) to stderr in the chosen format, and only
    there: the process is ours (the command line). Other handlers on ``genesys_enrich`` stay."""
    handler = _OwnHandler(sys.stderr)
    handler.setFormatter(
        JsonFormatter() if json_lines else logging.Formatter("%(levelname)s %(name)s: %(message)s")
    )
    logger.handlers[:] = [h for h in logger.handlers if not isinstance(h, _OwnHandler)] + [handler]
    logger.setLevel(level)
    logger.propagate = False


WHOLE_EVENT_CHARS = 32_768
"""A dropped event up to this size (as compact JSON) is logged whole; a larger one by its size,
its SHA-256 and its first :data:`EXCERPT_CHARS` characters, enough to find it at its source."""
EXCERPT_CHARS = 1_024

_ABSENT: Any = object()


def configure_for_lambda(level: str | None = None) -> None:
    """Set up logging for the Lambda host, once per process.

    Under a Lambda runtime (``AWS_LAMBDA_RUNTIME_API`` is set), records propagate to the root
    logger and its handlers, the runtime's among them; when the function's log format is Text, the
    runtime's handler gets :class:`JsonFormatter` so each line is still one JSON object. Anywhere
    else (a test, a local call of the handler), :func:`configure` writes JSON lines to stderr.

    Args:
        level: default ``$GENESYS_ENRICH_LOG_LEVEL``, else Lambda's ``$AWS_LAMBDA_LOG_LEVEL``, else
            ``INFO``.
    """
    level = level or os.environ.get("GENESYS_ENRICH_LOG_LEVEL") or _lambda_log_level() or "INFO"
    if "AWS_LAMBDA_RUNTIME_API" not in os.environ:
        configure(json_lines=True, level=level)
        return
    logger.handlers[:] = [h for h in logger.handlers if not isinstance(h, _OwnHandler)]
    logger.setLevel(level)
    logger.propagate = True
    if os.environ.get("AWS_LAMBDA_LOG_FORMAT", "Text").upper() != "JSON":
        for handler in logging.getLogger().handlers:
            # How the runtime itself finds its handler (LambdaContext.log): it has a log sink.
            if hasattr(handler, "log_sink"):
                handler.setFormatter(JsonFormatter(end="\n"))


def _lambda_log_level() -> str | None:
    """Lambda's application log level (advanced logging controls) in Python's names."""
    level = os.environ.get("AWS_LAMBDA_LOG_LEVEL", "").upper()
    return {"TRACE": "DEBUG", "WARN": "WARNING", "FATAL": "CRITICAL"}.get(level, level) or None


def log_outcome(
    outcome: Outcome,
    trace: EventTrace | None = None,
    *,
    event: Any = _ABSENT,
    text: str | None = None,
) -> None:
    """One record per event, on ``genesys_enrich.outcome``: WARNING when it failed, else INFO.

    Its keys, besides the formatter's: ``requestId``, ``cold_start``, ``sqs_message_id``,
    ``event_id``, ``interaction_id`` (the Genesys conversation or interaction), ``status``,
    ``reason``, ``retryable``, ``failure`` (``bad_event``, ``transient`` or ``misconfigured``),
    ``duration_ms``, ``fields`` (the names written, never their values), ``provenance`` (field
    name to source), ``sources`` (per source: ``status``, ``duration_ms``, ``error``), and what the
    Genesys write did: ``write_ms``, ``correlation_id`` (Genesys' ``ININ-Correlation-Id``),
    ``retries``, ``throttled`` (429s), ``token_requests``, ``limiter_wait_ms``. A key with nothing
    to say is ``null``.

    An event dropped for good (a failure not kept for another try) is logged too, since the log
    is then the only place it survives: pass it as ``event``, or as ``text`` when it could not be
    decoded; it is logged whole up to :data:`WHOLE_EVENT_CHARS`. Events carry customer keys (ids, a
    phone number), never our credentials.
    """
    invocation = current_invocation()
    trace = trace or EventTrace()
    level = logging.WARNING if outcome.status == "failed" else logging.INFO
    if not outcome_logger.isEnabledFor(level):
        return  # INFO off: not even the line's fields are gathered
    extra: dict[str, Any] = {
        "requestId": invocation.request_id,
        "cold_start": invocation.cold_start,
        "sqs_message_id": trace.sqs_message_id,
        "event_id": outcome.event_id,
        "interaction_id": outcome.interaction_id,
        "status": outcome.status.value,
        "reason": outcome.reason,
        "retryable": outcome.retryable,
        "failure": None if outcome.failure is None else outcome.failure.value,
        "duration_ms": round(outcome.duration_ms, 2),
        "fields": sorted(outcome.fields),
        "provenance": outcome.provenance,
        "sources": {r.source: r.to_json() for r in outcome.sources},
        "write_ms": None if trace.write_ms is None else round(trace.write_ms, 2),
        "correlation_id": trace.correlation_id,
        "retries": trace.retries,
        "throttled": trace.throttled,
        "token_requests": trace.token_requests,
        "limiter_wait_ms": round(trace.limiter_wait_ms, 2),
    }
    if outcome.status == "failed" and not outcome.keep:
        if text is not None:
            extra |= _dropped_text(text)
        elif event is not _ABSENT:
            extra |= _dropped_event(event)
    outcome_logger.log(level, "%s: %s", outcome.status.value, outcome.reason, extra=extra)


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
