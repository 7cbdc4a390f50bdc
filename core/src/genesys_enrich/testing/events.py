"""Build events of both shapes for tests, and read the bundled real samples."""

from __future__ import annotations

import json
import uuid
from importlib.resources import files
from typing import Any

from genesys_enrich.events import CUSTOMER_START, PARTNER_SOURCE_PREFIX, SEED_SOURCE
from genesys_enrich.models import Interaction, WriteTarget

SAMPLE_NAMES = ("seed-interaction", "customer-start-chat", "audit-user-presence")


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
) -> dict[str, Any]:
    """An event of the seed's shape (``source: genesys.cloud``)."""
    detail: dict[str, Any] = {
        "interactionId": interaction_id or str(uuid.uuid4()),
        "type": "voice",
        "direction": "inbound",
        "initiationTimestamp": "2024-06-15T14:32:08Z",
    }
    if customer_id is not None:
        detail["externalCustomerId"] = customer_id
    return {
        "version": "0",
        "id": event_id or str(uuid.uuid4()),
        "detail-type": "Genesys Interaction Event",
        "source": SEED_SOURCE,
        "account": "123456789012",
        "time": "2024-06-15T14:32:10Z",
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
) -> dict[str, Any]:
    """A Genesys ``v2.detail.events.conversation.{id}.customer.start`` event, as EventBridge
    delivers it from the partner event source.

    ``media_type`` defaults to ``"EMAIL"`` when an ``email`` is given (Genesys reports the
    sender's address only for email conversations, so the core reads it only from those) and
    to ``"VOICE"`` otherwise; pass it to choose another.
    """
    conversation = conversation_id or str(uuid.uuid4())
    body: dict[str, Any] = {
        "eventTime": 1649237444949,
        "conversationId": conversation,
        "participantId": participant_id or str(uuid.uuid4()),
        "sessionId": str(uuid.uuid4()),
        "mediaType": media_type or ("EMAIL" if email is not None else "VOICE"),
        "provider": "Edge",
        "direction": direction,
    }
    if external_contact_id is not None:
        body["externalContactId"] = external_contact_id
        body["conversationExternalContactIds"] = [external_contact_id]
    if ani is not None:
        body["ani"] = ani
    if email is not None:
        body["addressFrom"] = email
    return {
        "version": "0",
        "id": event_id or str(uuid.uuid4()),
        "detail-type": topic,
        "source": f"{PARTNER_SOURCE_PREFIX}/cloud/32aa07aa-db1b-4987-abd0-9483601ec29d/enrich",
        "account": "123456789012",
        "time": "2022-04-06T09:30:45Z",
        "region": "us-east-1",
        "resources": [],
        "detail": {
            "topicName": topic.replace("{id}", conversation),
            "version": "2",
            "eventBody": body,
            "metadata": {"CorrelationId": str(uuid.uuid4())},
            "timestamp": "2022-04-06T09:30:45.013Z",
        },
    }


def sqs_record(message_id: str, body: Any) -> dict[str, Any]:
    """An SQS record as Lambda's event source mapping delivers it; ``body`` is an event (sent as
    its JSON) or the raw text of the message. Wrap records as ``{"Records": [...]}``."""
    return {
        "messageId": message_id,
        "receiptHandle": f"handle-{message_id}",
        "body": body if isinstance(body, str) else json.dumps(body),
        "attributes": {"ApproximateReceiveCount": "1"},
        "messageAttributes": {},
        "md5OfBody": "",
        "eventSource": "aws:sqs",
        "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:genesys-events",
        "awsRegion": "us-east-1",
    }


def make_event(
    *,
    customer_id: str | None = None,
    external_contact_id: str | None = None,
    phone: str | None = None,
    email: str | None = None,
    shape: str | None = None,
) -> dict[str, Any]:
    """An event carrying the given customer keys, in the shape that can carry them.

    A ``customer_id`` alone gives the seed's shape; any other key gives Genesys' ``customer.start``
    (an email makes it an email conversation, since only those carry the sender's address).

    Args:
        customer_id: the CRM's own id (seed shape: ``detail.externalCustomerId``).
        external_contact_id: the Genesys external contact linked to the customer.
        phone: the caller's number in E.164, e.g. ``+15550100199``.
        email: the sender's address.
        shape: ``"seed"`` or ``"customer.start"`` to choose the shape yourself.

    Raises:
        ValueError: the keys cannot be carried by the shape asked for.
    """
    others = {"external_contact_id": external_contact_id, "phone": phone, "email": email}
    given = [name for name, value in others.items() if value is not None]
    chosen = shape or ("customer.start" if given or customer_id is None else "seed")
    if chosen == "seed":
        if given:
            msg = f"a seed-shaped event carries only customer_id, not {', '.join(given)}"
            raise ValueError(msg)
        return seed_event(customer_id)
    if chosen != "customer.start":
        msg = f"shape must be 'seed' or 'customer.start', got {shape!r}"
        raise ValueError(msg)
    if customer_id is not None:
        msg = "Genesys' customer.start event has no customer_id; use external_contact_id"
        raise ValueError(msg)
    return customer_start_event(
        external_contact_id=external_contact_id,
        ani=f"tel:{phone}" if phone else None,
        email=email,
    )


def make_interaction(**keys: str) -> Interaction:
    """An interaction carrying the given customer keys (``customer_id``, ``external_contact_id``,
    ``phone``, ``email``), for calling a source's ``lookup`` directly."""
    return Interaction(
        event_id=str(uuid.uuid4()),
        interaction_id=str(uuid.uuid4()),
        participant_id=str(uuid.uuid4()),
        target=WriteTarget.PARTICIPANT_ATTRIBUTES,
        **keys,  # type: ignore[arg-type]
    )
