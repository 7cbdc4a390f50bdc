"""Real Genesys events of every kind we handle or skip, parsed and turned into outcomes."""

from __future__ import annotations

import copy
import re
from typing import Any

import pytest

from genesys_enrich.app import Enricher
from genesys_enrich.errors import EventError
from genesys_enrich.events import (
    ACD_START,
    CUSTOMER_START,
    MAX_EVENT_BYTES,
    USER_START,
    NotHandled,
    parse_event,
)
from genesys_enrich.models import Status, WriteTarget
from genesys_enrich.testing import FakeCrm, customer_start_event, sample, settings_for

CUSTOMER_END = "v2.detail.events.conversation.{id}.customer.end"
ATTRIBUTES = "v2.detail.events.conversation.{id}.attributes"


def test_the_genesys_fixture_yields_every_customer_key() -> None:
    """Genesys' own customer.start fixture gives ids, contact ids, media, direction, correlation."""
    interaction = parse_event(sample("customer-start-chat"))
    assert interaction.interaction_id == "2f7bf00a-0fc2-4d6a-9b56-92238191433e"
    assert interaction.participant_id == "9fb2ca78-8389-4758-b76a-9b0300de1fce"
    assert interaction.target is WriteTarget.PARTICIPANT_ATTRIBUTES
    assert interaction.external_contact_id == "uwu"
    assert interaction.external_contact_ids == ("idk",)
    assert (interaction.media_type, interaction.direction) == ("CHAT", "INBOUND")
    assert interaction.correlation_id == "fe8a8579-b83f-4f07-b371-2b39398f91a8"
    assert interaction.topic == CUSTOMER_START


@pytest.mark.parametrize(
    ("address", "phone"),
    [
        ("tel:+18125841533", "+18125841533"),
        ("sip:+441632960961@edge.example.com;user=phone", "+441632960961"),
        ("+49 (30) 901820", "+4930901820"),
        ("tel:5550100", None),
        ("anonymous", None),
    ],
)
def test_inbound_calls_give_the_caller_number_in_e164(address: str, phone: str | None) -> None:
    """A caller's ani becomes E.164 with tel:/sip: stripped; what is not a number is left out."""
    interaction = parse_event(customer_start_event(ani=address))
    assert interaction.phone == phone
    assert ("phone" in interaction.customer_keys) is (phone is not None)


def test_outbound_calls_give_the_dialled_number() -> None:
    """On an outbound call the customer is the dnis, not our own ani."""
    event = customer_start_event(ani="tel:+13125550000", direction="OUTBOUND")
    event["detail"]["eventBody"]["dnis"] = "tel:+18125841533"
    assert parse_event(event).phone == "+18125841533"


def test_email_gives_the_sender_address() -> None:
    """An email interaction is looked up by the sender's address, lowercased."""
    event = customer_start_event(email="Ada@Example.COM", media_type="EMAIL")
    assert parse_event(event).customer_keys == {"email": "ada@example.com"}


def test_acd_and_user_start_are_handled_when_configured() -> None:
    """acd.start and user.start parse like customer.start once settings name them."""
    topics = (CUSTOMER_START, ACD_START, USER_START)
    for topic in (ACD_START, USER_START):
        event = customer_start_event(external_contact_id="uwu", topic=topic)
        event["detail"]["eventBody"]["queueId"] = "5c3b4a0e-3f5e-4c22-9e0e-2b9fcbd1a6a1"
        interaction = parse_event(event, topics=topics)
        assert (interaction.topic, interaction.external_contact_id) == (topic, "uwu")


