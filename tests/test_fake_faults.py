"""The loopback fakes' fault injection: seeded failure rates, hangs, refused connections."""

from __future__ import annotations

import random
import time

import httpx
import pytest

from genesys_enrich.testing import FakeCrm, FakeGenesys


def wait_until_reachable(url: str, within: float = 30.0) -> None:
    ends = time.monotonic() + within
    while True:
        try:
            httpx.get(url + "/ping", timeout=1.0)
            return
        except httpx.TransportError:
            if time.monotonic() > ends:
                raise
            time.sleep(0.05)


def test_a_refusing_server_refuses_new_connections_drops_old_ones_then_listens_again() -> None:
    """A service "restarting": new connections are refused, a kept-alive one gets no answer,
    and the same URL answers again afterwards."""
    with FakeCrm(api_key=None) as crm, httpx.Client() as kept:
        assert kept.get(crm.url + "/customers/uwu").status_code == 200
        crm.refuse_connections(0.5)
        with pytest.raises(httpx.ConnectError):
            httpx.get(crm.url + "/customers/uwu")
        with pytest.raises(httpx.TransportError):
            kept.get(crm.url + "/customers/uwu")
        wait_until_reachable(crm.url)
        assert httpx.get(crm.url + "/customers/uwu").status_code == 200
        assert crm.refusals == [0.5]


def test_a_seeded_failure_rate_fails_the_same_requests_in_any_order() -> None:
    """Which requests fail depends on the seed and what is asked, not on arrival order."""
    paths = [f"/api/v2/interactions/{n:04d}" for n in range(100)] * 2

    def failing(order: list[str]) -> set[tuple[str, int]]:
        failed = set()
        with FakeGenesys(fail_rate=0.1, seed=7) as genesys, httpx.Client() as client:
            asked: dict[str, int] = {}
            for path in order:
                asked[path] = asked.get(path, 0) + 1
                if client.patch(genesys.url + path).status_code == 503:
                    failed.add((path, asked[path]))
        return failed

    shuffled = paths[:]
    random.Random(1).shuffle(shuffled)  # noqa: S311 - an order, not a secret
    first = failing(paths)
    assert first == failing(shuffled)
    assert 5 <= len(first) <= 45  # about 10% of 200


@pytest.mark.slow
def test_a_crm_hangs_and_fails_at_its_seeded_rates() -> None:
    """Hung lookups outlast the client's timeout; failed ones answer the chosen status."""
    with FakeCrm(
        api_key=None, hang_rate=0.1, hang_seconds=0.3, fail_rate=0.1, fail_status=502, seed=3
    ) as crm:
        timeouts = 0
        with httpx.Client(timeout=0.2) as client:
            for number in range(100):
                try:
                    client.get(f"{crm.url}/customers/C-{number}")
                except httpx.TimeoutException:
                    timeouts += 1
        assert timeouts == crm.hangs > 0
        assert crm.statuses[502] > 0
