"""RetryPolicy.retrying: the first attempt runs alone, later ones are stamina's, and the caller sees
the same attempts, failures and final error either way."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import httpx
import pytest
import stamina

from genesys_enrich.retry import RetryableResponse, RetryPolicy

URL = "https://crm.example.com/customers/1"


@pytest.fixture(autouse=True)
def no_waits() -> Iterator[None]:
    with stamina.set_testing(True, attempts=3):
        yield


def answer(status: int) -> RetryableResponse:
    return RetryableResponse(httpx.Response(status, request=httpx.Request("GET", URL)))


async def run(outcomes: list[BaseException | str]) -> tuple[str, int, int]:
    """Attempt until an outcome is a result; returns it, the attempts made, the failures seen."""
    retrying, hook = RetryPolicy().retrying(attempts=3)
    made = 0
    async for attempt in retrying:
        with attempt:
            made += 1
            outcome = outcomes.pop(0)
            if isinstance(outcome, BaseException):
                raise outcome
            return outcome, made, hook.failures
    return "ran out", made, hook.failures


async def test_a_first_success_is_one_attempt() -> None:
    assert await run(["ok"]) == ("ok", 1, 0)


async def test_a_failure_then_a_success_is_retried() -> None:
    assert await run([answer(503), httpx.ConnectError("refused"), "ok"]) == ("ok", 3, 2)


async def test_the_last_failure_is_raised_when_attempts_run_out() -> None:
    with pytest.raises(RetryableResponse) as raised:
        await run([answer(503), answer(502), answer(504), "never"])
    assert raised.value.response.status_code == 504


async def test_a_failure_not_worth_retrying_is_raised_at_once() -> None:
    outcomes: list[BaseException | str] = [ValueError("a bug"), "never"]
    with pytest.raises(ValueError, match="a bug"):
        await run(outcomes)
    assert outcomes == ["never"]


async def test_a_cancelled_first_attempt_is_not_retried() -> None:
    outcomes: list[BaseException | str] = [asyncio.CancelledError(), "never"]
    with pytest.raises(asyncio.CancelledError):
        await run(outcomes)
    assert outcomes == ["never"]
