"""A fake Genesys Cloud: the OAuth token endpoint and the two write APIs, over real HTTP."""

from __future__ import annotations

import base64
import re
import secrets
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, unquote

from ._server import LoopbackServer, Request, Response

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


class FakeGenesys(LoopbackServer):
    """Plays Genesys Cloud's login and API hosts on one loopback port.

    Point ``GENESYS_LOGIN_URL`` and ``GENESYS_API_URL`` (or ``[genesys] login_url`` and
    ``api_url``) at :attr:`url`. It checks the client credentials and bearer tokens, keeps what is
    written so it can be read back, and records every request.

    Args:
        client_id, client_secret: the credentials it accepts.
        token_lifetime: ``expires_in`` of the tokens it issues, in seconds.
        missing: interaction/conversation ids it answers 404 for (ended conversations).
    """

    def __init__(
        self,
        client_id: str = "demo-client",
        client_secret: str = "demo-secret",  # noqa: S107 - the fake's own credential
        *,
        token_lifetime: int = 86_400,
        missing: set[str] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__()
        self.client_id = client_id
        self.client_secret = client_secret
        self.token_lifetime = token_lifetime
        self.missing = set(missing or ())
        self._clock = clock
        self._tokens: dict[str, float] = {}
        self._state = threading.Lock()
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

    def handle(self, request: Request) -> Response:
        if request.path == "/oauth/token" and request.method == "POST":
            return self._token(request)
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
        return Response(
            200, {"access_token": token, "token_type": "bearer", "expires_in": self.token_lifetime}
        )

    def _authorised(self, request: Request) -> bool:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        with self._state:
            expiry = self._tokens.get(token)
        return scheme == "Bearer" and expiry is not None and self._clock() < expiry

    def _patch_context(self, interaction_id: str, request: Request) -> Response:
        if interaction_id in self.missing:
            return _error(404, "not.found", f"Interaction {interaction_id} not found")
        body = request.json()
        context = body.get("context") if isinstance(body, dict) else None
        if not isinstance(context, dict):
            return _error(400, "bad.request", "The request body must hold a context object")
        with self._state:
            stored = self.contexts.setdefault(interaction_id, {})
            stored.update(context)
            self.writes.append(Write("context", interaction_id, None, context))
        return Response(200, {"id": interaction_id, "context": stored})

    def _patch_attributes(
        self, conversation_id: str, participant_id: str, request: Request
    ) -> Response:
        if conversation_id in self.missing:
            return _error(404, "not.found", f"Conversation {conversation_id} not found")
        body = request.json()
        attributes = body.get("attributes") if isinstance(body, dict) else None
        if not isinstance(attributes, dict) or not all(
            isinstance(v, str) for v in attributes.values()
        ):
            return _error(400, "bad.request", "attributes must be a map of strings to strings")
        with self._state:
            self.attributes.setdefault((conversation_id, participant_id), {}).update(attributes)
            self.writes.append(Write("attributes", conversation_id, participant_id, attributes))
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


def _error(status: int, code: str, message: str) -> Response:
    correlation_id = str(uuid.uuid4())
    return Response(
        status,
        {"message": message, "code": code, "status": status, "contextId": correlation_id},
        headers={"ININ-Correlation-Id": correlation_id},
    )
