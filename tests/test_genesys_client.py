"""The Genesys client against respx: tokens, retries, deadlines, outcomes of a write, limits."""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import logging
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
import respx
import stamina
from pydantic import SecretStr
from stamina.instrumentation import RetryDetails, get_on_retry_hooks, set_on_retry_hooks

from genesys_enrich.errors import GenesysError, InteractionNotFound
from genesys_enrich.genesys.auth import REJECTION_MEMORY, TokenProvider
from genesys_enrich.genesys.client import GenesysClient, WriteLimits
from genesys_enrich.genesys.ratelimit import RateLimiter
from genesys_enrich.genesys.requests import attribute_value
from genesys_enrich.genesys.transport import Transport
from genesys_enrich.models import Interaction, WriteTarget
from genesys_enrich.retry import RetryPolicy, install_retry_logging, retry_after_seconds

API = "https://api.mypurecloud.ie"
LOGIN = "https://login.mypurecloud.ie"
SECRET = "s3cr3t-value"
CONVERSATION, PARTICIPANT = str(uuid.uuid4()), str(uuid.uuid4())
WRITE_URL = f"{API}/api/v2/conversations/{CONVERSATION}/participants/{PARTICIPANT}/attributes"
INTERACTION = Interaction(
    event_id="e-1",
    interaction_id=CONVERSATION,
    target=WriteTarget.PARTICIPANT_ATTRIBUTES,
    participant_id=PARTICIPANT,
)


def token_response(value: str = "tok-1", expires_in: int = 86_400) -> httpx.Response:
    return httpx.Response(
        200, json={"access_token": value, "token_type": "bearer", "expires_in": expires_in}
    )


def genesys_error(status: int, code: str, message: str, **headers: str) -> httpx.Response:
    return httpx.Response(
        status,
        json={"status": status, "code": code, "message": message},
        headers={"ININ-Correlation-Id": f"corr-{status}", **headers},
    )


class Clock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class FakeTime:
    """The rate limiter's clock in virtual time: sleeping only moves it forward."""

    def __init__(self) -> None:
        self.t = 0.0
        self.slept: list[float] = []

    def now(self) -> float:
        return self.t

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.t += seconds


@contextlib.contextmanager
def record_retries() -> Iterator[list[RetryDetails]]:
    """Every retry stamina schedules while the block runs (its wait included)."""
    scheduled: list[RetryDetails] = []
    hooks = get_on_retry_hooks()
    set_on_retry_hooks([*hooks, scheduled.append])
    try:
        yield scheduled
    finally:
        set_on_retry_hooks(list(hooks))


@pytest.fixture
def mock() -> respx.MockRouter:
    with respx.mock(assert_all_called=False) as router:
        yield router


def build(
    http: httpx.AsyncClient,
    *,
    attempts: int = 4,
    clock: Callable[[], float] = time.monotonic,
    limits: WriteLimits | None = None,
    policy: RetryPolicy | None = None,
    limiter: RateLimiter | None = None,
) -> GenesysClient:
    transport = Transport(
        http,
        limiter=limiter or RateLimiter(1e6, clock=FakeTime()),
        attempts=attempts,
        policy=policy,
    )
    tokens = TokenProvider(
        transport,
        login_url=LOGIN,
        client_id="my-client",
        client_secret=SecretStr(SECRET),
        region="mypurecloud.ie",
        clock=clock,
    )
    return GenesysClient(
        transport, api_url=API, tokens=tokens, limits=limits, client_id="my-client"
    )


async def write(client: GenesysClient, **kwargs: Any) -> None:
    await client.write(INTERACTION, {"tier": "Gold", "value": 12.5}, **kwargs)


