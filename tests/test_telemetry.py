"""Per-event traces of the Genesys client: retries, 429s, token requests, limiter waits and the
write's correlation id, against respx and in virtual time."""

from __future__ import annotations

import asyncio
import uuid

import httpx
import pytest
import respx
from pydantic import SecretStr

from genesys_enrich.errors import GenesysError
from genesys_enrich.genesys.auth import TokenProvider
from genesys_enrich.genesys.client import GenesysClient
from genesys_enrich.genesys.ratelimit import RateLimiter
from genesys_enrich.genesys.transport import Transport
from genesys_enrich.models import Interaction, WriteTarget
from genesys_enrich.telemetry import EventTrace, tracing
from genesys_enrich.testing import ManualClock

API, LOGIN = "https://api.mypurecloud.ie", "https://login.mypurecloud.ie"


def interaction() -> Interaction:
    return Interaction(
        event_id=str(uuid.uuid4()),
        interaction_id=str(uuid.uuid4()),
        target=WriteTarget.INTERACTION_CONTEXT,
    )


def answer(status: int, correlation_id: str, **headers: str) -> httpx.Response:
    body = {"status": status, "code": "x", "message": "y"}
    return httpx.Response(
        status, json=body, headers={"ININ-Correlation-Id": correlation_id, **headers}
    )


@pytest.fixture
def mock() -> respx.MockRouter:
    with respx.mock(assert_all_called=False) as router:
        router.post(f"{LOGIN}/oauth/token").respond(
            json={"access_token": "tok", "token_type": "bearer", "expires_in": 86_400}
        )
        yield router


def client(http: httpx.AsyncClient, limiter: RateLimiter) -> GenesysClient:
    transport = Transport(http, limiter=limiter, attempts=4)
    tokens = TokenProvider(transport, login_url=LOGIN, client_id="c", client_secret=SecretStr("s"))
    return GenesysClient(transport, api_url=API, tokens=tokens)


async def test_a_trace_counts_the_retries_429s_token_request_and_limiter_wait_of_its_write(
    http: httpx.AsyncClient, mock: respx.MockRouter
) -> None:
    """A write that meets a 429 (Retry-After 7) and a 503 before it passes: two retries, one 429,
    one token request, 7 s held by the limiter, and the correlation id of the answer that passed."""
    clock = ManualClock()
    genesys = client(http, RateLimiter(6000, clock=clock))
    where = interaction()
    mock.patch(f"{API}/api/v2/interactions/{where.interaction_id}").mock(
        side_effect=[
            answer(429, "corr-429", **{"Retry-After": "7"}),
            answer(503, "corr-503"),
            answer(202, "corr-202"),
        ]
    )
    with tracing() as trace:
        await genesys.write(where, {"tier": "Gold"})
    assert (trace.retries, trace.throttled, trace.token_requests) == (2, 1, 1)
    assert trace.limiter_wait_ms == pytest.approx(7000, abs=50)
    assert trace.correlation_id == "corr-202"
    assert trace.write_ms is not None
    assert trace.write_ms >= 0


async def test_a_refused_write_keeps_genesys_correlation_id(
    http: httpx.AsyncClient, mock: respx.MockRouter
) -> None:
    """A 403 is not retried; its correlation id is what the trace keeps."""
    genesys = client(http, RateLimiter(6000, clock=ManualClock()))
    where = interaction()
    mock.patch(f"{API}/api/v2/interactions/{where.interaction_id}").mock(
        return_value=answer(403, "corr-403")
    )
    with tracing() as trace, pytest.raises(GenesysError):
        await genesys.write(where, {"tier": "Gold"})
    assert (trace.correlation_id, trace.retries) == ("corr-403", 0)


async def test_concurrent_events_keep_their_own_traces(
    http: httpx.AsyncClient, mock: respx.MockRouter
) -> None:
    """Two events written at once: the one that met the 429 counts it, the other does not, and
    only the first to need the token counts the token request."""
    genesys = client(http, RateLimiter(6000, clock=ManualClock()))
    throttled, smooth = interaction(), interaction()
    mock.patch(f"{API}/api/v2/interactions/{throttled.interaction_id}").mock(
        side_effect=[answer(429, "a", **{"Retry-After": "1"}), answer(202, "b")]
    )
    mock.patch(f"{API}/api/v2/interactions/{smooth.interaction_id}").mock(
        return_value=answer(202, "c")
    )

    async def event(where: Interaction) -> EventTrace:
        with tracing() as trace:
            await genesys.write(where, {"tier": "Gold"})
        return trace

    first, second = await asyncio.gather(event(throttled), event(smooth))
    assert (first.throttled, first.retries, first.correlation_id) == (1, 1, "b")
    assert (second.throttled, second.retries, second.correlation_id) == (0, 0, "c")
    assert first.token_requests + second.token_requests == 1


async def test_outside_a_trace_the_client_counts_nothing_and_works(
    http: httpx.AsyncClient, mock: respx.MockRouter
) -> None:
    """A client used without a host (a script, a plugin's test) is unaffected by the hooks."""
    genesys = client(http, RateLimiter(6000, clock=ManualClock()))
    where = interaction()
    route = mock.patch(f"{API}/api/v2/interactions/{where.interaction_id}").mock(
        side_effect=[answer(503, "x"), answer(202, "y")]
    )
    await genesys.write(where, {"tier": "Gold"})
    assert route.call_count == 2
