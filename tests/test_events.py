"""EventBridge events of every kind: the seed's shape and Genesys' partner events parsed into an
interaction, the topics handled or skipped, what is refused and why, and the outcome each kind
ends in through the pipeline."""

from __future__ import annotations

import copy
import re
from typing import Any

import pytest

from genesys_enrich.app import Enricher
from genesys_enrich.errors import EventError
from genesys_enrich.events import (
    MAX_EVENT_BYTES,
    NotHandled,
    normalise_phone,
    parse_event,
)
from genesys_enrich.models import Interaction, Status, WriteTarget
from genesys_enrich.testing import FakeCrm, customer_start_event, sample, seed_event, settings_for
from genesys_enrich.topics import ACD_START, CUSTOMER_START, USER_START

UPPER_ID = "8F7E6D5C-4B3A-2109-8765-4321FEDCBA09"
CUSTOMER_END = "v2.detail.events.conversation.{id}.customer.end"
ATTRIBUTES = "v2.detail.events.conversation.{id}.attributes"


def body(event: dict[str, Any]) -> dict[str, Any]:
    """The ``detail.eventBody`` of a partner event, to edit in place."""
    return event["detail"]["eventBody"]  # type: ignore[no-any-return]


# --- the seed's shape -----------------------------------------------------------------------


def test_seed_sample_parses_to_an_interaction_context_write() -> None:
    """The seed's documented payload is accepted and written to the interaction's context."""
    interaction = parse_event(sample("seed-interaction"))

    assert interaction.event_id == "a1b2c3d4-e5f6-7890-abcd-ef1234567890"
    assert interaction.interaction_id == "8f7e6d5c-4b3a-2109-8765-4321fedcba09"
    assert interaction.target is WriteTarget.INTERACTION_CONTEXT
    assert interaction.participant_id is None
    assert interaction.media_type == "voice"
    assert interaction.direction == "inbound"
    assert interaction.customer_id is None  # the sample names no customer


def test_seed_event_carries_the_external_customer_id() -> None:
    """A seed event's ``externalCustomerId`` becomes the customer id sources look up."""
    interaction = parse_event(seed_event("CUST-1001"))

    assert interaction.customer_id == "CUST-1001"
    assert interaction.customer_keys == {"customer_id": "CUST-1001"}


def test_seed_numeric_customer_id_is_read_as_text() -> None:
    """A CRM id sent as a JSON number is looked up as its decimal text."""
    assert parse_event(seed_event(1001)).customer_id == "1001"  # type: ignore[arg-type]


def test_seed_interaction_id_is_lowercased() -> None:
    """An upper-case interaction id is normalised to lower case, so duplicates match."""
    interaction = parse_event(seed_event(interaction_id=UPPER_ID))

    assert interaction.interaction_id == UPPER_ID.lower()


@pytest.mark.parametrize(
    "bad_id",
    ["../../oauth/token", "not-a-uuid", 12345, "", None],
    ids=["path-traversal", "not-a-uuid", "number", "empty", "missing"],
)
def test_seed_bad_interaction_id_is_refused_naming_the_field(bad_id: Any) -> None:
    """An interaction id that is not a UUID is refused, and the error names the field."""
    event = seed_event()
    if bad_id is None:
        del event["detail"]["interactionId"]
    else:
        event["detail"]["interactionId"] = bad_id

    with pytest.raises(EventError, match=r"detail\.interactionId"):
        parse_event(event)


@pytest.mark.parametrize(
    "bad_key",
    ["CUST\x001001", "CUST-\n1001", "CUST\x7f", "x" * 257, True, ["CUST-1001"]],
    ids=["nul", "newline-inside", "del", "too-long", "bool", "list"],
)
def test_seed_unusable_customer_id_is_refused(bad_key: Any) -> None:
    """A customer id with control characters, over 256 characters, or not text is refused."""
    with pytest.raises(EventError, match=r"detail\.externalCustomerId"):
        parse_event(seed_event(bad_key))


def test_seed_customer_id_of_256_characters_is_accepted() -> None:
    """The longest allowed customer id (256 characters) still gets through."""
    assert parse_event(seed_event("x" * 256)).customer_id == "x" * 256


# --- Genesys partner events -----------------------------------------------------------------


