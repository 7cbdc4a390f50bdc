"""Write enrichment onto Genesys Cloud interactions."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import httpx

from genesys_enrich import telemetry
from genesys_enrich.errors import GenesysError, InteractionNotFound
from genesys_enrich.models import Interaction, JSONValue, WriteRequest

from .auth import TokenProvider
from .errors import error_from_response
from .requests import attribute_value, write_request
from .transport import Transport


@dataclass(frozen=True)
class WriteLimits:
    """What a write may hold; a larger one is refused before any request is sent."""

    max_keys: int = 50
    """Keys in one write."""
    max_value_chars: int = 2000
    """Characters in one value, as written (the string form of numbers, lists and objects)."""

    def problem(self, request: WriteRequest) -> str | None:
        """Why the request may not be sent, or ``None``."""
        values = request.body.get("attributes", request.body.get("context", {}))
        if len(values) > self.max_keys:
            return (
                f"{len(values)} keys to write, more than the limit of {self.max_keys} "
                "([genesys] max_attributes): select fewer fields in the mapper settings"
            )
        for name, value in values.items():
            size = len(attribute_value(value))
            if size > self.max_value_chars:
                return (
                    f"the value of {name!r} is {size} characters, more than the limit of "
                    f"{self.max_value_chars} ([genesys] max_attribute_chars): drop or shorten "
                    "the field in a mapper"
                )
        return None


class GenesysClient:
    """Writes to the Genesys Cloud Platform API with a cached client-credentials token.

    Args:
        transport: sends requests (rate limit, retries, timeouts); shared with ``tokens``.
        api_url: ``https://api.<region>``.
        tokens: the process's token provider.
        limits: the largest write allowed.
        timeout: seconds a write may take in all (token, retries and waits included) when the
            caller's deadline is later or absent.
    """

    dry_run = False
    """It sends what it plans (:class:`~genesys_enrich.genesys.requests.DryRun` does not)."""

    def __init__(
        self,
        transport: Transport,
        *,
        api_url: str,
        tokens: TokenProvider,
        limits: WriteLimits | None = None,
        timeout: float = 20.0,
        client_id: str | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.transport = transport
        self._api_url = api_url
        self.tokens = tokens
        self.limits = limits or WriteLimits()
        self.timeout = timeout
        self._client_id = client_id
        self._clock = clock
        self._loop: asyncio.AbstractEventLoop | None = None

    def __repr__(self) -> str:
        return f"GenesysClient(api_url={self._api_url!r}, transport={self.transport!r})"

    def plan(self, interaction: Interaction, fields: Mapping[str, JSONValue]) -> WriteRequest:
        """The request :meth:`write` sends for these fields (before any limit is checked)."""
        return write_request(interaction, fields)

    async def write(
        self,
        interaction: Interaction,
        fields: Mapping[str, JSONValue],
        *,
        deadline: float | None = None,
    ) -> WriteRequest:
        """Write the fields onto the interaction; return the request that did it.

        Retries 429 (after ``Retry-After``), 408, 5xx and transport errors; after a 401, fetches a
        new token and tries once more. Nothing waits past ``deadline``.

        Args:
            deadline: a ``time.monotonic()`` instant the write must finish by; the client's own
                ``timeout`` applies when it is sooner.

        Raises:
            InteractionNotFound: Genesys answered the write 404: the interaction ended or never
                existed.
            GenesysError: the write was refused or could not be made. ``status_code`` is Genesys'
                answer, ``retryable`` whether trying the event again later may help,
                ``misconfigured`` whether the deployment must be fixed first (403, a renewed token
                refused, the OAuth client rejected); the message carries Genesys' code, message
                and correlation id.
        """
        self._check_loop()
        request = self.plan(interaction, fields)
        if problem := self.limits.problem(request):
            msg = f"not written to Genesys Cloud: {problem}"
            raise GenesysError(msg, retryable=False)
        doing = f"to {request.method} {request.path}"
        own = self._clock() + self.timeout
        deadline = own if deadline is None else min(deadline, own)
        response = await self._send_in_time(request, doing, deadline)
        if response.is_success:
            return request
        error = error_from_response(response, doing, client_id=self._client_id)
        if response.status_code == httpx.codes.NOT_FOUND:
            raise InteractionNotFound(
                str(error), status_code=error.status_code, correlation_id=error.correlation_id
            )
        if response.status_code == httpx.codes.UNAUTHORIZED:
            # A token Genesys issued moments ago was refused too: the client or its organisation
            # is being changed. Keep the event for replay rather than lose it.
            msg = (
                f"{error}; a token fetched moments ago was refused as well: check that the OAuth "
                "client (GENESYS_CLIENT_ID) still exists, is active, and belongs to the "
                "organisation of GENESYS_ENVIRONMENT"
            )
            raise GenesysError(
                msg,
                status_code=error.status_code,
                misconfigured=True,
                correlation_id=error.correlation_id,
            )
        raise error

    def _check_loop(self) -> None:
        """Refuse a second event loop: the pooled connections and locks belong to the first."""
        loop = asyncio.get_running_loop()
        if self._loop is None:
            self._loop = loop
        elif loop is not self._loop:
            msg = (
                "this GenesysClient was built on another event loop, which owns its HTTP "
                "connections; build one Enricher per event loop (in AWS Lambda, keep one "
                "asyncio.Runner for the whole process rather than asyncio.run per invocation)"
            )
            raise RuntimeError(msg)

    async def _send_in_time(
        self, request: WriteRequest, doing: str, deadline: float
    ) -> httpx.Response:
        """:meth:`_send`, cut short at the deadline; its duration and Genesys' correlation id go
        to the event's trace, whether it was written or not."""
        started = self._clock()
        correlation_id = None
        try:
            async with asyncio.timeout(deadline - started):
                response = await self._send(request, doing, deadline)
        except TimeoutError:
            msg = f"no time left before the deadline {doing}"
            raise GenesysError(msg, retryable=True) from None
        except GenesysError as error:
            correlation_id = error.correlation_id
            raise
        else:
            correlation_id = response.headers.get("ININ-Correlation-Id")
        finally:
            telemetry.record_write((self._clock() - started) * 1000, correlation_id)
        return response

    async def _send(self, request: WriteRequest, doing: str, deadline: float) -> httpx.Response:
        token = await self.tokens.token(deadline=deadline)
        response = await self._patch(request, token, doing, deadline)
        if response.status_code == httpx.codes.UNAUTHORIZED:
            self.tokens.invalidate(token)
            token = await self.tokens.token(deadline=deadline)
            response = await self._patch(request, token, doing, deadline)
        return response

    async def _patch(
        self, request: WriteRequest, token: str, doing: str, deadline: float
    ) -> httpx.Response:
        return await self.transport.send(
            request.method,
            self._api_url + request.path,
            doing=doing,
            deadline=deadline,
            json=request.body,
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        )
