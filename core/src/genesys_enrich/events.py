"""Turn an EventBridge event into an :class:`~genesys_enrich.models.Interaction`, or say why not.

Two shapes are understood:

* the seed's: ``source: genesys.cloud`` with ``detail.interactionId`` and
  ``detail.externalCustomerId``;
* Genesys Cloud's own partner events: ``source: aws.partner/genesys.com/cloud/<org>/<suffix>``,
  the topic in ``detail-type`` and the body in ``detail.eventBody`` (``conversationId``,
  ``participantId``, ``externalContactId``, ``ani``...).

Handled Genesys topics are ``customer.start`` by default, and ``acd.start`` / ``user.start`` when
settings name them: their bodies carry the same customer keys. ``...attributes`` topics are never
handled, since writing attributes raises them. An event larger than EventBridge allows (256 KB),
nested deeper than any Genesys event, or with a field of the wrong type fails with a message
naming the field.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from typing import Any

from .decoding import deeper_than
from .errors import EventError
from .models import Interaction, WriteTarget
from .topics import CUSTOMER_START

SEED_SOURCE = "genesys.cloud"
PARTNER_SOURCE_PREFIX = "aws.partner/genesys.com"
MAX_EVENT_BYTES = 256 * 1024
"""EventBridge refuses larger entries, so a larger event did not come from it."""
MAX_EVENT_DEPTH = 32
"""Genesys events nest a handful of levels; a deeper one is refused before anything walks it."""
ATTRIBUTES_TOPIC_SUFFIX = ".attributes"

_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_E164 = re.compile(r"^\+[1-9]\d{6,14}$")
MAX_KEY_LENGTH = 256


class NotHandled(Exception):
    """The event is fine but not ours to enrich; ``str(self)`` says why."""


def event_id_of(event: Any) -> str | None:
    """The EventBridge ``id`` of a raw event, when it has a usable one: even an event too broken
    to parse keeps its id in its outcome, dead letter and duplicate check."""
    if isinstance(event, Mapping):
        value = event.get("id")
        if isinstance(value, str) and value:
            return value
    return None


def parse_event(event: Any, *, topics: Iterable[str] = (CUSTOMER_START,)) -> Interaction:
    """Parse one EventBridge event.

    Args:
        event: the decoded JSON event.
        topics: the Genesys topic patterns (``detail-type``) to handle.

    Raises:
        NotHandled: a valid event of a kind we do not enrich (another topic or source).
        EventError: a malformed or hostile event; the message says which field is wrong.
    """
    if not isinstance(event, Mapping):
        msg = f"event is not a JSON object but {type(event).__name__}"
        raise EventError(msg)
    _check_bounds(event)
    source = event.get("source")
    detail = event.get("detail")
    if not isinstance(source, str):
        msg = "event has no 'source'; is this an EventBridge event?"
        raise EventError(msg)
    if not isinstance(detail, Mapping):
        msg = "event has no 'detail' object"
        raise EventError(msg)
    event_id = _optional_str(event, "id", "event") or ""
    if source == SEED_SOURCE:
        return _parse_seed(event_id, detail)
    if _is_partner_source(source):
        return _parse_partner(event_id, event.get("detail-type"), detail, frozenset(topics))
    msg = f"source {_show(source)} is not Genesys Cloud"
    raise NotHandled(msg)


def _check_bounds(event: Mapping[str, Any]) -> None:
    if deeper_than(event, MAX_EVENT_DEPTH):
        msg = f"event nests more than {MAX_EVENT_DEPTH} levels deep; it cannot be a Genesys event"
        raise EventError(msg)
    try:
        size = len(json.dumps(event, separators=(",", ":"), ensure_ascii=False).encode())
    except (TypeError, ValueError) as error:
        msg = f"event is not plain JSON: {error}"
        raise EventError(msg) from None
    if size > MAX_EVENT_BYTES:
        msg = (
            f"event is {size:,} bytes, over EventBridge's limit of {MAX_EVENT_BYTES:,}; "
            "it cannot be a Genesys event"
        )
        raise EventError(msg)


def _parse_seed(event_id: str, detail: Mapping[str, Any]) -> Interaction:
    return Interaction(
        event_id=event_id,
        interaction_id=_genesys_id(detail, "interactionId", "detail"),
        target=WriteTarget.INTERACTION_CONTEXT,
        customer_id=_customer_key(detail, "externalCustomerId", "detail"),
        media_type=_optional_str(detail, "type", "detail"),
        direction=_optional_str(detail, "direction", "detail"),
    )


def _parse_partner(
    event_id: str, topic: Any, detail: Mapping[str, Any], topics: frozenset[str]
) -> Interaction:
    if not isinstance(topic, str):
        msg = "event has no 'detail-type' naming its Genesys topic"
        raise EventError(msg)
    if topic.endswith(ATTRIBUTES_TOPIC_SUFFIX):
        msg = f"topic {_printable(topic)} is never handled: our own writes raise it"
        raise NotHandled(msg)
    if topic not in topics:
        msg = f"topic {_printable(topic)} is not handled"
        raise NotHandled(msg)
    body = detail.get("eventBody")
    if not isinstance(body, Mapping):
        msg = "detail.eventBody is missing or not an object"
        raise EventError(msg)
    where = "detail.eventBody"
    media_type = _optional_str(body, "mediaType", where)
    direction = _optional_str(body, "direction", where)
    contact_ids = body.get("conversationExternalContactIds") or []
    if not isinstance(contact_ids, list):
        msg = f"{where}.conversationExternalContactIds must be a list of strings"
        raise EventError(msg)
    metadata = detail.get("metadata")
    return Interaction(
        event_id=event_id,
        interaction_id=_genesys_id(body, "conversationId", where),
        participant_id=_genesys_id(body, "participantId", where),
        target=WriteTarget.PARTICIPANT_ATTRIBUTES,
        topic=topic,
        external_contact_id=_customer_key(body, "externalContactId", where),
        external_contact_ids=tuple(
            _check_key(value, f"{where}.conversationExternalContactIds[]")
            for value in contact_ids
            if not _blank(value)
        ),
        phone=_phone(body, direction),
        email=_email(body, media_type),
        media_type=media_type,
        direction=direction,
        correlation_id=(
            _optional_str(metadata, "CorrelationId", "detail.metadata")
            if isinstance(metadata, Mapping)
            else None
        ),
    )


def _is_partner_source(source: str) -> bool:
    """``aws.partner/genesys.com/...``, or a Genesys test bus (``.../genesys.com.test/...``)."""
    rest = source.removeprefix(PARTNER_SOURCE_PREFIX)
    return rest != source and rest[:1] in ("/", ".")


def _blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def _genesys_id(data: Mapping[str, Any], key: str, where: str) -> str:
    value = data.get(key)
    if value is None or value == "":
        msg = f"{where}.{key} is missing"
        raise EventError(msg)
    if not isinstance(value, str) or not _UUID.fullmatch(value):
        msg = f"{where}.{key} is not a Genesys id (a UUID): {_show(value)}"
        raise EventError(msg)
    return value.lower()


def _customer_key(data: Mapping[str, Any], key: str, where: str) -> str | None:
    value = data.get(key)
    if _blank(value):
        return None  # blank is how some flows say "no contact": absent, not malformed
    return _check_key(value, f"{where}.{key}")


def _check_key(value: Any, name: str) -> str:
    if not isinstance(value, str | int) or isinstance(value, bool):
        msg = f"{name} must be a string, got {type(value).__name__}"
        raise EventError(msg)
    text = str(value).strip()
    if not text or len(text) > MAX_KEY_LENGTH or _CONTROL.search(text):
        msg = f"{name} is not a usable customer key: {_show(value)}"
        raise EventError(msg)
    return text


def _optional_str(data: Mapping[str, Any], key: str, where: str) -> str | None:
    value = data.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        msg = f"{where}.{key} must be a string, got {type(value).__name__}"
        raise EventError(msg)
    return value


def _phone(body: Mapping[str, Any], direction: str | None) -> str | None:
    """The customer's number in E.164: ``ani`` when inbound, ``dnis`` when outbound."""
    key = "dnis" if (direction or "").upper() == "OUTBOUND" else "ani"
    raw = _optional_str(body, key, "detail.eventBody")
    return normalise_phone(raw) if raw else None


def normalise_phone(raw: str) -> str | None:
    """``tel:+1 (555) 010-0199`` or ``sip:+15550100199@host`` to ``+15550100199``; else None."""
    address = raw.strip()
    for scheme in ("tel:", "sip:", "sips:"):
        if address.lower().startswith(scheme):
            address = address[len(scheme) :]
    address = address.split("@", 1)[0].split(";", 1)[0]
    digits = re.sub(r"[\s().-]", "", address)
    if not digits.startswith("+"):
        return None
    return digits if _E164.match(digits) else None


def _email(body: Mapping[str, Any], media_type: str | None) -> str | None:
    if (media_type or "").upper() != "EMAIL":
        return None
    address = _optional_str(body, "addressFrom", "detail.eventBody")
    if not address or "@" not in address:
        return None
    return _check_key(address.strip().lower(), "detail.eventBody.addressFrom")


def _printable(text: str) -> str:
    """The text as is when it is plain, quoted and escaped when it holds control characters."""
    return text if text.isprintable() else _show(text)


def _show(value: Any, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
