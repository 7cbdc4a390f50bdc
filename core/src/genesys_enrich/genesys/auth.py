"""OAuth client credentials for Genesys Cloud, cached per process."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass

import httpx
from pydantic import SecretStr

from genesys_enrich.errors import GenesysError

from .errors import error_from_response


@dataclass(frozen=True, slots=True)
class _Token:
    value: SecretStr
    refresh_at: float


class TokenProvider:
    """Fetches a client-credentials token and keeps it until shortly before it expires.

    ``POST https://login.<domain>/oauth/token`` with HTTP Basic auth and
    ``grant_type=client_credentials``, as Genesys Cloud documents it. Concurrent callers on a cold
    cache share one request (single flight).
    """

    def __init__(
        self,
        http: httpx.AsyncClient,
        *,
        login_url: str,
        client_id: str,
        client_secret: SecretStr,
        refresh_margin: float = 300.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._http = http
        self._url = f"{login_url}/oauth/token"
        self._client_id = client_id
        self._client_secret = client_secret
        self._margin = refresh_margin
        self._clock = clock
        self._token: _Token | None = None
        self._lock = asyncio.Lock()
        self.fetch_count = 0
        """How many tokens this provider has requested: a number worth watching."""

    def __repr__(self) -> str:
        return f"TokenProvider(url={self._url!r}, client_id={self._client_id!r})"

    async def token(self) -> str:
        """A valid access token, fetching a new one only when needed."""
        token = self._token
        if token is not None and self._clock() < token.refresh_at:
            return token.value.get_secret_value()
        async with self._lock:
            token = self._token
            if token is None or self._clock() >= token.refresh_at:
                token = self._token = await self._fetch()
        return token.value.get_secret_value()

    def invalidate(self, rejected: str) -> None:
        """Forget the token Genesys just rejected (a 401), unless another caller replaced it."""
        if self._token is not None and self._token.value.get_secret_value() == rejected:
            self._token = None

    async def _fetch(self) -> _Token:
        response = await self._http.post(
            self._url,
            data={"grant_type": "client_credentials"},
            auth=httpx.BasicAuth(self._client_id, self._client_secret.get_secret_value()),
            headers={"Accept": "application/json"},
        )
        self.fetch_count += 1
        if response.status_code != httpx.codes.OK:
            raise self._token_error(response)
        try:
            body = response.json()
            value = SecretStr(str(body["access_token"]))
            lifetime = float(body.get("expires_in", 0))
        except (ValueError, KeyError, TypeError):
            msg = f"the Genesys token endpoint {self._url} answered 200 without an access_token"
            raise GenesysError(msg, status_code=200, retryable=True) from None
        margin = min(self._margin, lifetime / 2)
        return _Token(value=value, refresh_at=self._clock() + lifetime - margin)

    def _token_error(self, response: httpx.Response) -> GenesysError:
        try:
            code = response.json().get("error")
        except (ValueError, AttributeError):
            code = None
        if code in ("invalid_client", "unauthorized_client") or response.status_code == 401:
            msg = (
                f"Genesys Cloud rejected the OAuth client {self._client_id!r} at {self._url} "
                f"({response.status_code} {code or ''}). Check GENESYS_CLIENT_ID and "
                "GENESYS_CLIENT_SECRET, that the client uses the Client Credentials grant, and "
                "that GENESYS_ENVIRONMENT names the region the client was created in."
            )
            # Retryable: the event is kept (Lambda retry, dead letter) until the client is fixed.
            return GenesysError(msg, status_code=response.status_code, retryable=True)
        return error_from_response(response, "fetching a Genesys token")