def test_genesys_customer_start_sample_parses_to_a_participant_attributes_write() -> None:
    """Genesys's own customer.start fixture is accepted and targets the customer participant."""
    interaction = parse_event(sample("customer-start-chat"))

    assert interaction == Interaction(
        event_id="adbcfa5b-0116-4baa-b66b-a3f5902e95bf",
        interaction_id="2f7bf00a-0fc2-4d6a-9b56-92238191433e",
        participant_id="9fb2ca78-8389-4758-b76a-9b0300de1fce",
        target=WriteTarget.PARTICIPANT_ATTRIBUTES,
        topic=CUSTOMER_START,
        external_contact_id="uwu",
        external_contact_ids=("idk",),
        media_type="CHAT",
        direction="INBOUND",
        correlation_id="fe8a8579-b83f-4f07-b371-2b39398f91a8",
    )
    assert interaction.customer_keys == {"external_contact_id": "uwu"}


def test_genesys_conversation_and_participant_ids_are_lowercased() -> None:
    """Upper-case conversation and participant ids are normalised to lower case."""
    participant = "9FB2CA78-8389-4758-B76A-9B0300DE1FCE"
    event = customer_start_event(conversation_id=UPPER_ID, participant_id=participant)

    interaction = parse_event(event)

    assert interaction.interaction_id == UPPER_ID.lower()
    assert interaction.participant_id == participant.lower()


@pytest.mark.parametrize(
    "bad_id",
    ["../../oauth/token", "not-a-uuid", 12345, ""],
    ids=["path-traversal", "not-a-uuid", "number", "empty"],
)
@pytest.mark.parametrize("field", ["conversationId", "participantId"])
def test_genesys_bad_ids_are_refused_naming_the_field(field: str, bad_id: Any) -> None:
    """A conversation or participant id that is not a UUID is refused, naming the field."""
    event = customer_start_event(external_contact_id="uwu")
    body(event)[field] = bad_id

    with pytest.raises(EventError, match=rf"detail\.eventBody\.{field}"):
        parse_event(event)


def test_genesys_missing_participant_id_is_refused() -> None:
    """Without a participant id there is nowhere to write, so the event is refused."""
    event = customer_start_event(external_contact_id="uwu")
    del body(event)["participantId"]

    with pytest.raises(EventError, match=r"detail\.eventBody\.participantId is missing"):
        parse_event(event)


def test_genesys_event_without_event_body_is_refused() -> None:
    """A partner event whose ``detail.eventBody`` is not an object is refused."""
    event = customer_start_event()
    event["detail"]["eventBody"] = "nope"

    with pytest.raises(EventError, match=r"detail\.eventBody"):
        parse_event(event)


def test_genesys_event_without_detail_type_is_refused() -> None:
    """A partner event with no ``detail-type`` cannot be routed and is refused."""
    event = customer_start_event()
    del event["detail-type"]

    with pytest.raises(EventError, match="detail-type"):
        parse_event(event)


# --- envelopes that are not ours or not events ----------------------------------------------


@pytest.mark.parametrize("event", [[], "event", 42, None], ids=["list", "str", "int", "null"])
def test_non_object_event_is_refused(event: Any) -> None:
    """Something that is not a JSON object is refused, saying what it was instead."""
    with pytest.raises(EventError, match="not a JSON object"):
        parse_event(event)


def test_event_without_detail_is_refused() -> None:
    """An event with no ``detail`` object is refused."""
    event = seed_event()
    del event["detail"]

    with pytest.raises(EventError, match="detail"):
        parse_event(event)


def test_event_without_source_is_refused() -> None:
    """An event with no ``source`` is refused as not an EventBridge event."""
    event = seed_event()
    del event["source"]

    with pytest.raises(EventError, match="source"):
        parse_event(event)


# --- topics ---------------------------------------------------------------------------------


def test_attributes_topic_is_never_handled_even_when_listed() -> None:
    """Attribute-change events are skipped even if configured, so our own writes never loop."""
    event = customer_start_event(external_contact_id="uwu", topic=ATTRIBUTES)

    with pytest.raises(NotHandled, match="attributes"):
        parse_event(event, topics=[CUSTOMER_START, ATTRIBUTES])


