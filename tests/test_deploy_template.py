"""deploy/template.yaml: the offline checks pass, and the stack it describes does what
docs/deploy.md says, in either delivery mode.

The checks (cfn-lint, the AWS SAM translator, checkov) run in their own environment,
``deploy/checks``: the translator pins pydantic to one minor version, which must not decide the
version the Lambda package ships. They also hand back the translated CloudFormation, which the
tests below evaluate for given parameter values, as CloudFormation would, and read as a user's
stack.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import boto3
import pytest
from moto import mock_aws

from genesys_enrich.duplicates import Claim
from genesys_enrich.duplicates_dynamodb import DynamoDbEvents
from genesys_enrich.settings import GenesysSettings, IntakeSettings, PipelineSettings, load_settings
from genesys_enrich.topics import ACD_START, CUSTOMER_START, USER_START

ROOT = Path(__file__).resolve().parent.parent
CHECKS = ROOT / "deploy" / "checks"
SECRET_ARN = "arn:aws:secretsmanager:us-east-1:123456789012:secret:genesys-enrich/{}-AbCdEf"
REQUIRED = {
    "PartnerEventSourceName": (
        "aws.partner/genesys.com/cloud/32aa07aa-db1b-4987-abd0-9483601ec29d/enrich"
    ),
    "GenesysClientId": "0e5f3c6a-5f0e-4f55-9a8f-1b2c3d4e5f60",
    "GenesysClientSecretArn": SECRET_ARN.format("genesys"),
}
"""What a deployment must give: the parameters without a default."""
EXTENSION_LAYER_ARN = (
    "arn:aws:lambda:us-east-1:177933569100:layer:"
    "AWS-Parameters-and-Secrets-Lambda-Extension-Arm64:11"
)
"""The extension's arm64 layer in us-east-1, as AWS publishes it."""
_NO_VALUE = object()


pytestmark = pytest.mark.slow  # the checks run cfn-lint, the SAM translator and checkov


