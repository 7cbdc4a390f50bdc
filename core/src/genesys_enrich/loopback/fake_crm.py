"""A fake REST CRM: ``GET /customers/{id}`` and ``GET /customers?field=value`` with a bearer key,
over real HTTP, with the faults a CRM in trouble brings: latency, 5xx, hangs past any timeout, a
rotated key, a rate limit."""

from __future__ import annotations

import collections
import math
import threading
import time
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import unquote

from .server import LoopbackServer, Request, Response, chance

DEMO_CUSTOMERS: dict[str, dict[str, Any]] = {
    "CUST-1001": {
        "crmAccountId": "ACCT-99281",
        "lifetimeValue": 14250.75,
        "loyaltyTier": "Platinum",
        "lastPurchaseDate": "2024-05-28T09:15:00Z",
        "segment": "retail",
    },
    "uwu": {
        "crmAccountId": "ACCT-10442",
        "lifetimeValue": 980.0,
        "loyaltyTier": "Silver",
        "lastPurchaseDate": "2022-03-30T17:02:00Z",
        "segment": "web",
    },
}
"""The customers the demo's CRM knows, by the id an event carries."""


class FakeCrm(LoopbackServer):
    """Answers ``GET /customers/{id}`` from a dict, 404 for unknown ids, 401 for a wrong key.

    It also searches, as many CRMs do: ``GET /customers?email=pat@example.com`` answers
    ``{"results": [...]}`` with every customer whose fields equal all the query's values, an empty
    list when none does.

    Args:
        customers: customer id to the JSON object returned for it.
        api_key: the bearer key it requires; ``None`` accepts any request.
        latency: seconds to wait before answering each lookup.
        failing: customer ids answered with 503, as a CRM in trouble would; change
            :attr:`failing` to heal or break it mid-test.
        rate_limit: lookups allowed in each ``rate_window`` seconds of wall time; beyond it, 429
            with only ``X-RateLimit-Reset``: the Unix time the window ends, in seconds.
        fail_rate: the share of lookups answered ``fail_status``; ``hang_rate``: the share held
            ``hang_seconds`` before the answer (past any sensible timeout). Both are drawn from
            ``seed``, the path and how many times it was asked, so a seeded run injects the same
            faults whatever order requests arrive in; set them to 0 to heal it.
    """

    def __init__(
        self,
        customers: Mapping[str, Mapping[str, Any]] | None = None,
        *,
        api_key: str | None = "demo-crm-key",
        latency: float = 0.0,
        failing: Iterable[str] = (),
        rate_limit: int | None = None,
        rate_window: float = 60.0,
        fail_rate: float = 0.0,
        fail_status: int = 503,
        hang_rate: float = 0.0,
        hang_seconds: float = 5.0,
        seed: int = 0,
    ) -> None:
        super().__init__()
        self.customers = {key: dict(value) for key, value in (customers or DEMO_CUSTOMERS).items()}
        self.api_key = api_key
        self.latency = latency
        self.failing = set(failing)
        self.rate_limit = rate_limit
        self.rate_window = rate_window
        self._window = threading.Lock()
        self._window_ends = 0.0
        self._window_calls = 0
        self.fail_rate = fail_rate
        self.fail_status = fail_status
        self.hang_rate = hang_rate
        self.hang_seconds = hang_seconds
        self.seed = seed
        self.statuses: collections.Counter[int] = collections.Counter()
        """How many responses of each status it sent."""
        self.hangs = 0
        """How many lookups it held for ``hang_seconds``."""
        self._asked: collections.Counter[str] = collections.Counter()
        self._state = threading.Lock()
        self._closing = threading.Event()

    def close(self) -> None:
        self._closing.set()
        super().close()

    def handle(self, request: Request) -> Response:
        response = self._answer(request)
        with self._state:
            self.statuses[response.status] += 1
        return response

    def _answer(self, request: Request) -> Response:
        if (
            self.api_key is not None
            and request.headers.get("authorization") != f"Bearer {self.api_key}"
        ):
            return Response(401, {"error": "invalid api key"})
        if limited := self._rate_limited():
            return limited
        if request.method == "GET" and request.path == "/customers":
            return Response(200, {"results": self._search(request.query)})
        prefix = "/customers/"
        segment = request.path.removeprefix(prefix)
        if request.method != "GET" or not request.path.startswith(prefix) or "/" in segment:
            return Response(404, {"error": f"no route for {request.method} {request.path}"})
        if self.latency:
            time.sleep(self.latency)
        with self._state:
            self._asked[request.path] += 1
            asked = self._asked[request.path]
        if self.hang_rate and chance(self.seed, "hang", request.path, asked) < self.hang_rate:
            with self._state:
                self.hangs += 1
            self._closing.wait(self.hang_seconds)
        customer_id = unquote(segment)
        if customer_id in self.failing:
            return Response(503, {"error": "service unavailable"})
        if self.fail_rate and chance(self.seed, "fail", request.path, asked) < self.fail_rate:
            return Response(self.fail_status, {"error": "injected failure"})
        customer = self.customers.get(customer_id)
        if customer is None:
            return Response(404, {"error": "customer not found"})
        return Response(200, customer)

    def _search(self, query: Mapping[str, list[str]]) -> list[dict[str, Any]]:
        return [
            customer
            for customer in self.customers.values()
            if all(str(customer.get(field)) in values for field, values in query.items())
        ]

    def _rate_limited(self) -> Response | None:
        if self.rate_limit is None:
            return None
        now = time.time()
        with self._window:
            if now >= self._window_ends:
                self._window_ends, self._window_calls = now + self.rate_window, 0
            self._window_calls += 1
            if self._window_calls <= self.rate_limit:
                return None
            reset = math.ceil(self._window_ends)
        return Response(429, {"error": "rate limit exceeded"}, {"X-RateLimit-Reset": str(reset)})
