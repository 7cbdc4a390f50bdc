"""A base for CRM sources with an HTTP API, so an adapter only says what to ask and what to keep.

It sends through the process's shared HTTP client, retries with the core's retry policy (stamina),
maps 404 to "no match", retryable statuses to a retryable :class:`SourceError`, 401 and 403 to a
misconfigured one (the event is kept for replay), anything else to a permanent one, and
re-authenticates once on a 401 when the subclass knows how.

A complete adapter::

    class Loyalty(RestSource):
        name = "loyalty"

        def build_request(self, key, value):
            return Lookup("GET", f"/members/{path_segment(value)}")

        def parse(self, response):
            return {"loyaltyTier": response.json()["tier"]}
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from time import monotonic
from typing import Any, ClassVar
from urllib.parse import quote

import httpx
from pydantic import Field, field_validator

from genesys_enrich.errors import SourceError
from genesys_enrich.extensions import CrmSource, PluginConfig
from genesys_enrich.models import CUSTOMER_KEYS, Interaction, JSONValue
from genesys_enrich.retry import RETRYABLE_STATUSES, RetryableResponse, RetryPolicy, raise_for_retry


class RestSourceConfig(PluginConfig):
    """Settings every HTTP source has; subclass it to add credentials and options."""

    base_url: str
    """The API root, e.g. ``https://crm.example.com/api``; request paths are appended to it."""
    timeout_seconds: float = Field(default=3.0, gt=0)
    """The whole lookup, retries included, must finish within this."""
    retry_attempts: int = Field(default=2, ge=1, le=10)
    """Attempts in all for a retryable failure (429, 5xx, a dropped connection)."""
    lookup_keys: tuple[str, ...] = ("customer_id",)
    """Customer keys to look up by, in order; the first one the event carries is used."""

    @field_validator("lookup_keys")
    @classmethod
    def _known_keys(cls, keys: tuple[str, ...]) -> tuple[str, ...]:
        unknown = [key for key in keys if key not in CUSTOMER_KEYS]
        if unknown:
            msg = f"unknown customer keys {unknown}; use any of {list(CUSTOMER_KEYS)}"
            raise ValueError(msg)
        return keys

    @field_validator("base_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not value.startswith(("https://", "http://")):
            msg = f"must be an http(s) URL, got {value!r}"
            raise ValueError(msg)
        return value.rstrip("/")


@dataclass(frozen=True)
class Lookup:
    """One request to the CRM: method, path under ``base_url``, and optional query or JSON body."""

    method: str
    path: str
    params: Mapping[str, str] | None = None
    json: Any = None
    headers: Mapping[str, str] = field(default_factory=dict)


class RestSource(CrmSource):
    """Base class for HTTP CRM sources. Override :meth:`build_request`, and as needed
    :meth:`auth_headers`, :meth:`parse` and :meth:`on_unauthorized`."""

    Config: ClassVar[type[PluginConfig]] = RestSourceConfig
    config: RestSourceConfig
    no_match_statuses: ClassVar[frozenset[int]] = frozenset({404})
    """Statuses that mean "this CRM does not know the customer"."""
    retry_policy: ClassVar[RetryPolicy] = RetryPolicy(
        max_retry_after=2.0, wait_initial=0.05, wait_max=1.0, wait_jitter=0.1
    )
    """CRM lookups wait little: an agent is about to pick up. A retry that would not finish
    within ``timeout_seconds`` is not made."""

    def build_request(self, key: str, value: str) -> Lookup | None:
        """The request that looks the customer up by customer key ``key`` (``customer_id``,
        ``external_contact_id``, ``phone`` or ``email``) whose value is ``value``. Return ``None``
        to skip the lookup. Encode values put in a path with :func:`path_segment`."""
        raise NotImplementedError

    async def auth_headers(self) -> dict[str, str]:
        """Headers that authenticate a request. Override for API keys or OAuth tokens."""
        return {}

    async def on_unauthorized(self, response: httpx.Response) -> bool:
        """Called after a 401. Drop the cached token and return ``True`` to retry once.

        ``response.request.headers`` shows the credentials that were refused: under concurrency
        another lookup may already have replaced them, and then there is nothing to drop."""
        return False

    def parse(self, response: httpx.Response) -> Mapping[str, JSONValue] | None:
        """The fields in a successful response; by default its JSON object, whole.

        Override it to keep or rename fields, or to unwrap a search result; return ``None`` when
        the answer means "no match" (an empty search). ``self.json_object(response)`` gives the
        JSON object, or raises a permanent :class:`SourceError` for any other body. Raise
        ``SourceError(..., retryable=False)`` for an answer you cannot use, saying what is
        wrong."""
        return self.json_object(response)

    def json_object(self, response: httpx.Response) -> dict[str, Any]:
        """The response's JSON object; a permanent :class:`SourceError` for any other body."""
        try:
            body = response.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):
            msg = f"answered {response.status_code} without a JSON object"
            raise SourceError(msg, retryable=False)
        return body

    async def lookup(self, interaction: Interaction) -> Mapping[str, JSONValue] | None:
        keys = interaction.customer_keys
        key = next((name for name in self.config.lookup_keys if name in keys), None)
        if key is None:
            return None
        request = self.build_request(key, keys[key])
        if request is None:
            return None
        response = await self.send(request)
        if response.status_code in self.no_match_statuses:
            return None
        if not response.is_success:
            status = response.status_code
            if status in (httpx.codes.UNAUTHORIZED, httpx.codes.FORBIDDEN):
                msg = (
                    f"answered HTTP {status}: the CRM refused our credentials; check them under "
                    f"[plugins.{self.name}]"
                )
                raise SourceError(msg, retryable=False, misconfigured=True)
            msg = f"answered HTTP {status}"
            raise SourceError(msg, retryable=status in RETRYABLE_STATUSES)
        return self.parse(response)

    async def send(self, request: Lookup) -> httpx.Response:
        """Send with retries; after a 401, re-authenticate once if :meth:`on_unauthorized` can."""
        response = await self._send_with_retries(request)
        if response.status_code == httpx.codes.UNAUTHORIZED and await self.on_unauthorized(
            response
        ):
            response = await self._send_with_retries(request)
        return response

    async def _send_with_retries(self, request: Lookup) -> httpx.Response:
        budget_ends = monotonic() + self.config.timeout_seconds
        attempts, _ = self.retry_policy.retrying(
            attempts=self.config.retry_attempts, deadline=budget_ends, clock=monotonic
        )
        try:
            async for attempt in attempts:
                with attempt:
                    response = await self.context.http.request(
                        request.method,
                        self.config.base_url + request.path,
                        params=request.params,
                        json=request.json,
                        headers={
                            "Accept": "application/json",
                            **request.headers,
                            **await self.auth_headers(),
                        },
                        timeout=max(0.001, budget_ends - monotonic()),
                    )
                    return raise_for_retry(response)
        except RetryableResponse as exhausted:
            return exhausted.response
        msg = "unreachable: stamina either returns, raises, or retries"
        raise AssertionError(msg)


def path_segment(value: str) -> str:
    """Encode a value as exactly one URL path segment: ``../admin?x=1`` stays inside the path."""
    if value in (".", ".."):
        return value.replace(".", "%2E")
    return quote(value, safe="")
