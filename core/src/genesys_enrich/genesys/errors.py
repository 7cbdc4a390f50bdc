"""Turn a Genesys Cloud error response into a :class:`GenesysError` a person can act on."""

from __future__ import annotations

import re

import httpx

from genesys_enrich.errors import GenesysError
from genesys_enrich.retry import RETRYABLE_STATUSES

_PERMISSION = re.compile(r"\b[a-zA-Z]+:[a-zA-Z]+:[a-zA-Z*]+\b")
"""Genesys permission names: ``domain:entity:action``, e.g. ``conversation:communication:view``."""

_ADVICE = {
    401: "the token was rejected",
    404: "the interaction was not found or has ended",
    429: "rate limited",
}


def error_from_response(
    response: httpx.Response,
    doing: str,
    *,
    attempts: int = 1,
    out_of_time: str | None = None,
    client_id: str | None = None,
) -> GenesysError:
    """Describe a non-2xx response: status, Genesys' ``code`` and ``message``, what to do, the
    ``ININ-Correlation-Id``, and how many attempts were made.

    429, 408 and 5xx are ``retryable``; 403 (a permission missing) is ``misconfigured``; every
    other status is neither.
    """
    status = response.status_code
    code, message = _error_body(response)
    correlation_id = response.headers.get("ININ-Correlation-Id")
    parts = [f"Genesys answered {status} {code or response.reason_phrase} {doing}"]
    if message:
        parts.append(f": {message}")
    if status == httpx.codes.FORBIDDEN:
        parts.append(f" ({_forbidden_advice(message, client_id)})")
    elif advice := _ADVICE.get(status):
        parts.append(f" ({advice})")
    if attempts > 1:
        parts.append(f"; {attempts} attempts")
    if out_of_time:
        parts.append(f"; gave up: {out_of_time}")
    if correlation_id:
        parts.append(f" [correlation id {correlation_id}]")
    return GenesysError(
        "".join(parts),
        status_code=status,
        retryable=status in RETRYABLE_STATUSES,
        misconfigured=status == httpx.codes.FORBIDDEN,
        correlation_id=correlation_id,
    )


def _forbidden_advice(message: str | None, client_id: str | None) -> str:
    who = f"the OAuth client {client_id!r}" if client_id else "the OAuth client"
    permissions = list(dict.fromkeys(_PERMISSION.findall(message or "")))
    if permissions:
        lacks = f"{who} lacks the permission {', '.join(permissions)}"
    else:
        lacks = f"{who} lacks a permission for this"
    return (
        f"{lacks}: a client-credentials client gets permissions only through its roles, so add "
        "them to a role of the client, granted in the division that holds the conversation"
    )


def _error_body(response: httpx.Response) -> tuple[str | None, str | None]:
    try:
        body = response.json()
    except ValueError:
        return None, None
    if not isinstance(body, dict):
        return None, None
    code = body.get("code") or body.get("error")
    message = body.get("message") or body.get("error_description") or body.get("description")
    return (str(code) if code else None), (str(message)[:500] if message else None)
