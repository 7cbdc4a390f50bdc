"""Secrets named by ARN: read once per cold start through the Lambda extension (a fake one on
loopback, over real HTTP) or boto3 (moto), read again after Genesys refuses a rotated secret, and
never written to a log."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator

import httpx
import pytest
from pydantic import SecretStr

from genesys_enrich.app import Enricher
from genesys_enrich.aws_secrets import (
    ExtensionReader,
    SecretReference,
    SecretStore,
    StoredSecret,
    refresh,
    refresh_all,
    resolve_references,
)
from genesys_enrich.errors import ConfigError
from genesys_enrich.hosts import aws_lambda
from genesys_enrich.settings import load_settings
from genesys_enrich.testing import (
    FakeCrm,
    FakeGenesys,
    FakeSecretsExtension,
    seed_event,
    settings_for,
)
from genesys_enrich_crm_rest import RestConfig

ACCOUNT = "123456789012"
GENESYS_SECRET_ARN = f"arn:aws:secretsmanager:eu-west-1:{ACCOUNT}:secret:genesys-client-AbCdEf"
CRM_SECRET_ARN = f"arn:aws:secretsmanager:eu-west-1:{ACCOUNT}:secret:crm-keys-XyZ123"
CRM_KEY_PARAMETER = f"arn:aws:ssm:eu-west-1:{ACCOUNT}:parameter/genesys-enrich/crm-key"


@pytest.fixture
def extension(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeSecretsExtension]:
    """The extension a Lambda function with the layer talks to, and the function's environment."""
    with FakeSecretsExtension() as fake:
        monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", "genesys-enrich")
        monkeypatch.setenv("PARAMETERS_SECRETS_EXTENSION_HTTP_PORT", str(fake.port))
        monkeypatch.setenv("AWS_SESSION_TOKEN", fake.token)
        yield fake


# --- what a reference is ---------------------------------------------------------------------


def test_references_take_ecs_valuefrom_syntax() -> None:
    """A secret, one JSON key of it (optionally a version), or an SSM parameter; anything else is
    a plain value."""
    whole = SecretReference.parse(GENESYS_SECRET_ARN)
    keyed = SecretReference.parse(f"{CRM_SECRET_ARN}:rest_key::")
    versioned = SecretReference.parse(f"{CRM_SECRET_ARN}:rest_key:AWSPREVIOUS:")
    parameter = SecretReference.parse(CRM_KEY_PARAMETER)
    assert whole is not None
    assert keyed is not None
    assert versioned is not None
    assert parameter is not None
    assert (whole.service, whole.arn, whole.json_key) == (
        "secretsmanager",
        GENESYS_SECRET_ARN,
        None,
    )
    assert (keyed.arn, keyed.json_key, keyed.version_stage) == (CRM_SECRET_ARN, "rest_key", None)
    assert versioned.version_stage == "AWSPREVIOUS"
    assert (parameter.service, parameter.region) == ("ssm", "eu-west-1")
    for plain in ("s3cr3t", "arn-like but not", f"arn:aws:s3:::bucket/{ACCOUNT}"):
        assert SecretReference.parse(plain) is None


@pytest.mark.parametrize(
    "broken",
    [
        f"arn:aws:secretsmanager:eu-west-1:{ACCOUNT}:secret:",
        f"arn:aws:secretsmanager:eu-west-1:{ACCOUNT}:genesys",
        f"arn:aws:ssm:eu-west-1:{ACCOUNT}:document/x",
        "arn:aws:secretsmanager:eu-west-1:12:secret:short-account",
    ],
)
async def test_a_malformed_reference_stops_start_up_naming_the_setting(
    broken: str, http: httpx.AsyncClient, genesys: FakeGenesys
) -> None:
    """A mistyped ARN is never sent to Genesys as if it were the secret."""
    settings = load_settings(overrides={"genesys": {"client_secret": broken}})
    with pytest.raises(ConfigError, match=r"\[genesys\] client_secret: .* looks like"):
        await resolve_references(settings, http)


# --- read through the Lambda extension -----------------------------------------------------