@pytest.fixture(scope="module")
def checked(
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[subprocess.CompletedProcess[str], Any]:
    """The checks' result, and the template as CloudFormation sees it after the SAM transform."""
    uv = os.environ.get("UV") or shutil.which("uv")  # `uv run` sets $UV
    if uv is None:
        pytest.skip("the template checks need uv: run the tests with `uv run`")
    translated = tmp_path_factory.mktemp("template") / "translated.json"
    check = [uv, "run", "--project", str(CHECKS), "--locked", "--quiet", "python"]
    result = subprocess.run(  # noqa: S603 - uv, running this repository's checks
        [*check, str(CHECKS / "check_template.py"), "--translated", str(translated)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert translated.exists(), result.stdout + result.stderr
    return result, json.loads(translated.read_text(encoding="utf-8"))


class Stack:
    """The translated template evaluated for one set of parameter values: its conditions decided
    and its intrinsic functions resolved; references to resources become ``<Name>`` and
    ``<Name.Attribute>``."""

    def __init__(self, template: dict[str, Any], **parameters: str) -> None:
        self.template = template
        declared = template["Parameters"]
        defaults = {name: str(p["Default"]) for name, p in declared.items() if "Default" in p}
        self.parameters: dict[str, Any] = {**defaults, **REQUIRED, **parameters}
        for name, value in self.parameters.items():
            if declared[name]["Type"] == "CommaDelimitedList":
                self.parameters[name] = value.split(",")
        self.resources = {
            name: self.value({key: body for key, body in resource.items() if key != "Condition"})
            for name, resource in template["Resources"].items()
            if self.condition(resource.get("Condition"))
        }

    def condition(self, name: str | None) -> bool:
        return name is None or bool(self.value(self.template["Conditions"][name]))

    def properties(self, resource: str) -> dict[str, Any]:
        return self.resources[resource]["Properties"]  # type: ignore[no-any-return]

    def value(self, node: Any) -> Any:
        if isinstance(node, list):
            return [item for item in map(self.value, node) if item is not _NO_VALUE]
        if not isinstance(node, dict):
            return node
        if len(node) == 1:
            [(function, argument)] = node.items()
            if function == "Ref":
                if argument == "AWS::NoValue":
                    return _NO_VALUE
                return self.parameters.get(argument, f"<{argument}>")
            if function == "Fn::GetAtt":
                return f"<{argument[0]}.{argument[1]}>"
            if function == "Fn::If":
                condition, then, otherwise = argument
                return self.value(then if self.condition(condition) else otherwise)
            if function == "Fn::Equals":
                return self.value(argument[0]) == self.value(argument[1])
            if function == "Fn::Not":
                return not self.value(argument[0])
            if function == "Fn::Join":
                return self.value(argument[0]).join(self.value(argument[1]))
            if function == "Fn::FindInMap":
                mapping, key, attribute = self.value(argument)
                return self.template["Mappings"][mapping][key][attribute]
            if function == "Fn::Sub":
                text, variables = argument if isinstance(argument, list) else (argument, {})
                names = {name: self.value(value) for name, value in variables.items()}
                return re.sub(r"\$\{([^}]+)\}", lambda m: str(names.get(m[1], f"<{m[1]}>")), text)
        return {
            key: value
            for key, value in ((key, self.value(value)) for key, value in node.items())
            if value is not _NO_VALUE
        }


def deployment(**parameters: str) -> dict[str, str]:
    return parameters


DEPLOYMENTS = {
    "direct, defaults": deployment(),
    "buffered, defaults": deployment(DeliveryMode="buffered"),
    "buffered, three CRMs, every start topic, SnapStart": deployment(
        DeliveryMode="buffered",
        Sources="rest,salesforce,hubspot",
        Mappers="fields",
        Topics=",".join((CUSTOMER_START, ACD_START, USER_START)),
        CrmApiBaseUrl="https://crm.example.com/api",
        RestApiKeySecretArn=SECRET_ARN.format("rest"),
        SalesforceClientSecretArn=SECRET_ARN.format("salesforce"),
        HubSpotAccessTokenSecretArn=SECRET_ARN.format("hubspot"),
        SecretsKmsKeyArn="arn:aws:kms:us-east-1:123456789012:key/1a2b3c4d-0000-4000-8000-000000000000",
        GenesysEnvironment="eu-west-1",
        EnableSnapStart="true",
        SecretsExtensionLayerArn=EXTENSION_LAYER_ARN,
        EnableDuplicateTable="true",
    ),
}


def test_the_template_passes_cfn_lint_the_sam_translator_and_checkov(
    checked: tuple[subprocess.CompletedProcess[str], Any],
) -> None:
    result, _translated = checked
    assert result.returncode == 0, result.stdout + result.stderr
    assert "template.yaml: 0 problem(s)" in result.stdout
    assert "Failed checks: 0" in result.stdout


@pytest.mark.parametrize("parameters", DEPLOYMENTS.values(), ids=DEPLOYMENTS.keys())
def test_the_function_environment_is_read_as_the_settings_asked_for(
    checked: tuple[subprocess.CompletedProcess[str], Any],
    parameters: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Every variable the template sets is a setting genesys-enrich knows (a misspelt one would
    stop it at start), with the value the parameters gave; secrets travel as their ARNs only."""
    stack = Stack(checked[1], **parameters)
    variables = stack.properties("Function")["Environment"]["Variables"]
    secrets = {name: value for name, value in variables.items() if value.startswith("arn:aws")}
    variables = {name: value for name, value in variables.items() if name.startswith("GENESYS_")}
    given = {value for name, value in parameters.items() if name.endswith("SecretArn")}
    assert set(secrets.values()) == given | {REQUIRED["GenesysClientSecretArn"]}
    for name, value in variables.items():
        # The ARN's own resolution is the handler's business; here only the names are checked.
        monkeypatch.setenv(name, "a-secret" if name in secrets else value)

    settings = load_settings()

    assert settings.pipeline.sources == tuple(stack.parameters["Sources"])
    assert settings.pipeline.mappers == tuple(stack.parameters["Mappers"])
    assert settings.pipeline.topics == tuple(stack.parameters["Topics"])
    assert settings.genesys.client_id == REQUIRED["GenesysClientId"]
    assert settings.genesys.requests_per_minute == float(stack.parameters["RequestsPerMinute"])
    assert settings.genesys.client_secret is not None
    duplicate_table = "<DuplicatesTable>" if "EnableDuplicateTable" in parameters else None
    assert settings.intake.duplicate_table == duplicate_table
    if "CrmApiBaseUrl" in parameters:
        assert settings.plugins["rest"]["base_url"] == parameters["CrmApiBaseUrl"]
        assert set(settings.plugins) == {"rest", "salesforce", "hubspot"}
    else:
        assert settings.plugins == {}


@pytest.mark.parametrize("parameters", DEPLOYMENTS.values(), ids=DEPLOYMENTS.keys())
def test_the_secrets_are_read_through_the_extension_layer_when_it_is_given(
    checked: tuple[subprocess.CompletedProcess[str], Any],
    parameters: dict[str, str],
) -> None:
    """Every deployment names secrets (the Genesys client secret is required), so the function
    always has a way to read them: the AWS Parameters and Secrets Lambda Extension, attached as a
    layer when its ARN is given, with its cache off (genesys-enrich keeps the values and reads
    again only after a refusal); otherwise boto3, never the extension without its layer."""
    function = Stack(checked[1], **parameters).properties("Function")
    variables = function["Environment"]["Variables"]
    assert variables["GENESYS_ENRICH_GENESYS__CLIENT_SECRET"].startswith("arn:aws:")
    if "SecretsExtensionLayerArn" in parameters:
        assert function["Layers"] == [parameters["SecretsExtensionLayerArn"]]
        assert variables["GENESYS_ENRICH_SECRETS_READER"] == "extension"
        assert variables["PARAMETERS_SECRETS_EXTENSION_CACHE_ENABLED"] == "false"
    else:
        assert function["Layers"] == []
        assert variables["GENESYS_ENRICH_SECRETS_READER"] == "boto3"
        assert "PARAMETERS_SECRETS_EXTENSION_CACHE_ENABLED" not in variables


def test_the_extension_layer_parameter_takes_only_that_extensions_layers(
    checked: tuple[subprocess.CompletedProcess[str], Any],
) -> None:
    """Either architecture's layer of the AWS extension, in any region, or nothing; not another
    layer, and not one without its version."""
    pattern = checked[1]["Parameters"]["SecretsExtensionLayerArn"]["AllowedPattern"]
    x86_64 = EXTENSION_LAYER_ARN.replace("-Arm64", "")
    eu_west_1 = "arn:aws:lambda:eu-west-1:015030872274:layer:" + EXTENSION_LAYER_ARN.split(":")[-2]
    for accepted in ("", EXTENSION_LAYER_ARN, x86_64, eu_west_1 + ":12"):
        assert re.fullmatch(pattern, accepted), accepted
    refused = (
        EXTENSION_LAYER_ARN.rsplit(":", 1)[0],
        "arn:aws:lambda:us-east-1:123456789012:layer:my-layer:1",
        SECRET_ARN.format("genesys"),
    )
    for arn in refused:
        assert not re.fullmatch(pattern, arn), arn


def test_the_rule_routes_only_the_handled_topics_and_never_attributes(
    checked: tuple[subprocess.CompletedProcess[str], Any],
) -> None:
    """The Topics parameter takes the topics the core handles, and refuses the ...attributes topic
    our own writes raise; the rule sends on only those topics, from the Genesys source only."""
    pattern = checked[1]["Parameters"]["Topics"]["AllowedPattern"]
    for topic in (CUSTOMER_START, ACD_START, USER_START):
        assert re.fullmatch(pattern, topic), topic
    for topic in ("v2.detail.events.conversation.{id}.attributes", "v2.audits.entitytype.{id}"):
        assert not re.fullmatch(pattern, topic), topic
    stack = Stack(checked[1], Topics=f"{CUSTOMER_START},{ACD_START}")
    rule = stack.properties("EventsRule")
    assert rule["EventPattern"] == {
        "source": [REQUIRED["PartnerEventSourceName"]],
        "detail-type": [CUSTOMER_START, ACD_START],
    }
    assert rule["EventBusName"] == "<PartnerEventBus>"
    bus = stack.properties("PartnerEventBus")
    assert bus["EventSourceName"] == REQUIRED["PartnerEventSourceName"]


def test_direct_mode_retries_then_keeps_failed_events_in_a_queue(
    checked: tuple[subprocess.CompletedProcess[str], Any],
) -> None:
    stack = Stack(checked[1], DeliveryMode="direct", MaximumRetryAttempts="1")
    [target] = stack.properties("EventsRule")["Targets"]
    assert target["Arn"] == "<FunctionAliaslive>"
    assert target["DeadLetterConfig"] == {"Arn": "<DeadLetterQueue.Arn>"}
    invoke = stack.properties("FunctionInvokeConfig")
    assert invoke["Qualifier"] == "live"
    assert invoke["MaximumRetryAttempts"] == "1"
    assert invoke["DestinationConfig"] == {
        "OnFailure": {"Destination": "<FailedInvocationsQueue.Arn>"}
    }
    permission = stack.properties("EventBridgeInvokesFunction")
    assert permission["SourceArn"] == "<EventsRule.Arn>"
    assert permission["FunctionName"] == "<FunctionAliaslive>"
    assert "EventsQueue" not in stack.resources
    assert "QueueEventSource" not in stack.resources


def test_buffered_mode_reports_batch_item_failures_and_redrives_to_a_dead_letter_queue(
    checked: tuple[subprocess.CompletedProcess[str], Any],
) -> None:
    stack = Stack(checked[1], DeliveryMode="buffered", ReservedConcurrency="4", BatchSize="20")
    [target] = stack.properties("EventsRule")["Targets"]
    assert target["Arn"] == "<EventsQueue.Arn>"
    source = stack.properties("QueueEventSource")
    assert source["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert source["FunctionName"] == "<FunctionAliaslive>"
    assert source["BatchSize"] == "20"
    assert source["ScalingConfig"] == {"MaximumConcurrency": "4"}
    queue = stack.properties("EventsQueue")
    assert queue["RedrivePolicy"]["deadLetterTargetArn"] == "<DeadLetterQueue.Arn>"
    assert "FunctionInvokeConfig" not in stack.resources
    assert "FailedInvocationsQueue" not in stack.resources


@pytest.mark.parametrize("mode", ["direct", "buffered"])
def test_only_the_rule_may_send_to_the_queues(
    checked: tuple[subprocess.CompletedProcess[str], Any], mode: str
) -> None:
    policy = Stack(checked[1], DeliveryMode=mode).properties("EventBridgeSendsToQueues")
    [statement] = policy["PolicyDocument"]["Statement"]
    assert statement["Principal"] == {"Service": "events.amazonaws.com"}
    assert statement["Condition"] == {"ArnEquals": {"aws:SourceArn": "<EventsRule.Arn>"}}
    queues = {"direct": ["<DeadLetterQueue>"], "buffered": ["<DeadLetterQueue>", "<EventsQueue>"]}
    assert policy["Queues"] == queues[mode]


def test_a_buffered_queue_hides_a_batch_for_six_function_timeouts(
    checked: tuple[subprocess.CompletedProcess[str], Any],
) -> None:
    """AWS' advice for SQS event sources, for every timeout the template allows."""
    timeouts = checked[1]["Parameters"]["Timeout"]["AllowedValues"]
    for timeout in map(str, timeouts):
        stack = Stack(checked[1], DeliveryMode="buffered", Timeout=timeout)
        assert stack.properties("EventsQueue")["VisibilityTimeout"] >= 6 * int(timeout)


@pytest.mark.parametrize("parameters", DEPLOYMENTS.values(), ids=DEPLOYMENTS.keys())
def test_the_role_reaches_only_its_own_logs_secrets_and_queues(
    checked: tuple[subprocess.CompletedProcess[str], Any], parameters: dict[str, str]
) -> None:
    stack = Stack(checked[1], **parameters)
    [policy] = stack.properties("FunctionRole")["Policies"]
    statements = {s["Sid"]: s for s in policy["PolicyDocument"]["Statement"]}
    for statement in statements.values():
        actions, resources = statement["Action"], statement["Resource"]
        for item in [actions] if isinstance(actions, str) else actions:
            assert "*" not in item
        for item in [resources] if isinstance(resources, str) else resources:
            assert "*" not in item
    assert statements["OwnLogs"]["Resource"] == "<LogGroup.Arn>"
    secrets = {value for name, value in parameters.items() if name.endswith("SecretArn")}
    named = set(statements["ReadNamedSecrets"]["Resource"])
    assert named == secrets | {REQUIRED["GenesysClientSecretArn"]}
    queues = {
        sid: statements[sid]["Resource"]
        for sid in ("OnFailureDestination", "ReadTheEventsQueue")
        if sid in statements
    }
    if stack.parameters["DeliveryMode"] == "direct":
        assert queues == {"OnFailureDestination": "<FailedInvocationsQueue.Arn>"}
    else:
        assert queues == {"ReadTheEventsQueue": "<EventsQueue.Arn>"}
    assert ("DecryptThoseSecrets" in statements) == ("SecretsKmsKeyArn" in parameters)
    if "EnableDuplicateTable" in parameters:
        assert statements["ClaimEventIds"]["Resource"] == "<DuplicatesTable.Arn>"
    else:
        assert "ClaimEventIds" not in statements
        assert "DuplicatesTable" not in stack.resources


async def test_the_duplicate_table_is_the_one_the_guard_uses_with_the_actions_it_calls(
    checked: tuple[subprocess.CompletedProcess[str], Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The table the template creates, made in moto's DynamoDB from its properties, takes the
    guard's claims across two environments; and the role grants the DynamoDB actions the guard
    calls, and besides them only GetItem, the read it falls back to when a refused put does not
    return the item that refused it."""
    stack = Stack(checked[1], EnableDuplicateTable="true")
    table = stack.properties("DuplicatesTable")
    [policy] = stack.properties("FunctionRole")["Policies"]
    [granted] = [s for s in policy["PolicyDocument"]["Statement"] if s["Sid"] == "ClaimEventIds"]
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(name, value)
    called: set[str] = set()
    with mock_aws():
        client = boto3.client("dynamodb")
        client.create_table(
            TableName="claims",
            KeySchema=table["KeySchema"],
            AttributeDefinitions=table["AttributeDefinitions"],
            BillingMode=table["BillingMode"],
        )
        ttl = table["TimeToLiveSpecification"]
        client.update_time_to_live(
            TableName="claims",
            TimeToLiveSpecification={"Enabled": True, "AttributeName": ttl["AttributeName"]},
        )
        client.meta.events.register(
            "before-call.dynamodb", lambda model, **_: called.add(f"dynamodb:{model.name}")
        )
        one = DynamoDbEvents("claims", 900.0, client=client)
        other = DynamoDbEvents("claims", 900.0, client=client)
        assert await one.claim("e-1", lease=60) is Claim.NEW
        assert await other.claim("e-1", lease=60) is Claim.BUSY
        await one.finish("e-1")
        assert await other.claim("e-1", lease=60) is Claim.DONE
        assert await one.claim("e-2", lease=60) is Claim.NEW
        await one.release("e-2")
        guard_called = set(called)
        stored = client.scan(TableName="claims")["Items"]
    assert {item["event_id"]["S"] for item in stored} == {"e-1"}
    assert ttl == {"AttributeName": "expires_at", "Enabled": True}
    assert all("N" in item[ttl["AttributeName"]] for item in stored)  # TTL needs a number
    assert guard_called <= set(granted["Action"])
    assert set(granted["Action"]) - guard_called == {"dynamodb:GetItem"}


def test_the_default_sizing_stays_inside_the_genesys_budget(
    checked: tuple[subprocess.CompletedProcess[str], Any],
) -> None:
    """The arithmetic of docs/deploy.md, on the template's defaults: all environments together
    pace under one OAuth client's budget, and a batch's writes, paced, finish in half the
    function's timeout."""
    stack = Stack(checked[1], DeliveryMode="buffered")
    environments = int(stack.parameters["ReservedConcurrency"])
    per_environment = float(stack.parameters["RequestsPerMinute"])
    assert environments * per_environment <= GenesysSettings().requests_per_minute
    batch = int(stack.parameters["BatchSize"])
    paced_writes = batch * 60 / per_environment
    slowest_lookup = PipelineSettings().source_timeout_seconds
    margin = IntakeSettings().deadline_margin_seconds
    assert paced_writes + slowest_lookup + margin <= int(stack.parameters["Timeout"]) / 2


@pytest.mark.parametrize("level", ["DEBUG", "INFO", "WARNING", "ERROR"])
def test_lambda_keeps_the_log_lines_of_the_level_asked_for(
    checked: tuple[subprocess.CompletedProcess[str], Any], level: str
) -> None:
    """LogLevel sets genesys-enrich's loggers and the level Lambda filters JSON lines by (in
    Lambda's names), so a DEBUG line asked for is not dropped on the way to CloudWatch."""
    function = Stack(checked[1], LogLevel=level).properties("Function")
    assert function["Environment"]["Variables"]["GENESYS_ENRICH_LOG_LEVEL"] == level
    lambda_level = function["LoggingConfig"]["ApplicationLogLevel"]
    assert logging.getLevelName(lambda_level.replace("WARN", "WARNING")) == getattr(logging, level)


def test_the_deploy_guide_lists_every_parameter_of_the_template(
    checked: tuple[subprocess.CompletedProcess[str], Any],
) -> None:
    """docs/deploy.md's parameter table names each parameter the template takes, and no other,
    with the template's default."""
    guide = (ROOT / "docs" / "deploy.md").read_text(encoding="utf-8")
    table = guide.split("| parameter | default | meaning |\n", 1)[1].split("\n\n", 1)[0]
    documented: dict[str, str] = {}
    for row in table.splitlines()[1:]:
        names, default, _meaning = row.strip("|").split(" | ", 2)
        for name in re.findall(r"`(\w+)`", names):
            documented[name] = default.strip()
    declared = checked[1]["Parameters"]
    assert set(documented) == set(declared)
    for name, default in documented.items():
        if "Default" not in declared[name]:
            assert default == "(required)", name
        elif declared[name]["Default"] == "":
            assert default == "empty", name
        else:
            assert str(declared[name]["Default"]) in default, name


@pytest.fixture
def packager() -> Iterator[ModuleType]:
    """deploy/package.py, imported (it is a script, not a module of the project)."""
    spec = importlib.util.spec_from_file_location("package", ROOT / "deploy" / "package.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["package"] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    yield module
    sys.modules.pop("package", None)


def test_the_function_runs_what_deploy_package_builds(
    checked: tuple[subprocess.CompletedProcess[str], Any], packager: ModuleType
) -> None:
    """Same Python version, an architecture the packager builds for, and a handler that exists."""
    stack = Stack(checked[1])
    function = stack.properties("Function")
    assert function["Runtime"] == f"python{packager.DEFAULT_PYTHON}"
    assert function["Architectures"][0] in packager.ARCHITECTURES
    assert set(checked[1]["Parameters"]["Architecture"]["AllowedValues"]) == set(
        packager.ARCHITECTURES
    )
    module, name = function["Handler"].rsplit(".", 1)
    assert callable(getattr(importlib.import_module(module), name))
    assert function["LoggingConfig"] == {
        "LogGroup": "<LogGroup>",
        "LogFormat": "JSON",
        "ApplicationLogLevel": "INFO",
    }
    assert function["SnapStart"] == {"ApplyOn": "None"}
    snapstart = Stack(checked[1], EnableSnapStart="true").properties("Function")
    assert snapstart["SnapStart"] == {"ApplyOn": "PublishedVersions"}
    assert stack.properties("FunctionAliaslive")["Name"] == "live"
