"""Build events and interactions for tests: exactly the customer keys a test asks for, and SQS
records to carry them."""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from typing import Any

from genesys_enrich.events import (
    normalise_phone,
    parse_event,
)
from genesys_enrich.loopback.events import customer_start_event, seed_event
from genesys_enrich.models import Interaction, WriteTarget
from genesys_enrich.topics import ACD_START, CUSTOMER_START, USER_START


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


SHAPES: dict[str, str | None] = {
    "seed": None,
    "customer.start": CUSTOMER_START,
    "acd.start": ACD_START,
    "user.start": USER_START,
}
"""The shapes :func:`make_event` builds: the seed's, or a Genesys topic's (handled only when
``[pipeline] topics`` names it; ``customer.start`` is the default)."""


def make_event(
    *,
    customer_id: str | None = None,
    external_contact_id: str | None = None,
    phone: str | None = None,
    email: str | None = None,
    shape: str | None = None,
    direction: str | None = None,
    media_type: str | None = None,
    external_contact_ids: Sequence[str] | None = None,
) -> dict[str, Any]:
    """An event from which the core reads exactly the customer keys given, in a shape that
    carries them.

    A ``customer_id`` alone gives the seed's shape; any other key gives Genesys'
    ``customer.start``, which carries any combination of ``external_contact_id``, ``phone`` and
    ``email``. No real event carries a ``customer_id`` with another key (the seed's shape has
    only ``externalCustomerId``, Genesys' events have none), so asking for both is an error: to
    call a lookup with several keys, use :func:`make_interaction`.

    Args:
        customer_id: the CRM's own id (seed shape: ``detail.externalCustomerId``).
        external_contact_id: the Genesys external contact linked to the customer.
        phone: the customer's number in E.164 (``+15550100199``), or as Genesys writes it
            (``tel:+15550100199``, ``sip:+15550100199@host``): the caller's ``ani`` on an inbound
            conversation, the dialled ``dnis`` on an outbound one.
        email: the sender's address; the conversation is then an email one unless
            ``media_type`` says otherwise (which the core would ignore the address on).
        shape: ``"seed"``, ``"customer.start"``, ``"acd.start"`` or ``"user.start"``.
        direction: ``"INBOUND"`` (the default) or ``"OUTBOUND"`` (Genesys shapes).
        media_type: ``"VOICE"``, ``"CHAT"``, ``"EMAIL"``, ``"MESSAGE"``... (Genesys shapes).
        external_contact_ids: every contact linked to the conversation
            (``conversationExternalContactIds``), by default ``[external_contact_id]``.

    Raises:
        ValueError: the event could not carry a key as given, so the core would not read it
            (a phone that is not E.164, an email on a voice call, a customer id on a Genesys
            event); the message says which and why. :func:`customer_start_event` builds such
            events when that is what a test is about.
    """
    keys = {
        "customer_id": customer_id,
        "external_contact_id": external_contact_id,
        "phone": phone,
        "email": email,
    }
    given = {name: value for name, value in keys.items() if value is not None}
    genesys_only = [name for name in given if name != "customer_id"]
    chosen = shape or ("customer.start" if genesys_only or customer_id is None else "seed")
    if chosen not in SHAPES:
        msg = f"shape must be one of {', '.join(map(repr, SHAPES))}, got {shape!r}"
        raise ValueError(msg)
    if chosen == "seed":
        genesys_options = {
            "direction": direction,
            "media_type": media_type,
            "external_contact_ids": external_contact_ids,
        }
        extras = [*genesys_only, *(n for n, v in genesys_options.items() if v is not None)]
        if extras:
            msg = f"a seed-shaped event carries only customer_id, not {', '.join(extras)}"
            raise ValueError(msg)
        return seed_event(customer_id)
    if customer_id is not None:
        msg = (
            f"no real event carries customer_id with {', '.join(genesys_only)}: the seed's shape "
            "has only customer_id, and Genesys' events have no customer_id (use "
            "external_contact_id). To call a lookup with several keys, use make_interaction()"
            if genesys_only
            else "Genesys' events have no customer_id; use external_contact_id, or shape='seed'"
        )
        raise ValueError(msg)
    outbound = (direction or "").upper() == "OUTBOUND"
    address = None if phone is None else phone if ":" in phone else f"tel:{phone}"
    event = customer_start_event(
        external_contact_id=external_contact_id,
        ani=None if outbound else address,
        dnis=address if outbound else None,
        email=email,
        media_type=media_type,
        direction=direction or "INBOUND",
        topic=SHAPES[chosen] or CUSTOMER_START,
        external_contact_ids=external_contact_ids,
    )
    _check_carried(event, given)
    return event


def _check_carried(event: dict[str, Any], given: dict[str, str]) -> None:
    """Raise if the core would not read back every key given, saying why."""
    parsed = parse_event(event, topics=[topic for topic in SHAPES.values() if topic])
    expected = dict(given)
    if "phone" in given:
        expected["phone"] = normalise_phone(given["phone"]) or ""
    if "email" in given:
        expected["email"] = given["email"].strip().lower()
    why = {
        "phone": f"phone {given.get('phone')!r} is not a number in E.164 (+15550100199)",
        "email": (
            f"the core reads an email only from an email conversation, not a "
            f"{event['detail']['eventBody']['mediaType']} one"
        ),
    }
    lost = [name for name, value in expected.items() if parsed.customer_keys.get(name) != value]
    if lost:
        reasons = "; ".join(why.get(name, f"{name} was not carried") for name in lost)
        msg = f"the core would not read {', '.join(lost)} from this event: {reasons}"
        raise ValueError(msg)


def make_interaction(
    *,
    customer_id: str | None = None,
    external_contact_id: str | None = None,
    phone: str | None = None,
    email: str | None = None,
    **details: Any,
) -> Interaction:
    """An interaction carrying any combination of customer keys, for calling a source's
    ``lookup`` directly: unlike an event, it may hold a ``customer_id`` and other keys at once.

    Args:
        customer_id, external_contact_id, phone, email: the customer keys, as the core gives
            them to sources (phone in E.164, email in lower case).
        details: other :class:`~genesys_enrich.models.Interaction` fields (``media_type``,
            ``direction``, ``external_contact_ids``...).
    """
    fields: dict[str, Any] = {
        "event_id": str(uuid.uuid4()),
        "interaction_id": str(uuid.uuid4()),
        "participant_id": str(uuid.uuid4()),
        "target": WriteTarget.PARTICIPANT_ATTRIBUTES,
        "customer_id": customer_id,
        "external_contact_id": external_contact_id,
        "phone": phone,
        "email": email,
    }
    return Interaction(**(fields | details))