@pytest.fixture
def referenced(
    monkeypatch: pytest.MonkeyPatch,
    extension: FakeSecretsExtension,
    genesys: FakeGenesys,
    crm: FakeCrm,
) -> FakeSecretsExtension:
    """A Lambda function whose Genesys secret is a Secrets Manager secret and whose CRM key is a
    key of a JSON secret, set the seed's way (environment variables holding ARNs)."""
    extension.secrets[GENESYS_SECRET_ARN] = genesys.client_secret
    extension.secrets[CRM_SECRET_ARN] = json.dumps({"rest_key": crm.api_key, "other": "x"})
    monkeypatch.setenv("GENESYS_CLIENT_SECRET", GENESYS_SECRET_ARN)
    monkeypatch.setenv("CRM_API_KEY", f"{CRM_SECRET_ARN}:rest_key::")
    return extension


def test_lambda_reads_each_secret_once_per_cold_start(
    lambda_process: aws_lambda._Process,
    referenced: FakeSecretsExtension,
    genesys: FakeGenesys,
) -> None:
    """Three invocations: each secret is read from the extension once, with the session token,
    and the events are enriched with them."""
    statuses = [aws_lambda.handler(seed_event("CUST-1001"), None)["status"] for _ in range(3)]
    assert statuses == ["enriched"] * 3
    assert referenced.reads(GENESYS_SECRET_ARN) == referenced.reads(CRM_SECRET_ARN) == 1
    assert len(genesys.writes) == 3