async def test_concurrent_writes_on_a_cold_process_share_one_token_request(
    http: httpx.AsyncClient, mock: respx.MockRouter
) -> None:
    """64 writes at once on a cold process make exactly one token request."""

    async def slow_token(request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(0.01)  # every other write arrives while this request is in flight
        return token_response()

    token = mock.post(f"{LOGIN}/oauth/token").mock(side_effect=slow_token)
    patch = mock.patch(WRITE_URL).mock(return_value=httpx.Response(202))
    client = build(http)
    await asyncio.gather(*(write(client) for _ in range(64)))
    assert token.call_count == 1
    assert patch.call_count == 64
    assert patch.calls.last.request.headers["Authorization"] == "Bearer tok-1"


async def test_the_token_is_renewed_a_margin_before_it_expires(
    http: httpx.AsyncClient, mock: respx.MockRouter
) -> None:
    """A token is reused until 5 minutes before its expiry, then a new one is fetched."""
    clock = Clock()
    token = mock.post(f"{LOGIN}/oauth/token").mock(
        side_effect=[token_response("tok-1", 3600), token_response("tok-2", 3600)]
    )
    patch = mock.patch(WRITE_URL).mock(return_value=httpx.Response(202))
    client = build(http, clock=clock)
    await write(client)
    clock.now += 3600 - 301
    await write(client)
    assert token.call_count == 1
    clock.now += 2  # inside the 300 s margin
    await write(client)
    assert token.call_count == 2
    assert patch.calls.last.request.headers["Authorization"] == "Bearer tok-2"


async def test_a_401_drops_the_token_and_retries_the_write_once(
    http: httpx.AsyncClient, mock: respx.MockRouter
) -> None:
    """A write refused with 401 gets a new token and succeeds on its second try."""
    mock.post(f"{LOGIN}/oauth/token").mock(
        side_effect=[token_response("old"), token_response("new")]
    )
    patch = mock.patch(WRITE_URL).mock(
        side_effect=[genesys_error(401, "credentials.expired", "expired"), httpx.Response(202)]
    )
    await write(build(http))
    assert [c.request.headers["Authorization"] for c in patch.calls] == [
        "Bearer old",
        "Bearer new",
    ]


async def test_a_second_401_fails_misconfigured_without_looping(
    http: httpx.AsyncClient, mock: respx.MockRouter
) -> None:
    """A fresh token refused again ends the write as a misconfiguration (the event is kept),
    saying what to check."""
    token = mock.post(f"{LOGIN}/oauth/token").mock(return_value=token_response())
    patch = mock.patch(WRITE_URL).mock(
        return_value=genesys_error(401, "bad.credentials", "Invalid login credentials")
    )
    with pytest.raises(GenesysError) as failure:
        await write(build(http))
    error = failure.value
    assert (error.status_code, error.misconfigured, error.retryable) == (401, True, False)
    assert "GENESYS_CLIENT_ID" in str(error)
    assert (token.call_count, patch.call_count) == (2, 2)


@pytest.mark.parametrize(
    "failure",
    [
        httpx.Response(503),
        genesys_error(429, "too.many.requests", "slow down", **{"Retry-After": "1"}),
        httpx.ConnectError("connection refused"),
    ],
    ids=["503", "429", "connect-error"],
)
async def test_token_endpoint_failures_are_retried(
    http: httpx.AsyncClient, mock: respx.MockRouter, failure: Any
) -> None:
    """A token request that meets a 503, a 429 or a refused connection is tried again."""
    token = mock.post(f"{LOGIN}/oauth/token").mock(side_effect=[failure, token_response()])
    mock.patch(WRITE_URL).mock(return_value=httpx.Response(202))
    await write(build(http))
    assert token.call_count == 2


@pytest.mark.parametrize(
    ("status", "code"),
    [(400, "invalid_client"), (400, "unauthorized_client"), (401, "invalid_client")],
)
async def test_rejected_credentials_name_the_variables_and_region_but_not_the_secret(
    http: httpx.AsyncClient, mock: respx.MockRouter, status: int, code: str
) -> None:
    """Bad client credentials say which variables to fix and which region, never the secret."""
    mock.post(f"{LOGIN}/oauth/token").mock(
        return_value=httpx.Response(status, json={"error": code, "description": "nope"})
    )
    patch = mock.patch(WRITE_URL)
    with pytest.raises(GenesysError) as failure:
        await write(build(http))
    message = str(failure.value)
    assert "GENESYS_CLIENT_ID" in message
    assert "GENESYS_CLIENT_SECRET" in message
    assert "mypurecloud.ie" in message
    assert code in message
    assert SECRET not in message
    assert failure.value.misconfigured  # kept for replay once the credentials are fixed
    assert not patch.called


async def test_concurrent_callers_share_a_failed_token_request(
    http: httpx.AsyncClient, mock: respx.MockRouter
) -> None:
    """32 events meeting bad credentials cost one token request, not 32."""

    async def slow_refusal(request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(0.01)  # the others arrive while this request is in flight
        return httpx.Response(400, json={"error": "invalid_client"})

    token = mock.post(f"{LOGIN}/oauth/token").mock(side_effect=slow_refusal)
    client = build(http)
    results = await asyncio.gather(*(write(client) for _ in range(32)), return_exceptions=True)
    assert all(isinstance(r, GenesysError) and r.misconfigured for r in results)
    assert token.call_count == 1


async def test_rejected_credentials_are_remembered_for_a_while_then_tried_again(
    http: httpx.AsyncClient, mock: respx.MockRouter
) -> None:
    """Events after a credentials rejection fail with its message and no token request, until
    the rejection is REJECTION_MEMORY seconds old; then the next one asks again."""
    token = mock.post(f"{LOGIN}/oauth/token").mock(
        side_effect=[httpx.Response(400, json={"error": "invalid_client"}), token_response()]
    )
    patch = mock.patch(WRITE_URL).mock(return_value=httpx.Response(202))
    clock = Clock()
    client = build(http, clock=clock)
    messages = set()
    for _ in range(20):
        with pytest.raises(GenesysError) as failure:
            await write(client)
        assert failure.value.misconfigured
        messages.add(str(failure.value))
        clock.now += 1
    assert token.call_count == 1
    assert len(messages) == 1
    assert "GENESYS_CLIENT_SECRET" in messages.pop()
    clock.now += REJECTION_MEMORY - 20
    await write(client)  # the secret was fixed meanwhile
    assert (token.call_count, patch.call_count) == (2, 1)


@pytest.mark.parametrize("status", [502, 503, 504, 500, 408])
async def test_server_errors_are_retried_until_success(
    http: httpx.AsyncClient, mock: respx.MockRouter, status: int
) -> None:
    """5xx and 408 answers are retried, and the write succeeds when Genesys recovers."""
    mock.post(f"{LOGIN}/oauth/token").mock(return_value=token_response())
    patch = mock.patch(WRITE_URL).mock(
        side_effect=[genesys_error(status, "x", "busy"), httpx.Response(202)]
    )
    await write(build(http))
    assert patch.call_count == 2


@pytest.mark.parametrize(
    "error",
    [
        httpx.ConnectError("refused"),
        httpx.ReadTimeout("hung"),
        httpx.RemoteProtocolError("peer closed connection without sending complete message body"),
        httpx.PoolTimeout("pool busy"),
    ],
    ids=type,
)
async def test_transport_errors_are_retried(
    http: httpx.AsyncClient, mock: respx.MockRouter, error: Exception
) -> None:
    """Refused, hung and dropped connections are retried."""
    mock.post(f"{LOGIN}/oauth/token").mock(return_value=token_response())
    patch = mock.patch(WRITE_URL).mock(side_effect=[error, httpx.Response(202)])
    await write(build(http))
    assert patch.call_count == 2


async def test_retries_stop_after_the_configured_attempts_as_a_retryable_failure(
    http: httpx.AsyncClient, mock: respx.MockRouter
) -> None:
    """A Genesys that keeps answering 503 costs the configured attempts, then fails retryable."""
    stamina.set_testing(True, attempts=5, cap=True)  # honour the client's own attempts
    mock.post(f"{LOGIN}/oauth/token").mock(return_value=token_response())
    patch = mock.patch(WRITE_URL).mock(return_value=genesys_error(503, "service.unavailable", "x"))
    with pytest.raises(GenesysError) as failure:
        await write(build(http, attempts=3))
    assert patch.call_count == 3
    assert failure.value.retryable
    assert "3 attempts" in str(failure.value)
    assert "corr-503" in str(failure.value)


@pytest.mark.parametrize(
    ("status", "code", "message"),
    [
        (400, "bad.request", "attributes must be strings"),
        (409, "conflict", "The conversation was updated by someone else"),
        (413, "request.entity.too.large", "Payload too large"),
    ],
)
async def test_client_errors_fail_at_once_with_genesys_message_code_and_correlation_id(
    http: httpx.AsyncClient, mock: respx.MockRouter, status: int, code: str, message: str
) -> None:
    """400, 409 and 413 are not retried; the error carries what Genesys said and its id."""
    mock.post(f"{LOGIN}/oauth/token").mock(return_value=token_response())
    patch = mock.patch(WRITE_URL).mock(return_value=genesys_error(status, code, message))
    with pytest.raises(GenesysError) as failure:
        await write(build(http))
    assert patch.call_count == 1
    assert not failure.value.retryable
    assert failure.value.status_code == status
    assert failure.value.correlation_id == f"corr-{status}"
    for part in (str(status), code, message, f"corr-{status}"):
        assert part in str(failure.value)


async def test_403_names_the_missing_permission_and_is_not_retried(
    http: httpx.AsyncClient, mock: respx.MockRouter
) -> None:
    """A 403 says which permission the OAuth client lacks and how to grant it, without retrying."""
    mock.post(f"{LOGIN}/oauth/token").mock(return_value=token_response())
    patch = mock.patch(WRITE_URL).mock(
        return_value=genesys_error(
            403,
            "missing.permissions",
            "You are missing the following permission(s): "
            "[conversation:participant:attributesedit]",
        )
    )
    with pytest.raises(GenesysError) as failure:
        await write(build(http))
    message = str(failure.value)
    assert patch.call_count == 1
    assert not failure.value.retryable
    assert "'my-client' lacks the permission conversation:participant:attributesedit" in message
    assert "role" in message
    assert "division" in message


async def test_404_is_reported_as_not_found(
    http: httpx.AsyncClient, mock: respx.MockRouter
) -> None:
    """A 404 is not retried and carries its status, so the pipeline can call it skipped."""
    mock.post(f"{LOGIN}/oauth/token").mock(return_value=token_response())
    patch = mock.patch(WRITE_URL).mock(return_value=genesys_error(404, "not.found", "gone"))
    with pytest.raises(InteractionNotFound) as failure:
        await write(build(http))
    assert (patch.call_count, failure.value.status_code) == (1, 404)


@pytest.mark.parametrize("status", [403, 404])
async def test_a_token_endpoint_refusing_the_path_names_the_login_url(
    http: httpx.AsyncClient, mock: respx.MockRouter, status: int
) -> None:
    """A login URL answering 403/404 is a misconfiguration, not an ended call."""
    mock.post(f"{LOGIN}/oauth/token").mock(return_value=genesys_error(status, "x", "no"))
    patch = mock.patch(WRITE_URL).mock(return_value=httpx.Response(202))
    with pytest.raises(GenesysError) as failure:
        await write(build(http))
    message = str(failure.value)
    assert not isinstance(failure.value, InteractionNotFound)
    assert failure.value.misconfigured
    assert f"{LOGIN}/oauth/token" in message
    assert "GENESYS_LOGIN_URL" in message
    assert "GENESYS_ENVIRONMENT" in message
    assert "division" not in message
    assert "not found or has ended" not in message
    assert not patch.called


async def test_retry_after_longer_than_the_deadline_fails_at_once_without_sleeping(
    http: httpx.AsyncClient, mock: respx.MockRouter
) -> None:
    """A 429 asking for 30 s with 10 s left ends the write now, retryable, rather than sleeping."""
    mock.post(f"{LOGIN}/oauth/token").mock(return_value=token_response())
    patch = mock.patch(WRITE_URL).mock(
        return_value=genesys_error(429, "too.many.requests", "slow", **{"Retry-After": "30"})
    )
    policy = RetryPolicy(max_retry_after=60)
    with record_retries() as scheduled, pytest.raises(GenesysError) as failure:
        await write(build(http, policy=policy), deadline=time.monotonic() + 10)
    assert scheduled == []  # no wait was begun
    assert patch.call_count == 1
    assert failure.value.retryable
    assert "deadline" in str(failure.value)
    assert "30 s (Retry-After)" in str(failure.value)


async def test_a_rate_limit_pause_longer_than_the_deadline_fails_before_waiting(
    http: httpx.AsyncClient, mock: respx.MockRouter
) -> None:
    """Requests held 30 s by an earlier 429, with 10 s left, fail retryable at once, unsent."""
    mock.post(f"{LOGIN}/oauth/token").mock(return_value=token_response())
    patch = mock.patch(WRITE_URL).mock(return_value=httpx.Response(202))
    time_ = FakeTime()
    limiter = RateLimiter(1e6, clock=time_)
    client = build(http, limiter=limiter)
    await write(client)
    limiter.pause(30)
    with pytest.raises(GenesysError) as failure:
        await write(client, deadline=time.monotonic() + 10)
    assert failure.value.retryable
    assert "no time left before the deadline" in str(failure.value)
    assert "rate limit would hold the request 30 s" in str(failure.value)
    assert (patch.call_count, time_.slept) == (1, [])


async def test_a_hung_request_is_cut_at_the_deadline(
    http: httpx.AsyncClient, mock: respx.MockRouter
) -> None:
    """A Genesys that never answers is abandoned at the deadline, and the write fails retryable."""
    abandoned = []

    async def hang(request: httpx.Request) -> httpx.Response:
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            abandoned.append(request)
            raise
        return httpx.Response(202)

    mock.post(f"{LOGIN}/oauth/token").mock(return_value=token_response())
    mock.patch(WRITE_URL).mock(side_effect=hang)
    with pytest.raises(GenesysError) as failure:
        # Time enough to send, however busy the machine: the request is cut off, not unsent.
        await write(build(http), deadline=time.monotonic() + 1.0)
    assert len(abandoned) == 1  # cut off while waiting for the answer, not answered late
    assert failure.value.retryable
    assert "no time left before the deadline" in str(failure.value)


async def test_a_passed_deadline_sends_nothing(
    http: httpx.AsyncClient, mock: respx.MockRouter
) -> None:
    """With the deadline already gone, no request is made and the event stays retryable."""
    token = mock.post(f"{LOGIN}/oauth/token").mock(return_value=token_response())
    with pytest.raises(GenesysError) as failure:
        await write(build(http), deadline=time.monotonic() - 1)
    assert failure.value.retryable
    assert not token.called


def test_retry_after_is_honoured_as_seconds_or_http_date_and_capped() -> None:
    """A 429's wait is its Retry-After (seconds or date), no longer than the cap."""
    policy = RetryPolicy(max_retry_after=20, default_retry_after=3)
    request = httpx.Request("PATCH", WRITE_URL)

    def wait(**headers: str) -> float:
        return policy.retry_after(httpx.Response(429, headers=headers, request=request))

    assert wait(**{"Retry-After": "7"}) == 7
    in_an_hour = email.utils.formatdate(time.time() + 3600, usegmt=True)
    assert wait(**{"Retry-After": in_an_hour}) == 20
    assert wait(**{"Retry-After": "3600"}) == 20
    assert wait() == 3
    # A date is read against the wall clock, here a fixed one.
    date = email.utils.formatdate(1_000_012, usegmt=True)
    assert retry_after_seconds(date, now=lambda: 1_000_000.0) == 12
    assert retry_after_seconds(date, now=lambda: 1_000_100.0) == 0  # already past


@pytest.mark.parametrize("odd", ["²", "٣", "-5", "1e3", "soon"])
def test_a_retry_after_that_is_not_ascii_seconds_or_a_date_gets_the_default_wait(odd: str) -> None:
    """A Retry-After such as ``²`` (a digit to str.isdigit, not to float) waits the default."""
    policy = RetryPolicy(default_retry_after=2)
    request = httpx.Request("PATCH", WRITE_URL)
    headers = [(b"Retry-After", odd.encode())]
    assert policy.retry_after(httpx.Response(429, headers=headers, request=request)) == 2


async def test_a_429_pauses_every_caller_for_its_retry_after(
    http: httpx.AsyncClient, mock: respx.MockRouter
) -> None:
    """After one write meets a 429, the next request anyone sends waits out the Retry-After."""

    fake_time = FakeTime()
    limiter = RateLimiter(6000, clock=fake_time)
    mock.post(f"{LOGIN}/oauth/token").mock(return_value=token_response())
    mock.patch(WRITE_URL).mock(
        side_effect=[
            genesys_error(429, "too.many.requests", "slow", **{"Retry-After": "7"}),
            httpx.Response(202),
            httpx.Response(202),
        ]
    )
    client = build(http, limiter=limiter)
    await write(client)
    assert sum(fake_time.slept) == pytest.approx(7, abs=0.05)
    await write(client)  # another caller: no new pause, the steady rate applies
    assert sum(fake_time.slept) == pytest.approx(7, abs=0.05)


class Records(logging.Handler):
    """Keeps every record of the loggers it is attached to."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


async def test_each_retry_is_logged_once_with_attempt_wait_status_and_correlation_id(
    http: httpx.AsyncClient, mock: respx.MockRouter
) -> None:
    """Two retries make two log lines naming the attempt, the wait, the status and the id."""
    install_retry_logging()
    mock.post(f"{LOGIN}/oauth/token").mock(return_value=token_response())
    mock.patch(WRITE_URL).mock(
        side_effect=[
            genesys_error(503, "service.unavailable", "busy"),
            genesys_error(429, "too.many.requests", "slow", **{"Retry-After": "2"}),
            httpx.Response(202),
        ]
    )
    kept = Records()
    loggers = [logging.getLogger(name) for name in ("genesys_enrich.retry", "stamina")]
    for logger in loggers:
        logger.addHandler(kept)
    try:
        await write(build(http))
    finally:
        for logger in loggers:
            logger.removeHandler(kept)
    first, second = kept.records  # one line per retry, none from stamina's default hook
    assert (first.attempt, first.status, first.correlation_id) == (1, 503, "corr-503")
    assert (second.attempt, second.status, second.correlation_id) == (2, 429, "corr-429")
    assert isinstance(second.wait_seconds, float)
    assert "corr-429" in second.getMessage()
    assert f"PATCH api.mypurecloud.ie/api/v2/conversations/{CONVERSATION}" in first.getMessage()


async def test_oversized_values_and_too_many_keys_are_refused_before_any_request(
    http: httpx.AsyncClient, mock: respx.MockRouter
) -> None:
    """A write over the limits fails for good with the reason, and Genesys is never called."""
    token = mock.post(f"{LOGIN}/oauth/token").mock(return_value=token_response())
    client = build(http, limits=WriteLimits(max_keys=3, max_value_chars=10))
    with pytest.raises(GenesysError) as too_long:
        await client.write(INTERACTION, {"notes": "x" * 11})
    with pytest.raises(GenesysError) as too_many:
        await client.write(INTERACTION, {f"k{i}": i for i in range(4)})
    assert "'notes' is 11 characters" in str(too_long.value)
    assert "max_attribute_chars" in str(too_long.value)
    assert "4 keys" in str(too_many.value)
    assert "max_attributes" in str(too_many.value)
    assert not too_long.value.retryable
    assert not too_many.value.retryable
    assert not token.called


def test_attribute_values_become_strings_by_the_documented_rule() -> None:
    """Text stays, booleans and numbers take their JSON form, lists and objects compact JSON."""
    assert attribute_value("Gold") == "Gold"
    assert attribute_value(True) == "true"
    assert attribute_value(14250.75) == "14250.75"
    assert attribute_value(3) == "3"
    assert attribute_value(["a", 1]) == '["a",1]'
    assert attribute_value({"tier": "Gold", "since": 2020}) == '{"tier":"Gold","since":2020}'
    assert attribute_value("Zoë") == "Zoë"


def test_reprs_name_no_secret(http: httpx.AsyncClient) -> None:
    """The client, its token provider and transport print without the secret."""
    client = build(http)
    for shown in (repr(client), repr(client.tokens), repr(client.transport)):
        assert SECRET not in shown


def test_a_client_used_on_a_second_event_loop_says_why_it_cannot(mock: respx.MockRouter) -> None:
    """Reusing the client across asyncio.run calls fails with advice, not 'Event loop is closed'."""
    mock.post(f"{LOGIN}/oauth/token").mock(return_value=token_response())
    mock.patch(WRITE_URL).mock(return_value=httpx.Response(202))
    client = build(httpx.AsyncClient())
    asyncio.run(write(client))
    with pytest.raises(RuntimeError, match=r"one asyncio\.Runner for the whole process"):
        asyncio.run(write(client))


async def test_a_token_request_cut_short_by_one_callers_deadline_does_not_fail_the_others(
    http: httpx.AsyncClient, mock: respx.MockRouter
) -> None:
    """The caller whose deadline ends mid-fetch fails alone; those waiting fetch for themselves
    rather than inherit an older failure."""
    calls = 0

    async def refused_then_slow_then_fine(request: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        if calls == 1:
            return httpx.Response(400, json={"error": "invalid_client"})
        if calls == 2:
            await asyncio.sleep(30)  # outlasts the hurried caller's deadline
        return token_response()

    mock.post(f"{LOGIN}/oauth/token").mock(side_effect=refused_then_slow_then_fine)
    mock.patch(WRITE_URL).mock(return_value=httpx.Response(202))
    clock = Clock()
    client = build(http, clock=clock)
    with pytest.raises(GenesysError, match="GENESYS_CLIENT_SECRET"):
        await write(client)  # an earlier failure, since fixed
    clock.now += REJECTION_MEMORY  # and no longer remembered
    # Time enough to start the fetch, however busy the machine; not enough to see it end.
    hurried = asyncio.ensure_future(write(client, deadline=time.monotonic() + 0.5))
    await asyncio.sleep(0.01)  # the hurried caller holds the fetch
    patient = asyncio.ensure_future(write(client))
    with pytest.raises(GenesysError, match="no time left"):
        await hurried
    await patient
    assert calls == 3
