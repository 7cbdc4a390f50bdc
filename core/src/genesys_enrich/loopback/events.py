"""Events to send the fakes: the bundled real samples, and builders of both shapes."""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from importlib.resources import files
from typing import Any

from genesys_enrich.events import PARTNER_SOURCE_PREFIX, SEED_SOURCE
from genesys_enrich.topics import CUSTOMER_START

SAMPLE_NAMES = ("seed-interaction", "customer-start-chat", "audit-user-presence")
SEED_TIME = "2024-06-15T14:32:10Z"
"""When :func:`seed_event`'s events happened, unless told otherwise: the seed's sample's time."""
CUSTOMER_START_TIME = "2022-04-06T09:30:45Z"
"""When :func:`customer_start_event`'s events happened, unless told otherwise."""


def sample(name: str) -> dict[str, Any]:
    """A bundled sample event: ``seed-interaction`` (the seed's documented payload),
    ``customer-start-chat`` (a Genesys test fixture) or ``audit-user-presence`` (a Genesys
    blueprint's audit event)."""
    text = files(__package__).joinpath("samples", f"{name}.json").read_text(encoding="utf-8")
    return json.loads(text)  # type: ignore[no-any-return]


def seed_event(
    customer_id: str | None = "CUST-1001",
    *,
    interaction_id: str | None = None,
    event_id: str | None = None,
    time: str = SEED_TIME,
) -> dict[str, Any]:
    """An event of the seed's shape (``source: genesys.cloud``) that happened at ``time``
    (ISO 8601, UTC): its EventBridge ``time`` and its ``initiationTimestamp``."""
    detail: dict[str, Any] = {
        "interactionId": interaction_id or str(uuid.uuid4()),
        "type": "voice",
        "direction": "inbound",
        "initiationTimestamp": time,
    }
    if customer_id is not None:
        detail["externalCustomerId"] = customer_id
    return {
        "version": "0",
        "id": event_id or str(uuid.uuid4()),
        "detail-type": "Genesys Interaction Event",
        "source": SEED_SOURCE,
        "account": "123456789012",
        "time": time,
        "region": "us-east-1",
        "resources": [],
        "detail": detail,
    }


def customer_start_event(
    *,
    external_contact_id: str | None = None,
    ani: str | None = None,
    email: str | None = None,
    media_type: str | None = None,
    direction: str = "INBOUND",
    conversation_id: str | None = None,
    participant_id: str | None = None,
    event_id: str | None = None,
    topic: str = CUSTOMER_START,
    time: str = CUSTOMER_START_TIME,
    dnis: str | None = None,
    external_contact_ids: Sequence[str] | None = None,
) -> dict[str, Any]:
    """A Genesys ``v2.detail.events.conversation.{id}.customer.start`` event, as EventBridge
    delivers it from the partner event source: the raw shape, with the fields as given, that
    happened at ``time`` (ISO 8601, UTC): its EventBridge ``time``, ``detail.timestamp`` and
    ``eventBody.eventTime`` (in milliseconds).

    ``media_type`` defaults to ``"EMAIL"`` when an ``email`` is given (Genesys reports the
    sender's address only for email conversations, so the core reads it only from those) and
    to ``"VOICE"`` otherwise; pass it to choose another. ``external_contact_ids`` (the body's
    ``conversationExternalContactIds``) defaults to ``[external_contact_id]``.
    """
    conversation = conversation_id or str(uuid.uuid4())
    body: dict[str, Any] = {
        "eventTime": _epoch_ms(time),
        "conversationId": conversation,
        "participantId": participant_id or str(uuid.uuid4()),
        "sessionId": str(uuid.uuid4()),
        "mediaType": media_type or ("EMAIL" if email is not None else "VOICE"),
        "provider": "Edge",
        "direction": direction,
    }
    if external_contact_id is not None:
        body["externalContactId"] = external_contact_id
    if external_contact_ids is None and external_contact_id is not None:
        external_contact_ids = [external_contact_id]
    if external_contact_ids is not None:
        body["conversationExternalContactIds"] = list(external_contact_ids)
    if ani is not None:
        body["ani"] = ani
    if dnis is not None:
        body["dnis"] = dnis
    if email is not None:
        body["addressFrom"] = email
    return {
        "version": "0",
        "id": event_id or str(uuid.uuid4()),
        "detail-type": topic,
        "source": f"{PARTNER_SOURCE_PREFIX}/cloud/32aa07aa-db1b-4987-abd0-9483601ec29d/enrich",
        "account": "123456789012",
        "time": time,
        "region": "us-east-1",
        "resources": [],
        "detail": {
            "topicName": topic.replace("{id}", conversation),
            "version": "2",
            "eventBody": body,
            "metadata": {"CorrelationId": str(uuid.uuid4())},
            "timestamp": time,
        },
    }


def _epoch_ms(time: str) -> int:
    moment = datetime.fromisoformat(time)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return round(moment.timestamp() * 1000)