@pytest.mark.parametrize(
    ("event", "reason"),
    [
        (customer_start_event(topic=ACD_START), f"topic {ACD_START} is not handled"),
        (customer_start_event(topic=CUSTOMER_END), f"topic {CUSTOMER_END} is not handled"),
        (sample("audit-user-presence"), "topic v2.audits.entitytype.{id}.entityid.{id} is not"),
        (customer_start_event(topic=ATTRIBUTES), "never handled: our own writes raise it"),
        ({"source": "aws.events", "detail": {}}, "source 'aws.events' is not Genesys Cloud"),
    ],
    ids=["acd-not-configured", "customer-end", "audit", "attributes", "other-source"],
)
def test_other_topics_are_skipped_with_the_topic_as_reason(event: Any, reason: str) -> None:
    """Topics not in settings, audits and other sources are skipped, naming what they were."""
    with pytest.raises(NotHandled, match=re.escape(reason)):
        parse_event(event, topics=(CUSTOMER_START,))


def test_attributes_topics_are_skipped_even_when_configured() -> None:
    """Naming an attributes topic in settings cannot create a write loop."""
    with pytest.raises(NotHandled, match="our own writes raise it"):
        parse_event(customer_start_event(topic=ATTRIBUTES), topics=(ATTRIBUTES,))


def _with_body(**changes: Any) -> dict[str, Any]:
    event = copy.deepcopy(sample("customer-start-chat"))
    event["detail"]["eventBody"].update(changes)
    return event


@pytest.mark.parametrize(
    ("event", "message"),
    [
        (_with_body(mediaType=7), "detail.eventBody.mediaType must be a string, got int"),
        (_with_body(ani=18125841533), "detail.eventBody.ani must be a string, got int"),
        (
            _with_body(conversationExternalContactIds="idk"),
            "conversationExternalContactIds must be a list",
        ),
        (_with_body(externalContactId={"id": 1}), "externalContactId must be a string, got dict"),
        (_with_body(participantId=None), "detail.eventBody.participantId is missing"),
        ({**sample("customer-start-chat"), "id": 42}, "event.id must be a string, got int"),
        ({**sample("customer-start-chat"), "detail-type": None}, "no 'detail-type'"),
    ],
    ids=["media", "ani", "contact-ids", "contact-id", "participant", "id", "topic"],
)
def test_wrong_types_fail_naming_the_field(event: Any, message: str) -> None:
    """A field of the wrong type is a bad event whose message names the field and the type."""
    with pytest.raises(EventError, match=re.escape(message)):
        parse_event(event)


def test_an_event_over_256_kb_fails_with_its_size() -> None:
    """EventBridge caps events at 256 KB, so a larger one is refused, saying how large it is."""
    event = _with_body(subject="x" * MAX_EVENT_BYTES)
    with pytest.raises(
        EventError, match=r"event is 263,\d{3} bytes, over EventBridge.s limit of 262,144"
    ):
        parse_event(event)


def test_the_seed_shape_still_parses() -> None:
    """The seed deployment's documented payload keeps working."""
    interaction = parse_event(sample("seed-interaction"))
    assert interaction.target is WriteTarget.INTERACTION_CONTEXT
    assert interaction.interaction_id == "8f7e6d5c-4b3a-2109-8765-4321fedcba09"


async def test_each_kind_ends_in_the_outcome_a_user_expects(crm: FakeCrm) -> None:
    """Through the pipeline: handled kinds enrich, others skip, oversized and mistyped ones fail."""
    settings = settings_for(crm=crm, topics=(CUSTOMER_START, ACD_START))
    cases = {
        "customer.start": (sample("customer-start-chat"), Status.ENRICHED),
        "acd.start": (customer_start_event(external_contact_id="uwu", topic=ACD_START), "enriched"),
        "user.start": (
            customer_start_event(external_contact_id="uwu", topic=USER_START),
            "skipped",
        ),
        "audit": (sample("audit-user-presence"), Status.SKIPPED),
        "attributes": (customer_start_event(topic=ATTRIBUTES), Status.SKIPPED),
        "oversized": (_with_body(subject="x" * MAX_EVENT_BYTES), Status.FAILED),
        "mistyped": (_with_body(direction=["INBOUND"]), Status.FAILED),
    }
    async with await Enricher.start(settings, dry_run=True) as enricher:
        statuses = {
            name: (await enricher.process(event)).status for name, (event, _) in cases.items()
        }
    assert statuses == {name: Status(expected) for name, (_, expected) in cases.items()}