@pytest.mark.parametrize("topic", [ACD_START, USER_START], ids=["acd.start", "user.start"])
def test_acd_and_user_start_are_handled_only_when_configured(topic: str) -> None:
    """acd.start and user.start parse like customer.start once ``topics`` names them."""
    event = customer_start_event(external_contact_id="uwu", topic=topic)
    body(event)["queueId"] = "5c3b4a0e-3f5e-4c22-9e0e-2b9fcbd1a6a1"

    with pytest.raises(NotHandled, match=re.escape(topic)):
        parse_event(event)
    interaction = parse_event(event, topics=(CUSTOMER_START, ACD_START, USER_START))

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
def test_other_topics_and_sources_are_skipped_naming_them(event: Any, reason: str) -> None:
    """Topics not in settings, audits and other sources are skipped, naming what they were."""
    with pytest.raises(NotHandled, match=re.escape(reason)):
        parse_event(event, topics=(CUSTOMER_START,))


def test_customer_start_is_not_handled_when_topics_exclude_it() -> None:
    """Configuring ``topics`` replaces the default, so customer.start is then skipped."""
    with pytest.raises(NotHandled, match=r"customer\.start"):
        parse_event(customer_start_event(external_contact_id="uwu"), topics=[ACD_START])


# --- customer keys --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("address", "phone"),
    [
        ("tel:+15550100199", "+15550100199"),
        ("sip:+15550100199@edge.example.com", "+15550100199"),
        ("sip:+441632960961@edge.example.com;user=phone", "+441632960961"),
        ("+49 (30) 901820", "+4930901820"),
        ("tel:5550100", None),
        ("anonymous", None),
        ("sip:anonymous@edge.example.com", None),
    ],
)
def test_inbound_calls_give_the_caller_number_in_e164(address: str, phone: str | None) -> None:
    """On an inbound call the caller's ``ani`` becomes the E.164 phone key, ``tel:``/``sip:``
    stripped; what is not a number is left out rather than looked up."""
    interaction = parse_event(customer_start_event(ani=address))

    assert interaction.phone == phone
    assert interaction.customer_keys == ({"phone": phone} if phone else {})


def test_outbound_phone_comes_from_dnis() -> None:
    """On an outbound call the dialled ``dnis`` is the customer's number, not our ``ani``."""
    event = customer_start_event(ani="tel:+18005550000", direction="OUTBOUND")
    body(event)["dnis"] = "tel:+15550100199"

    assert parse_event(event).phone == "+15550100199"


def test_email_comes_from_address_from_on_email_interactions() -> None:
    """An EMAIL interaction's sender address becomes the lower-cased email key."""
    event = customer_start_event(email=" Jane.Doe@Example.COM ", media_type="EMAIL")

    interaction = parse_event(event)

    assert interaction.email == "jane.doe@example.com"
    assert interaction.customer_keys == {"email": "jane.doe@example.com"}


def test_an_email_without_a_media_type_makes_an_email_event() -> None:
    """customer_start_event(email=...) alone gives an email conversation the core reads it from."""
    event = customer_start_event(email="jane@example.com")

    assert event["detail"]["eventBody"]["mediaType"] == "EMAIL"
    assert parse_event(event).customer_keys == {"email": "jane@example.com"}


@pytest.mark.parametrize(
    ("media_type", "address"),
    [("CHAT", "jane@example.com"), ("EMAIL", "not-an-address")],
    ids=["chat", "no-at-sign"],
)
def test_email_is_only_taken_from_email_media(media_type: str, address: str) -> None:
    """A non-EMAIL interaction's ``addressFrom``, or one without an @, gives no email key."""
    event = customer_start_event(email=address, media_type=media_type)

    assert parse_event(event).email is None


def test_genesys_external_contact_id_with_control_characters_is_refused() -> None:
    """An external contact id carrying control characters is refused, naming the field."""
    event = customer_start_event(external_contact_id="uwu\x00")

    with pytest.raises(EventError, match=r"detail\.eventBody\.externalContactId"):
        parse_event(event)


def test_genesys_external_contact_id_over_256_characters_is_refused() -> None:
    """An external contact id longer than 256 characters is refused."""
    event = customer_start_event(external_contact_id="u" * 257)

    with pytest.raises(EventError, match="externalContactId"):
        parse_event(event)


