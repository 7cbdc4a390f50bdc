"""OAuth client credentials for Genesys Cloud: one token per process, fetched once, renewed early.

``POST https://login.<region>/oauth/token`` with HTTP Basic auth and
``grant_type=client_credentials``, as Genesys Cloud documents it. The token is kept until a margin
before its ``expires_in`` runs out; concurrent callers on a cold (or expired) cache share one
request, and share its failure too. A rejection of the credentials is remembered for
:data:`REJECTION_MEMORY` seconds, during which callers fail at once with its message instead of
asking again; before that, a client secret read from AWS Secrets Manager or SSM is read again, and
if it was rotated the token is asked for once more with the new one. A token Genesys rejects on a
write (401) is dropped so the next caller fetches a new one. Token requests go through the same
:class:`~.transport.Transport` as writes: rate limited, 429/5xx/transport errors retried, bound by
the caller's deadline.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass

import httpx
from pydantic import SecretStr

from genesys_enrich import telemetry
from genesys_enrich.aws_secrets import refresh
from genesys_enrich.errors import GenesysError

from .errors import error_from_response
from .transport import Transport

_REJECTED_CLIENT = frozenset({"invalid_client", "unauthorized_client"})

REJECTION_MEMORY = 30.0
"""Seconds a credentials rejection is remembered: events fail fast with its message meanwhile."""


@dataclass(frozen=True, slots=True)
class _Token:
    value: SecretStr
    refresh_at: float


class TokenProvider:
    """Fetches a client-credentials token and keeps it until shortly before it expires.

    Args:
        transport: sends the token request (rate limit, retries, deadline).
        login_url: ``https://login.<region>``.
        region: the Genesys Cloud region domain, named in error messages.
        refresh_margin: seconds before expiry to fetch a new token (at most half its lifetime).
        rejection_memory: seconds a rejection of the credentials (``invalid_client``,
            ``unauthorized_client``, 401) is remembered; until then every caller gets the same
            failure without a token request, then the next caller asks again.
        clock: ``time.monotonic``; tests pass another.
    """

    def __init__(
        self,
        transport: Transport,
        *,
        login_url: str,
        client_id: str,
        client_secret: SecretStr,
        region: str | None = None,
        refresh_margin: float = 300.0,
        rejection_memory: float = REJECTION_MEMORY,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._transport = transport
        self._url = f"{login_url}/oauth/token"
        self._client_id = client_id
        self._client_secret = client_secret
        self._region = region
        self._margin = refresh_margin
        self._rejection_memory = rejection_memory
        self._rejected: tuple[float, GenesysError] | None = None  # (until, failure)
        self._clock = clock
        self._token: _Token | None = None
        self._lock = asyncio.Lock()
        self._fetches_ended = 0
        self._last_failure: GenesysError | None = None
        self.fetch_count = 0
        """How many token requests this provider has started: a number worth watching."""

    def __repr__(self) -> str:
        return f"TokenProvider(url={self._url!r}, client_id={self._client_id!r})"

    async def token(self, *, deadline: float | None = None) -> str:
        """A valid access token, fetching a new one only when needed.

        Raises:
            GenesysError: the token endpoint refused (bad credentials: a message naming
                ``GENESYS_CLIENT_ID`` / ``GENESYS_CLIENT_SECRET`` and the region) or could not be
                reached in time.
        """
        token = self._token
        if token is not None and self._clock() < token.refresh_at:
            return token.value.get_secret_value()
        seen = self._fetches_ended
        async with self._lock:
            token = self._token
            if token is not None and self._clock() < token.refresh_at:
                return token.value.get_secret_value()
            if self._fetches_ended != seen and self._last_failure is not None:
                # A fetch failed while this caller waited: share its answer instead of asking again.
                raise _copy(self._last_failure)
            if self._rejected is not None and self._clock() < self._rejected[0]:
                raise _copy(self._rejected[1])  # the credentials were refused moments ago
            self._last_failure = None  # a fetch cut short by its caller's deadline shares nothing
            try:
                token = self._token = await self._fetch(deadline)
            except GenesysError as failure:
                self._last_failure = failure
                raise
            finally:
                self._fetches_ended += 1
        return token.value.get_secret_value()

    def forget(self) -> None:
        """Drop the token and any remembered failure, so the next caller fetches a new one (after
        a snapshot of the process is restored: the copy must not use the snapshot's token)."""
        self._token = None
        self._rejected = None
        self._last_failure = None

    def invalidate(self, rejected: str) -> None:
        """Forget the token Genesys just rejected (a 401), unless another caller replaced it."""
        if self._token is not None and self._token.value.get_secret_value() == rejected:
            self._token = None

    async def _fetch(self, deadline: float | None, *, refreshed: bool = False) -> _Token:
        self.fetch_count += 1
        telemetry.count_token_request()
        secret = self._client_secret.get_secret_value()
        response = await self._transport.send(
            "POST",
            self._url,
            doing="fetching a token",
            deadline=deadline,
            data={"grant_type": "client_credentials"},
            auth=httpx.BasicAuth(self._client_id, secret),
            headers={"Accept": "application/json"},
        )
        if response.status_code != httpx.codes.OK:
            error, rejected = self._token_error(response)
            if rejected and not refreshed and await refresh(self._client_secret, rejected=secret):
                # The secret kept in AWS was rotated since it was read: ask again with the new one.
                return await self._fetch(deadline, refreshed=True)
            if rejected:
                self._rejected = (self._clock() + self._rejection_memory, error)
            raise error
        try:
            body = response.json()
            value = SecretStr(str(body["access_token"]))
            lifetime = float(body.get("expires_in", 0))
        except (ValueError, KeyError, TypeError, AttributeError):
            msg = f"the Genesys token endpoint {self._url} answered 200 without an access_token"
            raise GenesysError(msg, status_code=200, retryable=True) from None
        margin = min(self._margin, lifetime / 2)
        return _Token(value=value, refresh_at=self._clock() + lifetime - margin)

    def _token_error(self, response: httpx.Response) -> tuple[GenesysError, bool]:
        """The failure to raise, and whether it is a rejection of the credentials."""
        try:
            body = response.json()
            code = body.get("error") if isinstance(body, dict) else None
        except ValueError:
            code = None
        if code in _REJECTED_CLIENT or response.status_code == httpx.codes.UNAUTHORIZED:
            region = f" (region {self._region})" if self._region else ""
            msg = (
                f"Genesys Cloud rejected the OAuth client {self._client_id!r} at "
                f"{self._url}{region}: {response.status_code} {code or 'unauthorized'}. Check "
                "GENESYS_CLIENT_ID and GENESYS_CLIENT_SECRET, that the client uses the Client "
                "Credentials grant, and that GENESYS_ENVIRONMENT names the region it was "
                "created in."
            )
            # The event is sound and will enrich once the credentials are fixed (typically a
            # rotated secret not yet deployed): misconfigured, so every host keeps it for replay.
            error = GenesysError(msg, status_code=response.status_code, misconfigured=True)
            return error, True
        if response.status_code in (httpx.codes.FORBIDDEN, httpx.codes.NOT_FOUND):
            region = f" (region {self._region})" if self._region else ""
            msg = (
                f"the Genesys token endpoint {self._url}{region} answered "
                f"{response.status_code} {response.reason_phrase}: this is not a Genesys Cloud "
                "login URL. Check GENESYS_LOGIN_URL (https://login.<region>, or leave it unset) "
                "and that GENESYS_ENVIRONMENT names the region the OAuth client was created in."
            )
            # Misconfigured like rejected credentials: the events are sound and will enrich
            # once the configuration is fixed.
            error = GenesysError(msg, status_code=response.status_code, misconfigured=True)
            return error, False
        error = error_from_response(response, f"fetching a token from {self._url}")
        # The token request does not depend on the event: what no retry fixes, settings do.
        error.misconfigured = not error.retryable
        return error, False


def _copy(error: GenesysError) -> GenesysError:
    return GenesysError(
        str(error),
        status_code=error.status_code,
        retryable=error.retryable,
        misconfigured=error.misconfigured,
        correlation_id=error.correlation_id,
    )
