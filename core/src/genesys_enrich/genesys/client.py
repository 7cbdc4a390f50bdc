"""Write enrichment onto Genesys Cloud interactions."""

from __future__ import annotations

import json
from collections.abc import Mapping
from urllib.parse import quote

import httpx

from genesys_enrich.models import Interaction, JSONValue, WriteRequest, WriteTarget

from .auth import TokenProvider
from .errors import error_from_response


def write_request(interaction: Interaction, fields: Mapping[str, JSONValue]) -> WriteRequest:
    """The request for this interaction: the seed's context PATCH or participant attributes."""
    if interaction.target is WriteTarget.INTERACTION_CONTEXT:
        path = f"/api/v2/interactions/{_segment(interaction.interaction_id)}"
        return WriteRequest("PATCH", path, {"context": dict(fields)})
    if interaction.participant_id is None:  # events.parse_event guarantees it; keep mypy honest
        msg = "participant attributes need a participant id"
        raise ValueError(msg)
    path = (
        f"/api/v2/conversations/{_segment(interaction.interaction_id)}"
        f"/participants/{_segment(interaction.participant_id)}/attributes"
    )
    attributes = {
        name: attribute_value(value) for name, value in fields.items() if value is not None
    }
    return WriteRequest("PATCH", path, {"attributes": attributes})


def attribute_value(value: JSONValue) -> str:
    """Participant attributes are strings: text stays as is, ``True`` becomes ``"true"``, numbers
    their JSON form (``14250.75``), lists and objects compact JSON."""
    if isinstance(value, str):
        return value
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def _segment(value: str) -> str:
    return quote(value, safe="")


class GenesysClient:
    """Writes to the Genesys Cloud Platform API with a cached client-credentials token."""

    def __init__(self, http: httpx.AsyncClient, *, api_url: str, tokens: TokenProvider) -> None:
        self._http = http
        self._api_url = api_url
        self.tokens = tokens

    async def write(
        self,
        interaction: Interaction,
        fields: Mapping[str, JSONValue],
        *,
        deadline: float | None = None,
    ) -> WriteRequest:
        """Write the fields onto the interaction; return the request that did it.

        ``deadline`` is a ``time.monotonic()`` instant the write must finish by.

        Raises:
            GenesysError: Genesys answered with an error; ``status_code`` and ``retryable`` say
                which, the message carries Genesys' own message and correlation id.
        """
        request = write_request(interaction, fields)
        token = await self.tokens.token()
        response = await self._http.request(
            request.method,
            self._api_url + request.path,
            json=request.body,
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        )
        if response.is_success:
            return request
        if response.status_code == httpx.codes.UNAUTHORIZED:
            self.tokens.invalidate(token)
        raise error_from_response(response, f"to {request.method} {request.path}")