def test_a_rotated_genesys_secret_is_read_again_and_the_event_still_written(
    lambda_process: aws_lambda._Process,
    referenced: FakeSecretsExtension,
    genesys: FakeGenesys,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The secret is rotated in Secrets Manager and Genesys revokes the old tokens: the next event's
    write is refused, the token request too, the secret is read again, and the event is written
    with a token fetched with the new secret. Neither secret reaches the log."""
    assert aws_lambda.handler(seed_event("CUST-1001"), None)["status"] == "enriched"
    old = genesys.client_secret
    genesys.client_secret = referenced.secrets[GENESYS_SECRET_ARN] = "rotated-secret-81b2"
    genesys.revoke_tokens()
    assert aws_lambda.handler(seed_event("CUST-1001"), None)["status"] == "enriched"
    assert referenced.reads(GENESYS_SECRET_ARN) == 2
    assert referenced.reads(CRM_SECRET_ARN) == 1
    # The write refused, the token request refused, the token with the new secret, the write.
    assert [status for _, status in genesys.answered][-4:] == [401, 401, 200, 200]
    logs = capsys.readouterr()
    for secret in (old, "rotated-secret-81b2", "demo-crm-key"):
        assert secret not in logs.err + logs.out


def test_a_rotated_crm_key_is_read_again_and_the_event_still_enriched(
    lambda_process: aws_lambda._Process,
    referenced: FakeSecretsExtension,
    crm: FakeCrm,
    genesys: FakeGenesys,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The CRM key is rotated in Secrets Manager and the CRM accepts only the new one: the next
    event's lookup is refused, the key read again, the lookup sent again with it, and the event
    enriched by the same warm environment. Neither key reaches the log."""
    assert aws_lambda.handler(seed_event("CUST-1001"), None)["status"] == "enriched"
    old = crm.api_key
    crm.api_key = "rotated-crm-key-4d0c"
    referenced.secrets[CRM_SECRET_ARN] = json.dumps({"rest_key": crm.api_key, "other": "x"})
    assert aws_lambda.handler(seed_event("CUST-1001"), None)["status"] == "enriched"
    assert referenced.reads(CRM_SECRET_ARN) == 2
    assert referenced.reads(GENESYS_SECRET_ARN) == 1
    sent = [request.headers["authorization"] for request in crm.requests]
    assert sent == [f"Bearer {old}", f"Bearer {old}", "Bearer rotated-crm-key-4d0c"]
    assert len(genesys.writes) == 2
    logs = capsys.readouterr()
    for secret in (old, "rotated-crm-key-4d0c"):
        assert secret not in logs.err + logs.out


def test_a_wrong_secret_is_read_again_at_most_once_in_a_while(
    lambda_process: aws_lambda._Process,
    referenced: FakeSecretsExtension,
    genesys: FakeGenesys,
) -> None:
    """Genesys refuses a secret that Secrets Manager still holds (wrong, not rotated): it is read
    once more, found unchanged, and the events fail retryable without further reads."""
    referenced.secrets[GENESYS_SECRET_ARN] = "not-the-secret"
    for _ in range(3):
        with pytest.raises(aws_lambda.RetryableFailure, match="rejected the OAuth client"):
            aws_lambda.handler(seed_event("CUST-1001"), None)
    assert referenced.reads(GENESYS_SECRET_ARN) == 2  # at start, and after the first refusal
    assert len(genesys.token_requests) == 1  # the refusal is remembered: no request per event
    assert genesys.writes == []


async def test_refresh_reads_again_only_after_a_while_and_reports_a_change(
    extension: FakeSecretsExtension, http: httpx.AsyncClient
) -> None:
    """refresh() is what a CRM source calls after a 401: True when the value changed (send again,
    the same SecretStr now gives the new value), False when it is the same or was just read."""
    now = [0.0]
    extension.parameters[CRM_KEY_PARAMETER] = "key-1"
    settings = settings_for(plugins={"rest": {"base_url": "https://crm.example.com"}})
    reference = SecretReference.parse(CRM_KEY_PARAMETER)
    assert reference is not None
    store = SecretStore(
        ExtensionReader.from_environment(http), refresh_after=30, clock=lambda: now[0]
    )
    secret = await store.read(reference)
    config = RestConfig.model_validate({**settings.plugins["rest"], "api_key": secret})
    extension.parameters[CRM_KEY_PARAMETER] = "key-2"
    assert await refresh_all(config) is True
    assert config.api_key is not None
    assert config.api_key.get_secret_value() == "key-2"
    extension.parameters[CRM_KEY_PARAMETER] = "key-3"
    assert await refresh_all(config) is False  # read again moments ago: not asked again
    now[0] = 31
    assert await refresh(config.api_key) is True
    assert config.api_key.get_secret_value() == "key-3"
    now[0] = 62
    assert await refresh(config.api_key) is False  # AWS holds what we have: not rotated
    assert extension.reads(CRM_KEY_PARAMETER) == 4
    assert await refresh(SecretStr("written in settings")) is False


async def test_a_secret_another_caller_replaced_is_not_read_again(
    extension: FakeSecretsExtension, http: httpx.AsyncClient
) -> None:
    """Concurrent 401s: the first caller reads the new value; the others, passing the value they
    sent, learn it changed without another read."""
    extension.secrets[GENESYS_SECRET_ARN] = "v1"
    reference = SecretReference.parse(GENESYS_SECRET_ARN)
    assert reference is not None
    store = SecretStore(ExtensionReader.from_environment(http))
    secret = await store.read(reference)
    extension.secrets[GENESYS_SECRET_ARN] = "v2"
    results = [await refresh(secret, rejected="v1") for _ in range(3)]
    assert results == [True, True, True]
    assert extension.reads(GENESYS_SECRET_ARN) == 2
    assert isinstance(secret, StoredSecret)
    assert repr(secret) == "StoredSecret('**********')"


async def test_an_unreachable_extension_says_to_add_its_layer(
    monkeypatch: pytest.MonkeyPatch, http: httpx.AsyncClient, genesys: FakeGenesys, crm: FakeCrm
) -> None:
    """In Lambda without the extension, start-up fails naming the setting, the ARN and the fix."""
    with FakeSecretsExtension() as gone:
        port = gone.port
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", "genesys-enrich")
    monkeypatch.setenv("PARAMETERS_SECRETS_EXTENSION_HTTP_PORT", str(port))
    monkeypatch.setenv("AWS_SESSION_TOKEN", "t")
    settings = settings_for(genesys, crm, plugins={"rest": {"api_key": CRM_KEY_PARAMETER}})
    with pytest.raises(ConfigError) as failure:
        await Enricher.start(settings, http=http)
    message = str(failure.value)
    assert message.startswith(f"cannot read [plugins.rest] api_key from {CRM_KEY_PARAMETER}")
    assert "add its layer to the function" in message


async def test_a_refused_read_names_the_setting_and_arn_but_no_value(
    extension: FakeSecretsExtension, http: httpx.AsyncClient
) -> None:
    """A secret the extension does not have (or may not read): the message says which setting."""
    settings = load_settings(overrides={"genesys": {"client_secret": GENESYS_SECRET_ARN}})
    with pytest.raises(ConfigError, match=r"cannot read \[genesys\] client_secret from arn:.*400"):
        await resolve_references(settings, http)


async def test_a_missing_json_key_names_the_keys_there_but_no_value(
    extension: FakeSecretsExtension, http: httpx.AsyncClient
) -> None:
    """A JSON secret without the key asked for: the message lists its keys, never its values."""
    extension.secrets[CRM_SECRET_ARN] = json.dumps({"other_key": "v4lue-8c1"})
    settings = load_settings(
        overrides={
            "plugins": {"rest": {"base_url": "https://crm", "api_key": f"{CRM_SECRET_ARN}:rest::"}}
        }
    )
    with pytest.raises(ConfigError) as failure:
        await resolve_references(settings, http)
    assert "no string under the key 'rest' (its keys: other_key)" in str(failure.value)
    assert "v4lue-8c1" not in str(failure.value)


async def test_a_dry_run_reads_no_genesys_secret(
    extension: FakeSecretsExtension, http: httpx.AsyncClient, crm: FakeCrm
) -> None:
    """A dry run writes nothing, so it needs (and reads) no Genesys secret; the CRM's it does."""
    extension.parameters[CRM_KEY_PARAMETER] = crm.api_key or ""
    settings = load_settings(
        overrides={
            "genesys": {"client_secret": GENESYS_SECRET_ARN},
            "plugins": {"rest": {"base_url": crm.url, "api_key": CRM_KEY_PARAMETER}},
        }
    )
    async with await Enricher.start(settings, dry_run=True, http=http) as enricher:
        outcome = await enricher.process(seed_event("CUST-1001"))
    assert outcome.status == "enriched"
    assert extension.reads(GENESYS_SECRET_ARN) == 0
    assert extension.reads(CRM_KEY_PARAMETER) == 1


# --- read with boto3, outside Lambda -----------------------------------------------------------


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """moto's AWS, with throwaway credentials, for the boto3 path."""
    moto = pytest.importorskip("moto")
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "eu-west-1",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_LAMBDA_FUNCTION_NAME", raising=False)
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
    with moto.mock_aws():
        yield


@pytest.mark.slow
async def test_outside_lambda_boto3_reads_secrets_and_parameters(
    aws: None, http: httpx.AsyncClient, genesys: FakeGenesys, crm: FakeCrm
) -> None:
    """From a laptop or a container: the same ARNs, read with boto3; a rotation is seen on
    refresh. The Genesys secret is a JSON secret's key, the CRM key an SSM SecureString."""
    import boto3  # a dev dependency (moto's)

    secrets = boto3.client("secretsmanager", region_name="eu-west-1")
    created = secrets.create_secret(
        Name="genesys-client", SecretString=json.dumps({"client_secret": genesys.client_secret})
    )
    ssm = boto3.client("ssm", region_name="eu-west-1")
    ssm.put_parameter(Name="/genesys-enrich/crm-key", Value=crm.api_key or "", Type="SecureString")
    parameter_arn = ssm.get_parameter(Name="/genesys-enrich/crm-key")["Parameter"]["ARN"]
    settings = load_settings(
        overrides={
            "genesys": {
                "api_url": genesys.url,
                "login_url": genesys.url,
                "client_id": genesys.client_id,
                "client_secret": f"{created['ARN']}:client_secret::",
            },
            "plugins": {"rest": {"base_url": crm.url, "api_key": parameter_arn}},
        }
    )
    async with await Enricher.start(settings, http=http) as enricher:
        outcome = await enricher.process(seed_event("CUST-1001"))
        assert outcome.status == "enriched"
        client_secret = enricher.settings.genesys.client_secret
        secrets.put_secret_value(
            SecretId=created["ARN"], SecretString=json.dumps({"client_secret": "rotated"})
        )
        assert isinstance(client_secret, StoredSecret)
        assert await refresh(client_secret) is True
        assert client_secret.get_secret_value() == "rotated"
    assert len(genesys.writes) == 1


def test_the_settings_repr_and_logs_show_no_secret_read_from_aws(
    lambda_process: aws_lambda._Process,
    referenced: FakeSecretsExtension,
    genesys: FakeGenesys,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """What was read is masked wherever settings are shown."""
    caplog.set_level(logging.DEBUG)
    aws_lambda.handler(seed_event("CUST-1001"), None)
    assert lambda_process.enricher is not None
    shown = repr(lambda_process.enricher.settings) + caplog.text
    assert genesys.client_secret not in shown
    assert "demo-crm-key" not in shown
