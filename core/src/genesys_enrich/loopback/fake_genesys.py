"""A fake Genesys Cloud: the OAuth token endpoint and the two write APIs, over real HTTP, with
the faults production brings: latency, a per-minute rate limit with ``Retry-After``, 5xx every Nth
request, hangs, expiring and revoked tokens, ended conversations and missing permissions."""

from __future__ import annotations

import asyncio
import base64
import collections
import email.utils
import math
import re
import secrets
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any, Literal
from urllib.parse import parse_qs, unquote

from .server import LoopbackServer, Request, Response, chance

_INTERACTION = re.compile(r"^/api/v2/interactions/([^/]+)$")
_ATTRIBUTES = re.compile(r"^/api/v2/conversations/([^/]+)/participants/([^/]+)/attributes$")
_CONVERSATION = re.compile(r"^/api/v2/conversations/([^/]+)$")


@dataclass(frozen=True)
class Write:
    """One accepted write: which API, which interaction, what was sent."""

    kind: str
    """``"context"`` (seed PATCH) or ``"attributes"`` (participant attributes)."""
    interaction_id: str
    participant_id: str | None
    values: dict[str, Any]


class ScaledClock:
    """Time that runs ``factor`` times faster than the wall: give :meth:`now` to a
    :class:`FakeGenesys` and the clock itself to the client's rate limiter
    (``Enricher.start(..., clock=...)``), and a minute of rate-limited traffic takes
    ``60 / factor`` seconds while both sides agree on what a minute is."""

    def __init__(self, factor: float) -> None:
        self.factor = factor
        self._origin = time.monotonic()

    def now(self) -> float:
        return self._origin + (time.monotonic() - self._origin) * self.factor

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds / self.factor)


class ManualClock:
    """Time that moves only when told to or slept on: give :meth:`now` to a :class:`FakeGenesys`
    (and to a client's token provider) and the clock itself to the client's rate limiter, then
    :meth:`advance` it between batches. A sleep is recorded in :attr:`slept` and ends at once, the
    clock moved on to the instant it was due to end: callers that sleep side by side wake at
    their own instants, never before, and time never goes back. A test asserts what was waited
    for, not how long it took, so the machine's speed cannot change the verdict.
    """

    def __init__(self, start: float = 1000.0) -> None:
        self.t = start
        self.slept: list[float] = []
        """Every sleep asked for, in seconds, in order."""

    def now(self) -> float:
        return self.t

    def advance(self, seconds: float) -> None:
        self.t += seconds

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        due = self.t + seconds
        await asyncio.sleep(0)  # callers sleeping at this same instant start their sleeps too
        self.t = max(self.t, due)


HANG = Response(504, {"message": "the fake hung until it was closed", "code": "request.timeout"})
"""A scripted answer that never comes while the client waits (see :meth:`FakeGenesys.fail_next`)."""

Endpoint = Literal["token", "api", "any"]


