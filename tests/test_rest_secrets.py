"""A REST source whose credentials are kept in AWS (settings holding an ARN) reads them again when
the CRM or its token endpoint refuses them, and uses the rotated value at once. The secrets come
through the kit's fake Parameters and Secrets Lambda Extension over real HTTP on loopback; the CRM
is the kit's fake CRM (a key), or respx (OAuth)."""

from __future__ import annotations

import asyncio
import logging
import threading
from base64 import b64decode
from collections.abc import Iterator

import httpx
import pytest
import respx
from pydantic import SecretStr

from genesys_enrich.aws_secrets import ExtensionReader, SecretReference, SecretStore, StoredSecret
from genesys_enrich.plugin import (
    Get,
    OAuth2ClientCredentials,
    RestSource,
    RestSourceConfig,
    SourceError,
)
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
def store(
    extension: FakeSecretsExtension, clock: ManualClock, http: httpx.AsyncClient
) -> SecretStore:
    """What a process holds after start-up: secrets read through the extension, on the clock
    the sources run on (a secret is read again at most every 30 s of it)."""
    return SecretStore(
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


# --- OAuth client credentials ------------------------------------------------------------------

BASE = "https://crm.example.com/api"
TOKEN_URL = "https://login.example.com/oauth2/token"
SECRET_ARN = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:crm-oauth-Q1w2E3"
OLD_SECRET = "client-secret-old-71c2"
NEW_SECRET = "client-secret-new-0be4"


class OAuthConfig(RestSourceConfig):
    client_id: str = "client-5b1f"
    client_secret: SecretStr


class OAuthCustomers(RestSource):
    name = "customers"
    Config = OAuthConfig
    request = Get("/customers/{value}")
    auth = OAuth2ClientCredentials(TOKEN_URL)


class TokenEndpoint:
    """Grants ``token-1``, ``token-2``... for an hour to the client presenting :attr:`secret`;
    refuses any other with ``refusal``."""

    def __init__(self, respx_mock: respx.MockRouter, refusal: httpx.Response) -> None:
        self.secret = OLD_SECRET
        self.refusal = refusal
        self.presented: list[str] = []
        self.route = respx_mock.post(TOKEN_URL).mock(side_effect=self._answer)

    def _answer(self, request: httpx.Request) -> httpx.Response:
        encoded = request.headers["Authorization"].removeprefix("Basic ")
        secret = b64decode(encoded).decode().partition(":")[2]
        self.presented.append(secret)
        if secret != self.secret:
            return self.refusal
        granted = f"token-{len(self.presented)}"
        return httpx.Response(200, json={"access_token": granted, "expires_in": 3600})


@pytest.fixture
def aws_by_loopback(respx_mock: respx.MockRouter, extension: FakeSecretsExtension) -> None:
    """respx mocks the CRM and its token endpoint; the extension is the real loopback fake."""
    respx_mock.route(host="localhost").pass_through()
    extension.secrets[SECRET_ARN] = OLD_SECRET


async def client_secret(store: SecretStore) -> StoredSecret:
    reference = SecretReference.parse(SECRET_ARN)
    assert reference is not None
    return await store.read(reference)


INVALID_CLIENT = [
    httpx.Response(401, json={"error": "invalid_client"}),
    httpx.Response(400, json={"error": "invalid_client"}),
]


@pytest.mark.parametrize("refusal", INVALID_CLIENT, ids=["401", "400"])
@pytest.mark.usefixtures("aws_by_loopback")
async def test_a_client_secret_rotated_in_aws_is_read_again_for_a_new_token(
    source: SourceOpener,
    store: SecretStore,
    extension: FakeSecretsExtension,
    respx_mock: respx.MockRouter,
    clock: ManualClock,
    refusal: httpx.Response,
) -> None:
    """The token expires after the secret was rotated: the token endpoint refuses the old one,
    the source reads the new one and asks again, and the lookup succeeds with that token."""
    tokens = TokenEndpoint(respx_mock, refusal)
    crm = respx_mock.get(f"{BASE}/customers/C-1").respond(json=PAT)
    oauth = source(OAuthCustomers, base_url=BASE, client_secret=await client_secret(store))
    assert await oauth.lookup(customer_id="C-1") == PAT

    tokens.secret = extension.secrets[SECRET_ARN] = NEW_SECRET
    clock.advance(3600)
    assert await oauth.lookup(customer_id="C-1") == PAT

    assert tokens.presented == [OLD_SECRET, OLD_SECRET, NEW_SECRET]
    assert [call.request.headers["Authorization"] for call in crm.calls] == [
        "Bearer token-1",
        "Bearer token-3",
    ]
    assert extension.reads(SECRET_ARN) == 2


@pytest.mark.usefixtures("aws_by_loopback")
async def test_a_refused_client_secret_aws_still_holds_is_misconfigured_after_one_read(
    source: SourceOpener,
    store: SecretStore,
    extension: FakeSecretsExtension,
    respx_mock: respx.MockRouter,
) -> None:
    """Wrong, not rotated: read again once, then every lookup fails misconfigured naming the
    settings, asking for a token once each and reading nothing more within 30 s."""
    tokens = TokenEndpoint(respx_mock, INVALID_CLIENT[1])
    tokens.secret = "the-secret-the-server-wants"
    oauth = source(OAuthCustomers, base_url=BASE, client_secret=await client_secret(store))

    for _ in range(2):
        with pytest.raises(SourceError) as caught:
            await oauth.lookup(customer_id="C-1")
        assert (caught.value.misconfigured, caught.value.retryable) == (True, False)
        assert "check [plugins.customers] client_id and client_secret" in str(caught.value)
        assert OLD_SECRET not in str(caught.value)

    assert tokens.presented == [OLD_SECRET, OLD_SECRET]
    assert extension.reads(SECRET_ARN) == 2


@pytest.mark.usefixtures("aws_by_loopback")
async def test_a_token_refusal_that_is_not_about_the_client_reads_nothing(
    source: SourceOpener,
    store: SecretStore,
    extension: FakeSecretsExtension,
    respx_mock: respx.MockRouter,
) -> None:
    """A 400 ``invalid_scope`` is the declaration's to fix: no secret is read again."""
    tokens = TokenEndpoint(respx_mock, httpx.Response(400, json={"error": "invalid_scope"}))
    tokens.secret = "the-secret-the-server-wants"
    oauth = source(OAuthCustomers, base_url=BASE, client_secret=await client_secret(store))

    with pytest.raises(SourceError, match="invalid_scope"):
        await oauth.lookup(customer_id="C-1")

    assert tokens.presented == [OLD_SECRET]
    assert extension.reads(SECRET_ARN) == 1
