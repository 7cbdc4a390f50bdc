"""The values that flow through the pipeline: an interaction in, an outcome out.

``Interaction`` is what an event says; ``Field`` and ``Record`` carry CRM data with the name of the
source that supplied each value; ``Outcome`` is the one result every event ends in.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, TypeAlias

JSONValue: TypeAlias = str | int | float | bool | list[Any] | dict[str, Any] | None
"""A value that survives ``json.dumps``: what sources may return for a field."""


class WriteTarget(StrEnum):
    """Where an interaction's enrichment is written in Genesys Cloud."""

    INTERACTION_CONTEXT = "interaction_context"
    """``PATCH /api/v2/interactions/{id}`` with ``{"context": {...}}``: the seed's event shape."""

    PARTICIPANT_ATTRIBUTES = "participant_attributes"
    """``PATCH /api/v2/conversations/{id}/participants/{id}/attributes``: real Genesys events."""


CUSTOMER_KEYS = ("customer_id", "external_contact_id", "phone", "email")
"""The names of the keys a CRM can look a customer up by; see :attr:`Interaction.customer_keys`."""


@dataclass(frozen=True, slots=True)
class Interaction:
    """One contact reaching Genesys Cloud, as parsed from an event.

    Sources read the customer keys (``customer_id``, ``external_contact_id``, ``phone``, ``email``)
    to find the customer; the core reads the ids to know where to write.
    """

    event_id: str
    """The EventBridge event ``id``: the key for duplicate detection and replay."""
    interaction_id: str
    """The interaction (seed shape) or conversation (Genesys shape) id, a validated UUID."""
    target: WriteTarget
    """Where the enrichment is written: the interaction's context or the participant's
    attributes, as the event's shape decides."""
    participant_id: str | None = None
    """The customer participant, whose attributes are written (Genesys shape only)."""
    topic: str | None = None
    """The Genesys topic pattern, the event's ``detail-type`` (Genesys shape only)."""
    customer_id: str | None = None
    """The seed's ``detail.externalCustomerId``: the CRM's own customer id."""
    external_contact_id: str | None = None
    """The Genesys external contact linked to the customer, if any."""
    external_contact_ids: tuple[str, ...] = ()
    """Every external contact linked to the conversation (``conversationExternalContactIds``)."""
    phone: str | None = None
    """The customer's number in E.164 (``+15551234567``), taken from ``ani`` on inbound calls."""
    email: str | None = None
    """The sender's address, lower-cased, on an email conversation."""
    media_type: str | None = None
    """``VOICE``, ``CHAT``, ``EMAIL``, ``MESSAGE``... (Genesys shape), or the seed's ``type``."""
    direction: str | None = None
    """``INBOUND`` or ``OUTBOUND`` (Genesys shape), or the seed's ``direction``."""
    correlation_id: str | None = None
    """Genesys' ``detail.metadata.CorrelationId``, to find the event in Genesys' own logs."""

    @property
    def customer_keys(self) -> dict[str, str]:
        """The keys a CRM can look the customer up by, omitting those the event lacks."""
        values = (getattr(self, name) for name in CUSTOMER_KEYS)
        return {name: value for name, value in zip(CUSTOMER_KEYS, values, strict=True) if value}


@dataclass(frozen=True, slots=True)
class WriteRequest:
    """The exact request that writes (or, in a dry run, would write) one interaction."""

    method: str
    path: str
    body: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Field:
    """One enriched value and the name of the source (or mapper) it came from."""

    value: JSONValue
    source: str


class Record(Mapping[str, Field]):
    """An immutable mapping of field names to :class:`Field`: merged CRM data with provenance.

    Mappers receive a record and return a new one; building the new one from the old one's
    ``Field`` objects keeps each value's provenance without extra work.
    """

    __slots__ = ("_fields",)

    def __init__(self, fields: Mapping[str, Field] | None = None) -> None:
        self._fields: dict[str, Field] = dict(fields or {})

    @classmethod
    def from_values(cls, values: Mapping[str, JSONValue], source: str) -> Record:
        """A record whose every value came from ``source``."""
        return cls({name: Field(value, source) for name, value in values.items()})

    def __getitem__(self, name: str) -> Field:
        return self._fields[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._fields)

    def __len__(self) -> int:
        return len(self._fields)

    def __repr__(self) -> str:
        return f"Record({self._fields!r})"

    def values_only(self) -> dict[str, JSONValue]:
        """The plain values, without provenance."""
        return {name: f.value for name, f in self._fields.items()}

    def provenance(self) -> dict[str, str]:
        """Field name to the name of the source that supplied it."""
        return {name: f.source for name, f in self._fields.items()}


@dataclass(frozen=True, slots=True)
class Conflict:
    """Two or more sources gave different values for one field; ``kept`` won by priority."""

    field: str
    kept: str
    values: dict[str, JSONValue]
    """Source name to the value it gave, in priority order."""