class FakeGenesys(LoopbackServer):
    """Plays Genesys Cloud's login and API hosts on one loopback port.

    Point ``GENESYS_LOGIN_URL`` and ``GENESYS_API_URL`` (or ``[genesys] login_url`` and
    ``api_url``) at :attr:`url`. It checks the client credentials and bearer tokens, keeps what is
    written so it can be read back, and records every request and the status it answered.

    Args:
        client_id, client_secret: the credentials it accepts.
        token_lifetime: how long the tokens it issues are valid, in seconds of ``clock``.
        reported_lifetime: the ``expires_in`` it tells clients (default ``token_lifetime``); set it
            longer to make tokens expire before the client expects.
        missing: interaction/conversation ids it answers 404 for (ended conversations).
        forbidden: interaction/conversation ids it answers 403 ``missing.permissions`` for.
        latency: seconds to wait before answering any request.
        rate_limit: requests (token and API alike) allowed in any ``rate_window`` seconds;
            beyond it, 429 ``too.many.requests`` with ``Retry-After``, as Genesys Cloud does.
        rate_window: the rate limit's window, in seconds of ``clock`` (Genesys': 60).
        retry_after_date: send ``Retry-After`` as an HTTP date instead of seconds.
        fail_every: every Nth API request (not token requests) answers ``fail_status``.
        fail_rate: the share of API requests (not token requests) answered ``fail_status``, drawn
            from ``seed``, each request's path and how many times that path was asked, so a
            seeded run fails the same requests whatever order they arrive in.
        revoke_after_writes: revoke every token once this many writes have been accepted.
        clock: the fake's time, for token expiry and the rate limit; tests share a scaled one
            with the client's rate limiter to run minutes of traffic in seconds.
    """

    def __init__(
        self,
        client_id: str = "demo-client",
        client_secret: str = "demo-secret",  # noqa: S107 - the fake's own credential
        *,
        token_lifetime: float = 86_400,
        reported_lifetime: float | None = None,
        missing: set[str] | None = None,
        forbidden: set[str] | None = None,
        latency: float = 0.0,
        rate_limit: int | None = None,
        rate_window: float = 60.0,
        retry_after_date: bool = False,
        fail_every: int = 0,
        fail_status: int = 503,
        fail_rate: float = 0.0,
        seed: int = 0,
        revoke_after_writes: int | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__()
        self.client_id = client_id
        self.client_secret = client_secret
        self.token_lifetime = token_lifetime
        self.reported_lifetime = reported_lifetime
        self.missing = set(missing or ())
        self.forbidden = set(forbidden or ())
        self.latency = latency
        self.rate_limit = rate_limit
        self.rate_window = rate_window
        self.retry_after_date = retry_after_date
        self.fail_every = fail_every
        self.fail_status = fail_status
        self.fail_rate = fail_rate
        self.seed = seed
        self.revoke_after_writes = revoke_after_writes
        self._clock = clock
        self._tokens: dict[str, float] = {}
        self._state = threading.Lock()
        self._closing = threading.Event()
        self._recent: collections.deque[float] = collections.deque()
        self._api_count = 0
        self._asked: collections.Counter[str] = collections.Counter()
        self._script: collections.deque[tuple[Endpoint, Response]] = collections.deque()
        self.issued_tokens: list[str] = []
        """Every access token handed out, so tests can check none leaks."""
        self.statuses: collections.Counter[int] = collections.Counter()
        """How many responses of each status it sent."""
        self.answered: list[tuple[float, int]] = []
        """When each request arrived (on ``clock``) and the status it was answered with."""
        self.writes: list[Write] = []
        self.contexts: dict[str, dict[str, Any]] = {}
        self.attributes: dict[tuple[str, str], dict[str, str]] = {}

    @property
    def token_requests(self) -> list[Request]:
        return [r for r in self.requests if r.path == "/oauth/token"]

    def revoke_tokens(self) -> None:
        """Invalidate every issued token, as an admin rotating the client secret would."""
        with self._state:
            self._tokens.clear()

    def fail_next(
        self,
        status: int | Response,
        *,
        times: int = 1,
        on: Endpoint = "any",
        retry_after: str | None = None,
    ) -> None:
        """Answer the next ``times`` requests to ``on`` with ``status`` (a Genesys error body and
        correlation id) or the given :class:`Response`; :data:`HANG` holds the request open until
        the fake is closed."""
        if isinstance(status, Response):
            response = status
        else:
            response = _error(status, _CODES.get(status, "error"), f"scripted {status}")
            if retry_after is not None:
                response.headers["Retry-After"] = retry_after
        with self._state:
            self._script.extend([(on, response)] * times)

    def close(self) -> None:
        self._closing.set()
        super().close()

    def handle(self, request: Request) -> Response:
        arrived = self._clock()
        response = self._answer(request)
        if "ININ-Correlation-Id" not in response.headers:  # Genesys sends one on every answer
            headers = {"ININ-Correlation-Id": str(uuid.uuid4()), **response.headers}
            response = replace(response, headers=headers)
        with self._state:
            self.statuses[response.status] += 1
            self.answered.append((arrived, response.status))
        return response

    def _answer(self, request: Request) -> Response:
        if self.latency:
            self._closing.wait(self.latency)
        is_token = request.path == "/oauth/token"
        if limited := self._rate_limited():
            return limited
        if scripted := self._scripted("token" if is_token else "api"):
            if scripted is HANG:
                self._closing.wait(600)
            return scripted
        if is_token and request.method == "POST":
            return self._token(request)
        with self._state:
            self._api_count += 1
            self._asked[request.path] += 1
            asked = self._asked[request.path]
            fail = self.fail_every and self._api_count % self.fail_every == 0
        if self.fail_rate and chance(self.seed, request.path, asked) < self.fail_rate:
            fail = True
        if fail:
            return _error(self.fail_status, _CODES.get(self.fail_status, "error"), "injected")
        if not self._authorised(request):
            return _error(
                401, "authentication.required", "No authentication bearer token specified"
            )
        if request.method == "PATCH" and (match := _INTERACTION.match(request.path)):
            return self._patch_context(unquote(match[1]), request)
        if request.method == "PATCH" and (match := _ATTRIBUTES.match(request.path)):
            return self._patch_attributes(unquote(match[1]), unquote(match[2]), request)
        if request.method == "GET" and (match := _INTERACTION.match(request.path)):
            return self._get_interaction(unquote(match[1]))
        if request.method == "GET" and (match := _CONVERSATION.match(request.path)):
            return self._get_conversation(unquote(match[1]))
        return _error(404, "not.found", f"No route for {request.method} {request.path}")

    def _rate_limited(self) -> Response | None:
        if self.rate_limit is None:
            return None
        now = self._clock()
        with self._state:
            while self._recent and self._recent[0] <= now - self.rate_window:
                self._recent.popleft()
            if len(self._recent) < self.rate_limit:
                self._recent.append(now)
                return None
            wait = max(1, math.ceil(self._recent[0] + self.rate_window - now))
        response = _error(
            429,
            "too.many.requests",
            f"Rate limit exceeded the maximum. Retry the request in [{wait}] seconds",
        )
        response.headers["Retry-After"] = (
            email.utils.formatdate(time.time() + wait, usegmt=True)
            if self.retry_after_date
            else str(wait)
        )
        return response

    def _scripted(self, endpoint: Endpoint) -> Response | None:
        with self._state:
            if self._script and self._script[0][0] in (endpoint, "any"):
                return self._script.popleft()[1]
        return None

    def _token(self, request: Request) -> Response:
        form = parse_qs(request.body.decode())
        expected = base64.b64encode(f"{self.client_id}:{self.client_secret}".encode()).decode()
        if request.headers.get("authorization") != f"Basic {expected}":
            return Response(401, {"error": "invalid_client", "description": "client not found"})
        if form.get("grant_type") != ["client_credentials"]:
            return Response(400, {"error": "unsupported_grant_type"})
        token = secrets.token_urlsafe(24)
        with self._state:
            self._tokens[token] = self._clock() + self.token_lifetime
            self.issued_tokens.append(token)
        expires_in = self.reported_lifetime or self.token_lifetime
        return Response(
            200, {"access_token": token, "token_type": "bearer", "expires_in": expires_in}
        )

    def _authorised(self, request: Request) -> bool:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        with self._state:
            expiry = self._tokens.get(token)
        return scheme == "Bearer" and expiry is not None and self._clock() < expiry

    def _refused(self, conversation_id: str) -> Response | None:
        if conversation_id in self.missing:
            return _error(404, "not.found", f"Conversation {conversation_id} not found")
        if conversation_id in self.forbidden:
            return _error(
                403,
                "missing.permissions",
                "You are missing the following permission(s): "
                "[conversation:participant:attributesedit]",
            )
        return None

    def _accepted(self, write: Write) -> None:
        """Keep a write; called with the state lock held."""
        self.writes.append(write)
        if self.revoke_after_writes is not None and len(self.writes) == self.revoke_after_writes:
            self._tokens.clear()

    def _patch_context(self, interaction_id: str, request: Request) -> Response:
        if refused := self._refused(interaction_id):
            return refused
        body = request.json()
        context = body.get("context") if isinstance(body, dict) else None
        if not isinstance(context, dict):
            return _error(400, "bad.request", "The request body must hold a context object")
        with self._state:
            stored = self.contexts.setdefault(interaction_id, {})
            stored.update(context)
            self._accepted(Write("context", interaction_id, None, context))
        return Response(200, {"id": interaction_id, "context": stored})

    def _patch_attributes(
        self, conversation_id: str, participant_id: str, request: Request
    ) -> Response:
        if refused := self._refused(conversation_id):
            return refused
        body = request.json()
        attributes = body.get("attributes") if isinstance(body, dict) else None
        if not isinstance(attributes, dict) or not all(
            isinstance(v, str) for v in attributes.values()
        ):
            return _error(400, "bad.request", "attributes must be a map of strings to strings")
        with self._state:
            self.attributes.setdefault((conversation_id, participant_id), {}).update(attributes)
            self._accepted(Write("attributes", conversation_id, participant_id, attributes))
        return Response(202)

    def _get_interaction(self, interaction_id: str) -> Response:
        if interaction_id not in self.contexts:
            return _error(404, "not.found", f"Interaction {interaction_id} not found")
        return Response(200, {"id": interaction_id, "context": self.contexts[interaction_id]})

    def _get_conversation(self, conversation_id: str) -> Response:
        participants = [
            {"id": participant, "purpose": "customer", "attributes": values}
            for (conversation, participant), values in self.attributes.items()
            if conversation == conversation_id
        ]
        if not participants:
            return _error(404, "not.found", f"Conversation {conversation_id} not found")
        return Response(200, {"id": conversation_id, "participants": participants})


_CODES = {
    400: "bad.request",
    401: "authentication.required",
    403: "missing.permissions",
    404: "not.found",
    408: "request.timeout",
    409: "conflict",
    413: "request.entity.too.large",
    429: "too.many.requests",
    500: "internal.server.error",
    502: "bad.gateway",
    503: "service.unavailable",
    504: "request.timeout",
}


def _error(status: int, code: str, message: str) -> Response:
    correlation_id = str(uuid.uuid4())
    return Response(
        status,
        {"message": message, "code": code, "status": status, "contextId": correlation_id},
        headers={"ININ-Correlation-Id": correlation_id},
    )