def test_all_customer_keys_are_offered_in_lookup_order() -> None:
    """An event with every key offers all four, customer id first."""
    interaction = Interaction(
        event_id="e",
        interaction_id="i",
        target=WriteTarget.INTERACTION_CONTEXT,
        customer_id="C1",
        external_contact_id="X1",
        phone="+15550100199",
        email="a@example.com",
    )

    assert list(interaction.customer_keys.items()) == [
        ("customer_id", "C1"),
        ("external_contact_id", "X1"),
        ("phone", "+15550100199"),
        ("email", "a@example.com"),
    ]


def test_event_without_customer_keys_offers_none() -> None:
    """An event naming no customer has no keys, so nothing is looked up."""
    assert parse_event(customer_start_event()).customer_keys == {}


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("+15550100199", "+15550100199"),
        ("tel:+15550100199", "+15550100199"),
        ("TEL:+15550100199", "+15550100199"),
        ("tel:+1 (555) 010-0199", "+15550100199"),
        ("tel:+1.555.010.0199", "+15550100199"),
        ("sip:+15550100199@edge.example.com", "+15550100199"),
        ("sips:+15550100199@edge.example.com;transport=tls", "+15550100199"),
        ("tel:+15550100199;ext=12", "+15550100199"),
        ("  +442071838750  ", "+442071838750"),
        ("5550100199", None),
        ("tel:5550100199", None),
        ("sip:alice@example.com", None),
        ("+0123456789", None),
        ("+12345", None),
        ("+1234567890123456", None),
        ("tel:+1555abc0199", None),
        ("", None),
    ],
)
def test_normalise_phone(raw: str, expected: str | None) -> None:
    """Phone addresses become E.164 (``+`` and 7 to 15 digits) or nothing."""
    assert normalise_phone(raw) == expected


def test_a_blank_external_contact_id_counts_as_absent() -> None:
    """A contact id of spaces is no key at all: the phone still identifies the caller."""
    event = customer_start_event(external_contact_id="   ", ani="tel:+15550100199")
    interaction = parse_event(event)
    assert interaction.customer_keys == {"phone": "+15550100199"}


@pytest.mark.parametrize("field", ["interactionId", "externalCustomerId"])
def test_a_trailing_newline_never_passes_as_an_id(field: str) -> None:
    """A UUID followed by a newline is not a UUID: it never reaches a URL as %0A."""
    event = seed_event(interaction_id="8f7e6d5c-4b3a-2109-8765-4321fedcba09\n")
    if field == "externalCustomerId":
        event = seed_event("CUST-1001\n\x1b[31m")
    with pytest.raises(EventError, match=field):
        parse_event(event)


def test_a_look_alike_partner_source_is_not_genesys() -> None:
    """Only Genesys' own partner sources count: aws.partner/genesys.comevil/... does not."""
    event = customer_start_event(external_contact_id="C-1")
    event["source"] = "aws.partner/genesys.comevil/cloud/org/bus"
    with pytest.raises(NotHandled, match="not Genesys Cloud"):
        parse_event(event)


def test_a_topic_with_control_characters_is_quoted_in_the_reason() -> None:
    """A forged topic cannot write extra lines into the CLI's output or the logs."""
    event = customer_start_event(external_contact_id="C-1", topic="x\nENRICHED  forged\x1b[32m")
    with pytest.raises(NotHandled) as decision:
        parse_event(event)
    reason = str(decision.value)
    assert "\n" not in reason
    assert "\x1b" not in reason


def test_a_null_among_conversation_contact_ids_is_skipped() -> None:
    """A null in conversationExternalContactIds is no key, not a reason to fail the event."""
    event = customer_start_event(external_contact_id="C-1")
    event["detail"]["eventBody"]["conversationExternalContactIds"] = [None, "C-1", " "]
    assert parse_event(event).external_contact_ids == ("C-1",)


def test_an_event_nested_deeper_than_any_genesys_event_is_refused() -> None:
    """Nesting that Lambda's runtime decoded (near Python's recursion limit) is refused with a
    message, never a RecursionError; a Genesys-like depth still parses."""
    deep: Any = "bottom"
    for _ in range(900):
        deep = {"x": deep}
    with pytest.raises(EventError, match="nests more than 32 levels deep"):
        parse_event(seed_event() | {"extra": deep})
    shallow: Any = "bottom"
    for _ in range(25):
        shallow = [shallow]
    assert parse_event(seed_event() | {"extra": shallow}).interaction_id


# --- fields of the wrong type, and size -------------------------------------------------------


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


# --- through the pipeline --------------------------------------------------------------------


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
