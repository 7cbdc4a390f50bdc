"""Turn a Genesys Cloud error response into a :class:`GenesysError` a person can act on."""

from __future__ import annotations

import httpx

from genesys_enrich.errors import GenesysError

RETRYABLE_STATUSES = frozenset({408, 429, 500, 502, 503, 504})

_ADVICE = {
    401: "the token was rejected",
    403: "the OAuth client's role lacks a permission for this (participant attributes need "
    "conversation edit rights in the conversation's division)",
    404: "the interaction was not found or has ended",
    429: "rate limited",
}


def error_from_response(response: httpx.Response, doing: str) -> GenesysError:
    """Describe a non-2xx response: status, Genesys' ``code`` and ``message``, correlation id."""
    code, message = _error_body(response)
    correlation_id = response.headers.get("ININ-Correlation-Id")
    parts = [f"Genesys answered {response.status_code} {code or response.reason_phrase} {doing}"]
    if message:
        parts.append(f": {message}")
    if advice := _ADVICE.get(response.status_code):
        parts.append(f" ({advice})")
    if correlation_id:
        parts.append(f" [correlation id {correlation_id}]")
    return GenesysError(
        "".join(parts),
        status_code=response.status_code,
        retryable=response.status_code in RETRYABLE_STATUSES,
        correlation_id=correlation_id,
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