class Status(StrEnum):
    """How an event ended. Every event ends in exactly one."""

    ENRICHED = "enriched"
    """Every enabled source answered and the patch was written (or would be, in a dry run)."""
    PARTIAL = "partial"
    """Some sources failed; what the others gave was written."""
    SKIPPED = "skipped"
    """Nothing to do, on purpose: no customer key, unknown customer, topic not handled."""
    FAILED = "failed"
    """Something went wrong; ``failure`` says what fixes it, and so whether the event is kept."""


class FailureKind(StrEnum):
    """What fixes a failure, which decides what a host does with the event (see
    :attr:`Outcome.keep`)."""

    BAD_EVENT = "bad_event"
    """Nothing will: the event is malformed, names ids that cannot be, is too big, or leads to an
    answer or a write that cannot be used. Logged with enough to find it, then dropped: trying it
    again would fail the same way."""
    TRANSIENT = "transient"
    """Time: a CRM or Genesys was briefly unhappy (5xx, 429, a timeout, a refused connection, the
    deadline). Kept and tried again."""
    MISCONFIGURED = "misconfigured"
    """A person: the deployment is wrong (credentials refused, a permission missing, a URL that
    does not exist). Kept whole, so it can be replayed once fixed; the reason says what to fix."""


class SourceStatus(StrEnum):
    """How one source's lookup ended."""

    FOUND = "found"
    NO_MATCH = "no_match"
    FAILED = "failed"
    TIMED_OUT = "timed_out"


@dataclass(frozen=True, slots=True)
class SourceResult:
    """What one source did for one event."""

    source: str
    status: SourceStatus
    duration_ms: float
    fields: dict[str, JSONValue] = field(default_factory=dict)
    error: str | None = None
    retryable: bool = False
    misconfigured: bool = False
    """The source said the deployment is wrong (its credentials refused, its URL not found)."""
    detail: str | None = None
    """Why there was no match, when the source said (``"2 records match"``)."""
    cached: bool = False
    """The fields came from the source cache, not from asking the source."""

    @property
    def failed(self) -> bool:
        return self.status in (SourceStatus.FAILED, SourceStatus.TIMED_OUT)

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "status": self.status.value,
            "duration_ms": round(self.duration_ms, 2),
        }
        if self.error:
            data["error"] = self.error
        if self.detail:
            data["detail"] = self.detail
        if self.cached:
            data["cached"] = True
        return data


@dataclass(frozen=True, slots=True)
class Outcome:
    """The one recorded result of one event.

    ``failure`` is the truth about a failure and ``retryable`` follows it (``retryable`` is
    ``failure is TRANSIENT``). A failed outcome built with only ``retryable`` gets ``TRANSIENT``
    when it is true and ``BAD_EVENT`` when not.
    """

    status: Status
    reason: str
    event_id: str | None = None
    interaction_id: str | None = None
    fields: dict[str, JSONValue] = field(default_factory=dict)
    """What was written (or, in a dry run, would be)."""
    provenance: dict[str, str] = field(default_factory=dict)
    conflicts: tuple[Conflict, ...] = ()
    sources: tuple[SourceResult, ...] = ()
    retryable: bool = False
    duration_ms: float = 0.0
    dry_run: bool = False
    request: WriteRequest | None = None
    """The Genesys request sent, or that a dry run would send."""
    failure: FailureKind | None = None
    """What fixes the event: set on every ``failed`` outcome, and on a ``partial`` one whose
    missing fields come from a misconfigured source (``MISCONFIGURED``)."""

    def __post_init__(self) -> None:
        failure = self.failure
        if failure is None and self.status is Status.FAILED:
            failure = FailureKind.TRANSIENT if self.retryable else FailureKind.BAD_EVENT
            object.__setattr__(self, "failure", failure)
        if failure is not None:
            object.__setattr__(self, "retryable", failure is FailureKind.TRANSIENT)

    @property
    def keep(self) -> bool:
        """Whether the host must keep the event whole for another try, the one rule every host
        follows: Lambda raises (direct) or reports a batch item failure (SQS), ``run`` writes a
        dead letter, and the duplicate check releases its claim.

        True for a transient failure and for a misconfiguration, including a ``partial`` write
        that a misconfigured source left short: replaying it once the source is fixed writes the
        fields it lacked, and rewrites the others with the same values.
        """
        return self.failure in (FailureKind.TRANSIENT, FailureKind.MISCONFIGURED)

    def to_json(self) -> dict[str, Any]:
        """The outcome as one JSON object: the line ``genesys-enrich run --output`` writes."""
        return {
            "event_id": self.event_id,
            "interaction_id": self.interaction_id,
            "status": self.status.value,
            "reason": self.reason,
            "fields": self.fields,
            "provenance": self.provenance,
            "conflicts": [
                {"field": c.field, "kept": c.kept, "values": c.values} for c in self.conflicts
            ],
            "sources": {result.source: result.to_json() for result in self.sources},
            "retryable": self.retryable,
            "failure": None if self.failure is None else self.failure.value,
            "duration_ms": round(self.duration_ms, 2),
            "dry_run": self.dry_run,
            "request": (
                None
                if self.request is None
                else {
                    "method": self.request.method,
                    "path": self.request.path,
                    "body": self.request.body,
                }
            ),
        }
