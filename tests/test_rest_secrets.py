"""A REST source whose credentials are kept in AWS (settings holding an ARN) reads them again when
the CRM refuses them, and uses the rotated value at once: the secrets through a fake Parameters
and Secrets Lambda Extension, the CRM a fake one, both over real HTTP on loopback."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest

from genesys_enrich.aws_secrets import ExtensionReader, SecretReference, SecretStore, StoredSecret
from genesys_enrich.plugin import SourceError
from genesys_enrich.testing import (
    DEMO_CUSTOMERS,
    FakeCrm,
    FakeSecretsExtension,
    ManualClock,
    Request,
    Response,
)
from genesys_enrich.testing.pytest_plugin import SourceOpener
from genesys_enrich_crm_rest import RestCustomerSource

KEY_ARN = "arn:aws:ssm:eu-west-1:123456789012:parameter/genesys-enrich/crm-key"
OLD_KEY = "crm-key-old-5c1e7a"
NEW_KEY = "crm-key-new-9a7d30"
PAT = DEMO_CUSTOMERS["CUST-1001"]


@pytest.fixture
def extension() -> Iterator[FakeSecretsExtension]:
    with FakeSecretsExtension() as fake:
        fake.parameters[KEY_ARN] = OLD_KEY
        yield fake


@pytest.fixture
async def store(extension: FakeSecretsExtension, clock: ManualClock) -> AsyncIterator[SecretStore]:
    """What a process holds after start-up: secrets read through the extension, on the clock
    the sources run on (a secret is read again at most every 30 s of it)."""
    async with httpx.AsyncClient() as http:
        yield SecretStore(
            ExtensionReader(http, token=extension.token, port=extension.port), clock=clock.now
        )


async def api_key(store: SecretStore) -> StoredSecret:
    """``api_key = "arn:aws:ssm:..."`` in settings, as start-up leaves it: read once."""
    reference = SecretReference.parse(KEY_ARN)
    assert reference is not None
    return await store.read(reference)


@pytest.fixture
def logs(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> pytest.LogCaptureFixture:
    """Every record at DEBUG, ours included when the command line, run earlier in this process,
    made them stop propagating."""
    monkeypatch.setattr(logging.getLogger("genesys_enrich"), "propagate", True)
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="genesys_enrich")
    return caplog


def sent_keys(crm: FakeCrm) -> list[str]:
    return [request.headers.get("authorization", "") for request in crm.requests]


def rotate(extension: FakeSecretsExtension, crm: FakeCrm) -> None:
    """The key is rotated: AWS holds the new one, and the CRM accepts only it."""
    extension.parameters[KEY_ARN] = crm.api_key = NEW_KEY


async def test_a_key_rotated_in_aws_is_read_again_and_the_lookup_succeeds(
    source: SourceOpener,
    store: SecretStore,
    extension: FakeSecretsExtension,
    crm: FakeCrm,
    logs: pytest.LogCaptureFixture,
) -> None:
    """The CRM refuses the old key; the source reads the new one and the same lookup finds the
    customer with it; later lookups use it without reading again. No key reaches the log."""
    crm.api_key = OLD_KEY
    rest = source(RestCustomerSource, base_url=crm.url, api_key=await api_key(store))
    assert await rest.lookup(customer_id="CUST-1001") == PAT

    rotate(extension, crm)
    assert await rest.lookup(customer_id="CUST-1001") == PAT
    assert await rest.lookup(customer_id="CUST-1001") == PAT

    assert sent_keys(crm) == [f"Bearer {OLD_KEY}"] * 2 + [f"Bearer {NEW_KEY}"] * 2
    assert crm.statuses == {200: 3, 401: 1}
    assert extension.reads(KEY_ARN) == 2  # at start-up, and after the refusal
    assert f"the secret at {KEY_ARN} has changed" in logs.text
    assert OLD_KEY not in logs.text
    assert NEW_KEY not in logs.text


async def test_a_refused_key_aws_still_holds_is_misconfigured_after_one_read(
    source: SourceOpener,
    store: SecretStore,
    extension: FakeSecretsExtension,
    crm: FakeCrm,
    clock: ManualClock,
) -> None:
    """A wrong key, not a rotated one: read again once, found unchanged, and the lookup fails as
    misconfigured naming the setting, without the key; the next refusal within 30 s reads
    nothing. Once the key is fixed in AWS, the first refusal after that reads it."""
    crm.api_key = "the-key-the-crm-wants-3e1f"
    rest = source(RestCustomerSource, base_url=crm.url, api_key=await api_key(store))

    failures = []
    for _ in range(2):
        with pytest.raises(SourceError) as caught:
            await rest.lookup(customer_id="CUST-1001")
        failures.append(caught.value)

    for failure in failures:
        assert (failure.misconfigured, failure.retryable) == (True, False)
        assert "check [plugins.rest] api_key" in str(failure)
        assert OLD_KEY not in str(failure)
    assert extension.reads(KEY_ARN) == 2  # at start-up, and once after the first refusal
    assert crm.statuses == {401: 2}  # nothing changed: not sent again

    extension.parameters[KEY_ARN] = "the-key-the-crm-wants-3e1f"
    clock.advance(31)
    assert await rest.lookup(customer_id="CUST-1001") == PAT
    assert extension.reads(KEY_ARN) == 3


class HeldCrm(FakeCrm):
    """Holds the answers to the old key until ``lookups`` requests carry it: the refusals all
    reach the source together, as they do when a rotation meets a busy process."""

    def __init__(self, lookups: int) -> None:
        super().__init__(api_key=OLD_KEY)
        self._together = threading.Barrier(lookups, timeout=10)

    def handle(self, request: Request) -> Response:
        if request.headers.get("authorization") == f"Bearer {OLD_KEY}":
            self._together.wait()
        return super().handle(request)


@pytest.mark.parametrize("rotated", [True, False], ids=["rotated", "unchanged"])
async def test_concurrent_lookups_refused_together_read_the_secret_once(
    source: SourceOpener, store: SecretStore, extension: FakeSecretsExtension, rotated: bool
) -> None:
    """16 lookups sent with the old key are refused at once: the key is read again once, not 16
    times; rotated, every lookup then succeeds with the new key, else every one is
    misconfigured."""
    with HeldCrm(lookups=16) as crm:
        rest = source(RestCustomerSource, base_url=crm.url, api_key=await api_key(store))
        if rotated:
            rotate(extension, crm)
        else:
            crm.api_key = "the-key-the-crm-wants-3e1f"

        found = await asyncio.gather(
            *(rest.lookup(customer_id="CUST-1001") for _ in range(16)), return_exceptions=True
        )

    assert extension.reads(KEY_ARN) == 2  # at start-up, and once for the 16 refusals
    if rotated:
        assert found == [PAT] * 16
        assert sent_keys(crm) == [f"Bearer {OLD_KEY}"] * 16 + [f"Bearer {NEW_KEY}"] * 16
    else:
        assert all(isinstance(error, SourceError) and error.misconfigured for error in found)
        assert crm.statuses == {401: 16}


async def test_a_key_written_in_settings_is_not_read_again(
    source: SourceOpener, extension: FakeSecretsExtension, crm: FakeCrm
) -> None:
    """A plain setting has nowhere to be read from: a refusal fails at once, misconfigured."""
    rest = source(RestCustomerSource, base_url=crm.url, api_key="not-what-the-crm-wants")

    with pytest.raises(SourceError, match=r"check \[plugins.rest\] api_key") as caught:
        await rest.lookup(customer_id="CUST-1001")

    assert caught.value.misconfigured
    assert crm.statuses == {401: 1}
    assert extension.requests == []
