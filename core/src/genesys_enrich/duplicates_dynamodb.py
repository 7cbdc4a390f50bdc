"""A duplicate check shared by every Lambda environment: claims kept in a DynamoDB table.

Install the ``dynamodb`` extra (``genesys-enrich[dynamodb]``, which brings boto3) and name the
table in ``[intake] duplicate_table``; boto3 is imported only then, so a handler without a table
never pays for it. The table has the partition key ``event_id`` (a string) and TTL enabled on
``expires_at``; the function needs ``dynamodb:PutItem``, ``dynamodb:GetItem`` and
``dynamodb:DeleteItem`` on it. Each item is one claim:

``event_id``
    the EventBridge event id.
``state``
    ``in_progress`` from the claim until the outcome is final, then ``done``.
``expires_at``
    epoch seconds: the claiming invocation's end while in progress, the end of the duplicate
    window once done. TTL deletes expired items, lazily (up to days late), so every condition
    reads ``expires_at`` itself rather than trusting an item's presence.
``owner``
    a random id of the delivery holding the claim, so a delivery releases only its own.

A claim is a conditional put, ``attribute_not_exists(event_id) OR expires_at < :now``: it
succeeds for a new id or an expired claim (an invocation that died before finishing), and
fails for a claim in progress (``BUSY``) or done within the window (``DONE``).
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
import uuid
from collections.abc import Callable
from typing import Any

from .duplicates import Claim
from .errors import ConfigError

IN_PROGRESS = "in_progress"
DONE = "done"


class DynamoDbEvents:
    """A :class:`~genesys_enrich.duplicates.DuplicateGuard` in a DynamoDB table.

    Args:
        table: the table's name.
        window_seconds: how long a done claim makes later deliveries duplicates.
        client: a boto3 DynamoDB client; by default one for the environment's region and
            credentials (``AWS_REGION`` and the function's role, in Lambda).
        clock: epoch seconds; tests pass their own.

    Raises:
        ConfigError: no client was given and boto3 is not installed.
    """

    def __init__(
        self,
        table: str,
        window_seconds: float,
        *,
        client: Any = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if client is None:
            try:
                import boto3  # type: ignore[import-untyped]  # the optional extra, only when used
            except ImportError:
                msg = (
                    f"[intake] duplicate_table = {table!r} needs boto3: deploy genesys-enrich "
                    "with its dynamodb extra (genesys-enrich[dynamodb]), or unset duplicate_table"
                )
                raise ConfigError(msg) from None
            client = boto3.client("dynamodb")
        self.table = table
        self.window_seconds = window_seconds
        self._client = client
        self._clock = clock
        self._owners: dict[str, str] = {}
        """Event id to the owner id of the claim this process holds on it."""

    def __repr__(self) -> str:
        return f"DynamoDbEvents(table={self.table!r}, window_seconds={self.window_seconds})"

    async def claim(self, event_id: str, *, lease: float) -> Claim:
        owner = uuid.uuid4().hex
        claim = await asyncio.to_thread(self._claim, event_id, owner, lease)
        if claim is Claim.NEW:
            self._owners[event_id] = owner
        return claim

    async def finish(self, event_id: str) -> None:
        owner = self._owners.pop(event_id, None) or uuid.uuid4().hex
        await asyncio.to_thread(self._finish, event_id, owner)

    async def release(self, event_id: str) -> None:
        owner = self._owners.pop(event_id, None)
        if owner is not None:  # no claim of ours (the store was down): nothing to free
            await asyncio.to_thread(self._release, event_id, owner)

    def _claim(self, event_id: str, owner: str, lease: float) -> Claim:
        now = self._clock()
        try:
            self._client.put_item(
                TableName=self.table,
                Item=_item(event_id, IN_PROGRESS, now + lease, owner),
                ConditionExpression="attribute_not_exists(event_id) OR expires_at < :now",
                ExpressionAttributeValues={":now": {"N": str(math.floor(now))}},
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except self._client.exceptions.ConditionalCheckFailedException as refused:
            held = refused.response.get("Item") or self._read(event_id)
            state = (held or {}).get("state", {}).get("S")
            return Claim.DONE if state == DONE else Claim.BUSY
        return Claim.NEW

    def _read(self, event_id: str) -> dict[str, Any] | None:
        answer = self._client.get_item(
            TableName=self.table, Key={"event_id": {"S": event_id}}, ConsistentRead=True
        )
        item: dict[str, Any] | None = answer.get("Item")
        return item

    def _finish(self, event_id: str, owner: str) -> None:
        # Unconditional: the event was processed, whoever holds the claim by now.
        expires = self._clock() + self.window_seconds
        self._client.put_item(TableName=self.table, Item=_item(event_id, DONE, expires, owner))

    def _release(self, event_id: str, owner: str) -> None:
        # When the condition fails, our claim expired and another delivery holds the id: leave it.
        with contextlib.suppress(self._client.exceptions.ConditionalCheckFailedException):
            self._client.delete_item(
                TableName=self.table,
                Key={"event_id": {"S": event_id}},
                ConditionExpression="#owner = :owner AND #state = :in_progress",
                ExpressionAttributeNames={"#owner": "owner", "#state": "state"},
                ExpressionAttributeValues={
                    ":owner": {"S": owner},
                    ":in_progress": {"S": IN_PROGRESS},
                },
            )


def _item(event_id: str, state: str, expires_at: float, owner: str) -> dict[str, Any]:
    return {
        "event_id": {"S": event_id},
        "state": {"S": state},
        "expires_at": {"N": str(math.ceil(expires_at))},
        "owner": {"S": owner},
    }
