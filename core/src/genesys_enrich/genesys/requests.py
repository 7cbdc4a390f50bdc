"""The requests that write enrichment onto Genesys Cloud interactions, and a writer that sends none.

Building a request is pure: the pipeline plans each write with it before anything is sent, and a
dry run (:class:`DryRun`) stops there. Nothing here talks HTTP.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from urllib.parse import quote

from genesys_enrich.models import Interaction, JSONValue, WriteRequest, WriteTarget


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


class DryRun:
    """The writer of a dry run: every request is computed, none is sent, and nothing is needed to
    send one (no Genesys credentials)."""

    dry_run = True

    def plan(self, interaction: Interaction, fields: Mapping[str, JSONValue]) -> WriteRequest:
        """The request that would write the fields onto the interaction."""
        return write_request(interaction, fields)

    async def write(
        self,
        interaction: Interaction,
        fields: Mapping[str, JSONValue],
        *,
        deadline: float | None = None,
    ) -> WriteRequest:
        """Send nothing; return the request that would have been sent."""
        return self.plan(interaction, fields)

    def __repr__(self) -> str:
        return "DryRun()"
