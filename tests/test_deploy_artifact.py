"""The Lambda zip that deploy/package.py builds runs as Lambda runs it.

The zip is built for this machine's architecture and Python, unpacked into an empty folder, and
started under the Lambda runtime interface client (awslambdaric, from a folder of its own) in a
bare interpreter: no site-packages, no workspace, only the unpacked folder and the runtime client
on ``sys.path``. The client talks to a fake of Lambda's Runtime API on loopback, which hands it
invocations and records its answers; the fake Genesys and CRM stand behind the handler.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import queue
import re
import shutil
import subprocess
import sys
import threading
import time
import uuid
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from genesys_enrich.testing import FakeCrm, FakeGenesys, customer_start_event, sqs_record

ROOT = Path(__file__).resolve().parent.parent
HANDLER = "genesys_enrich.hosts.aws_lambda.handler"
LOCAL_ARCH = {"x86_64": "x86_64", "amd64": "x86_64", "aarch64": "arm64", "arm64": "arm64"}
PYTHON = f"{sys.version_info.major}.{sys.version_info.minor}"
FUNCTION_ARN = "arn:aws:lambda:us-east-1:123456789012:function:genesys-enrich:live"
RUNTIME_PREFIX = "/2018-06-01/runtime"
PACKAGER = [sys.executable, str(ROOT / "deploy" / "package.py")]

pytestmark = [
    pytest.mark.skipif(
        sys.platform != "linux" or platform.machine().lower() not in LOCAL_ARCH,
        reason="Lambda's runtime interface client runs on Linux, x86_64 or arm64",
    ),
    pytest.mark.slow,  # builds the package and runs the runtime interface client
]


def fresh_event(external_contact_id: str) -> dict[str, Any]:
    """A customer-start event that happened now: the handler skips stale ones."""
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return customer_start_event(external_contact_id=external_contact_id, time=now)


@dataclass
class Answer:
    """What the runtime posted back for one invocation."""

    kind: str
    """``response`` or ``error``."""
    body: Any
    headers: dict[str, str] = field(default_factory=dict)


class FakeRuntimeApi:
    """Lambda's Runtime API, as much of it as a function uses: ``GET .../invocation/next`` hands
    out the invocations queued by :meth:`invoke`, with Lambda's headers; ``POST
    .../invocation/{id}/response`` and ``.../error`` (and ``.../init/error``) are recorded."""

    def __init__(self) -> None:
        self._pending: queue.Queue[tuple[str, bytes]] = queue.Queue()
        self._answers: dict[str, queue.Queue[Answer]] = {}
        self.init_errors: list[Answer] = []
        self._closing = threading.Event()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _runtime_handler(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    @property
    def address(self) -> str:
        host, port = self._server.server_address[:2]
        return f"{host}:{port}"

    def queue(self, event: Any) -> str:
        """Queue an invocation; return its request id."""
        request_id = str(uuid.uuid4())
        self._answers[request_id] = queue.Queue(maxsize=1)
        self._pending.put((request_id, json.dumps(event).encode()))
        return request_id

    def answer(self, request_id: str, timeout: float) -> Answer | None:
        try:
            return self._answers[request_id].get(timeout=timeout)
        except queue.Empty:
            return None

    def next_invocation(self) -> tuple[str, bytes] | None:
        while not self._closing.is_set():
            try:
                return self._pending.get(timeout=0.2)
            except queue.Empty:
                continue
        return None

    def record(self, request_id: str, answer: Answer) -> bool:
        answers = self._answers.get(request_id)
        if answers is None:
            return False
        answers.put(answer)
        return True

    def close(self) -> None:
        self._closing.set()
        self._server.shutdown()
        self._server.server_close()


def _runtime_handler(api: FakeRuntimeApi) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            if self.path != f"{RUNTIME_PREFIX}/invocation/next":
                self._reply(404, b'{"errorMessage": "no such route"}')
                return
            invocation = api.next_invocation()
            if invocation is None:  # shutting down
                self._reply(503, b"{}")
                return
            request_id, body = invocation
            deadline_ms = int((time.time() + 600) * 1000)  # ten minutes: never the limit here
            self._reply(
                200,
                body,
                {
                    "Lambda-Runtime-Aws-Request-Id": request_id,
                    "Lambda-Runtime-Deadline-Ms": str(deadline_ms),
                    "Lambda-Runtime-Invoked-Function-Arn": FUNCTION_ARN,
                    "Lambda-Runtime-Trace-Id": "Root=1-00000000-000000000000000000000000",
                },
            )

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length)
            answer = Answer("", json.loads(body) if body else None, dict(self.headers.items()))
            parts = self.path.removeprefix(RUNTIME_PREFIX).strip("/").split("/")
            if parts == ["init", "error"]:
                answer.kind = "init-error"
                api.init_errors.append(answer)
                self._reply(202, b'{"status": "OK"}')
            elif len(parts) == 3 and parts[0] == "invocation" and parts[2] in ("response", "error"):
                answer.kind = parts[2]
                known = api.record(parts[1], answer)
                self._reply(202 if known else 400, b'{"status": "OK"}')
            else:
                self._reply(404, b'{"errorMessage": "no such route"}')

        def _reply(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            """Quiet: pytest shows the runtime's own log when a test fails."""

    return Handler


def _uv() -> list[str]:
    uv = os.environ.get("UV") or shutil.which("uv")  # `uv run` sets $UV
    if uv is None:
        pytest.skip("building the package needs uv: run the tests with `uv run`")
    return [uv]


@pytest.fixture(scope="module")
def artifact(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """The zip for this machine, with the plugins the settings below enable, and what the
    packager printed about it."""
    output = tmp_path_factory.mktemp("dist") / "genesys-enrich-lambda.zip"
    arch = LOCAL_ARCH[platform.machine().lower()]
    options = ["--arch", arch, "--python-version", PYTHON, "--plugins", "rest,fields"]
    built = package(*options, "--output", str(output))
    assert built.returncode == 0, built.stderr
    return output, built.stdout


def package(*arguments: str) -> subprocess.CompletedProcess[str]:
    """Run ``deploy/package.py`` with the project's uv, as its documented command does."""
    return subprocess.run(  # noqa: S603 - this repository's packager
        [*PACKAGER, *arguments],
        env={**os.environ, "UV": _uv()[0]},
        capture_output=True,
        text=True,
        check=False,
    )


@pytest.fixture(scope="module")
def task_root(artifact: tuple[Path, str], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The zip unpacked into an empty folder, as Lambda unpacks it into /var/task."""
    folder = tmp_path_factory.mktemp("task")
    with zipfile.ZipFile(artifact[0]) as archive:
        archive.extractall(folder)
    return folder


@pytest.fixture(scope="module")
def runtime_client(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """awslambdaric and its dependencies, at the versions uv.lock pins, in a folder of their own
    (Lambda's managed runtime keeps it outside the function's code, in /var/runtime)."""
    folder = tmp_path_factory.mktemp("runtime")
    requirements = folder.parent / "runtime-requirements.txt"
    uv = _uv()
    export = ["export", "--locked", "--only-group", "lambda-runtime", "--no-emit-workspace"]
    subprocess.run(  # noqa: S603 - uv, with fixed arguments
        [*uv, *export, "--quiet", "--format", "requirements.txt", "-o", str(requirements)],
        cwd=ROOT,
        check=True,
    )
    install = ["pip", "install", "--quiet", "--no-deps", "--require-hashes", "--target"]
    subprocess.run(  # noqa: S603 - uv, with fixed arguments
        [*uv, *install, str(folder), "--python", sys.executable, "-r", str(requirements)],
        cwd=ROOT,
        check=True,
    )
    return folder


def bare_environment(task_root: Path, runtime_client: Path, **variables: str) -> dict[str, str]:
    """The variables Lambda sets for a function, and nothing from this machine or workspace."""
    return {
        "PYTHONPATH": os.pathsep.join([str(task_root), str(runtime_client)]),
        "LAMBDA_TASK_ROOT": str(task_root),
        "_HANDLER": HANDLER,
        "AWS_REGION": "us-east-1",
        "AWS_LAMBDA_FUNCTION_NAME": "genesys-enrich",
        "AWS_LAMBDA_FUNCTION_VERSION": "1",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "512",
        "AWS_LAMBDA_LOG_GROUP_NAME": "/aws/lambda/genesys-enrich",
        "AWS_LAMBDA_LOG_STREAM_NAME": "2026/12/01/[1]0123456789abcdef",
        "LANG": "C.UTF-8",
        "TZ": ":UTC",
        **variables,
    }


BARE_PYTHON = [sys.executable, "-S"]
"""No site module: neither this virtual environment's packages nor any .pth file is seen."""


class LambdaEnvironment:
    """One execution environment: the runtime client running the handler from the package."""

    def __init__(self, process: subprocess.Popen[bytes], api: FakeRuntimeApi, log: Path) -> None:
        self.process = process
        self.api = api
        self.log = log
        self.last_request_id: str | None = None

    def invoke(self, event: Any) -> Answer:
        """Invoke the function as Lambda does and return what the runtime answered."""
        request_id = self.last_request_id = self.api.queue(event)
        for _ in range(600):  # a minute of 0.1 s looks; the answer usually comes in the first
            if (answer := self.api.answer(request_id, timeout=0.1)) is not None:
                return answer
            if self.process.poll() is not None:
                break
        pytest.fail(f"the runtime gave no answer; its log:\n{self.log.read_text()[-4000:]}")


@pytest.fixture(scope="module")
def genesys() -> Iterator[FakeGenesys]:
    with FakeGenesys() as server:
        yield server


@pytest.fixture(scope="module")
def crm() -> Iterator[FakeCrm]:
    with FakeCrm(failing={"CUST-DOWN"}) as server:
        yield server


@contextlib.contextmanager
def started_environment(
    task_root: Path,
    runtime_client: Path,
    genesys: FakeGenesys,
    crm: FakeCrm,
    log: Path,
    **variables: str,
) -> Iterator[LambdaEnvironment]:
    """An execution environment running the package with the settings below and ``variables``
    (Lambda's own, such as its log format), its output in ``log``; stopped on exit."""
    api = FakeRuntimeApi()
    settings = {
        "AWS_LAMBDA_RUNTIME_API": api.address,
        "GENESYS_ENRICH_GENESYS__CLIENT_ID": genesys.client_id,
        "GENESYS_ENRICH_GENESYS__CLIENT_SECRET": genesys.client_secret,
        "GENESYS_ENRICH_GENESYS__API_URL": genesys.url,
        "GENESYS_ENRICH_GENESYS__LOGIN_URL": genesys.url,
        "GENESYS_ENRICH_GENESYS__REQUESTS_PER_MINUTE": "1000000",
        "GENESYS_ENRICH_PIPELINE__SOURCES": '["rest"]',
        "GENESYS_ENRICH_PIPELINE__MAPPERS": '["fields"]',
        "GENESYS_ENRICH_PLUGINS__REST__BASE_URL": crm.url,
        "GENESYS_ENRICH_PLUGINS__REST__API_KEY": "demo-crm-key",
        "GENESYS_ENRICH_PLUGINS__REST__RETRY_ATTEMPTS": "1",  # a CRM answering 503 fails at once
        **variables,
    }
    with log.open("wb") as sink:
        process = subprocess.Popen(  # noqa: S603 - this interpreter, bare
            [*BARE_PYTHON, "-m", "awslambdaric", HANDLER],
            cwd=task_root,
            env=bare_environment(task_root, runtime_client, **settings),
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    try:
        yield LambdaEnvironment(process, api, log)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        api.close()


@pytest.fixture(scope="module")
def lambda_environment(
    task_root: Path,
    runtime_client: Path,
    genesys: FakeGenesys,
    crm: FakeCrm,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[LambdaEnvironment]:
    """An environment with Lambda's default log format, Text."""
    log = tmp_path_factory.mktemp("logs") / "runtime.log"
    with started_environment(task_root, runtime_client, genesys, crm, log) as environment:
        yield environment


def test_the_package_holds_real_files_of_the_chosen_plugins_only(
    artifact: tuple[Path, str], task_root: Path
) -> None:
    """Nothing in the zip points back at this checkout, and only the plugins asked for are in it,
    as the packager reports."""
    path, printed = artifact
    names = zipfile.ZipFile(path).namelist()
    assert not [name for name in names if name.endswith(".pth")]
    assert not [name for name in names if name.endswith("direct_url.json")]
    assert not [name for name in names if name.startswith("bin/")]
    tops = {name.split("/", 1)[0] for name in names}
    assert {"genesys_enrich", "genesys_enrich_crm_rest", "genesys_enrich_mapper_fields"} <= tops
    assert "genesys_enrich_crm_sql" not in tops
    tag = sys.implementation.cache_tag
    assert f"genesys_enrich/hosts/__pycache__/aws_lambda.{tag}.pyc" in names
    assert "rest (genesys-enrich-crm-rest 0.1.0)" in printed
    assert "fields (genesys-enrich-mapper-fields 0.1.0)" in printed
    assert f"{path}: " in printed


def test_a_bare_interpreter_imports_everything_from_the_unpacked_package(
    task_root: Path, runtime_client: Path
) -> None:
    """The handler's modules and its dependencies come from the package folder, and nothing on
    ``sys.path`` leads to the workspace or its virtual environment."""
    probe = (
        "import json, sys, genesys_enrich.hosts.aws_lambda, genesys_enrich_crm_rest, pydantic;"
        "print(json.dumps({'path': sys.path, 'files': [m.__file__ for m in "
        "(genesys_enrich.hosts.aws_lambda, genesys_enrich_crm_rest, pydantic)]}))"
    )
    seen = subprocess.run(  # noqa: S603 - this interpreter, bare
        [*BARE_PYTHON, "-c", probe],
        cwd=task_root,
        env=bare_environment(task_root, runtime_client),
        capture_output=True,
        text=True,
        check=True,
    )
    found = json.loads(seen.stdout)
    assert all(Path(file).is_relative_to(task_root) for file in found["files"]), found["files"]
    assert not [entry for entry in found["path"] if Path(entry).is_relative_to(ROOT)]
    assert not [entry for entry in found["path"] if Path(entry).is_relative_to(sys.prefix)]


def test_the_shipped_bytecode_is_what_python_loads(task_root: Path, runtime_client: Path) -> None:
    """On Lambda the code folder is read-only, so a .pyc that Python rejected (a stale timestamp,
    another version) would mean compiling on every cold start. Python takes the shipped ones."""
    loaded = subprocess.run(  # noqa: S603 - this interpreter, bare
        [*BARE_PYTHON, "-v", "-c", "import genesys_enrich.hosts.aws_lambda"],
        cwd=task_root,
        env=bare_environment(task_root, runtime_client, PYTHONDONTWRITEBYTECODE="1"),
        capture_output=True,
        text=True,
        check=True,
    )
    tag = sys.implementation.cache_tag
    cached = task_root / "genesys_enrich" / "hosts" / "__pycache__" / f"aws_lambda.{tag}.pyc"
    assert f"code object from '{cached}'" in loaded.stderr
    assert "bytecode is stale" not in loaded.stderr


def test_a_direct_eventbridge_event_is_enriched(
    lambda_environment: LambdaEnvironment, genesys: FakeGenesys
) -> None:
    """An EventBridge event invoked directly gets its outcome as the function's response, and
    the attributes reach Genesys."""
    event = fresh_event("uwu")
    answer = lambda_environment.invoke(event)
    assert answer.kind == "response", answer
    assert answer.body["status"] == "enriched", answer.body
    assert answer.body["event_id"] == event["id"]
    body = event["detail"]["eventBody"]
    written = genesys.attributes[(body["conversationId"], body["participantId"])]
    assert written["loyaltyTier"] == "Silver"


def test_an_sqs_batch_names_only_its_retryable_failure(
    lambda_environment: LambdaEnvironment, genesys: FakeGenesys
) -> None:
    """An SQS batch is answered with ``batchItemFailures`` naming the record whose CRM was down;
    the other record is written."""
    good = fresh_event("uwu")
    batch = {
        "Records": [
            sqs_record("m-good", good),
            sqs_record("m-crm-down", fresh_event("CUST-DOWN")),
        ]
    }
    answer = lambda_environment.invoke(batch)
    assert answer.kind == "response", answer
    assert answer.body == {"batchItemFailures": [{"itemIdentifier": "m-crm-down"}]}
    body = good["detail"]["eventBody"]
    assert (body["conversationId"], body["participantId"]) in genesys.attributes


def test_a_retryable_failure_reaches_the_runtime_as_an_error(
    lambda_environment: LambdaEnvironment, genesys: FakeGenesys
) -> None:
    """A direct event whose CRM is down is posted to the Runtime API as an invocation error, so
    Lambda retries it and then hands it to the on-failure destination; nothing is written."""
    event = fresh_event("CUST-DOWN")
    answer = lambda_environment.invoke(event)
    assert answer.kind == "error", answer
    assert answer.body["errorType"] == "RetryableFailure"
    assert "rest" in answer.body["errorMessage"]
    assert lambda_environment.api.init_errors == []
    conversation = event["detail"]["eventBody"]["conversationId"]
    assert not [key for key in genesys.attributes if key[0] == conversation]


def log_lines(environment: LambdaEnvironment) -> list[dict[str, Any]]:
    """The JSON objects the environment wrote, one a line (the runtime's own lines are not)."""
    text = environment.log.read_text()
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


def assert_outcome_then_metrics(environment: LambdaEnvironment, event: dict[str, Any]) -> None:
    """The event's outcome line, with the invocation's request id, then the invocation's EMF."""
    lines = log_lines(environment)
    [outcome] = [line for line in lines if line.get("event_id") == event["id"]]
    assert outcome["logger"] == "genesys_enrich.outcome"
    assert outcome["level"] == "INFO"
    assert outcome["requestId"] == environment.last_request_id
    assert (outcome["status"], outcome["sources"]["rest"]["status"]) == ("enriched", "found")
    after = lines[lines.index(outcome) + 1 :]
    service = next(line for line in after if "_aws" in line and "Source" not in line)
    assert service["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "GenesysEnrich"
    assert (service["Events"], service["EventsEnriched"]) == (1, 1)


def test_the_outcome_line_and_the_metrics_reach_the_runtimes_log(
    lambda_environment: LambdaEnvironment,
) -> None:
    """Under the real runtime client (log format Text), the outcome record goes through the
    runtime's own log handler as one JSON line with the invocation's request id, and the
    invocation's EMF documents follow on stdout."""
    event = fresh_event("uwu")
    assert lambda_environment.invoke(event).kind == "response"
    assert_outcome_then_metrics(lambda_environment, event)


def test_under_lambdas_json_log_format_the_same_keys_reach_the_log(
    task_root: Path,
    runtime_client: Path,
    genesys: FakeGenesys,
    crm: FakeCrm,
    tmp_path: Path,
) -> None:
    """With the function's log format JSON (deploy/template.yaml's), the runtime's own JSON
    formatter writes the outcome line, with the keys docs/operations.md lists, and the EMF
    documents still reach the log as lines of their own."""
    json_format = {"AWS_LAMBDA_LOG_FORMAT": "JSON", "AWS_LAMBDA_LOG_LEVEL": "INFO"}
    log = tmp_path / "runtime.log"
    with started_environment(
        task_root, runtime_client, genesys, crm, log, **json_format
    ) as environment:
        event = fresh_event("uwu")
        assert environment.invoke(event).kind == "response"
    assert_outcome_then_metrics(environment, event)
    [outcome] = [line for line in log_lines(environment) if line.get("event_id") == event["id"]]
    assert outcome["message"] == "enriched: " + outcome["reason"]
    assert {"cold_start", "interaction_id", "duration_ms", "write_ms", "retries"} <= set(outcome)
    assert "failure" not in outcome  # Lambda leaves out the keys that are null


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        (
            ["--plugins", "rest,nosuch"],
            r"no plugin 'nosuch' in this workspace; there are: ([a-z]+, )*rest, ",
        ),
        (
            ["--plugins", "rest[postgres]"],
            r"plugin 'rest' \(genesys-enrich-crm-rest\) has no extra postgres",
        ),
        (
            ["--extras", "dynamo"],
            r"genesys-enrich has no extra dynamo; it has: ([a-z]+, )*dynamodb",
        ),
    ],
)
def test_a_plugin_or_extra_that_is_not_there_is_refused_before_anything_is_built(
    options: list[str], expected: str, tmp_path: Path
) -> None:
    """A typo in --plugins or --extras names what there is, and writes no zip."""
    output = tmp_path / "package.zip"
    refused = package("--arch", "arm64", *options, "--output", str(output))
    assert refused.returncode == 2
    assert re.search(expected, refused.stderr), refused.stderr
    assert not output.exists()


def test_the_dynamodb_extra_ships_boto3_for_the_duplicate_table(tmp_path: Path) -> None:
    """``--extras dynamodb`` adds the locked boto3 (what ``[intake] duplicate_table`` imports) and
    its dependencies as real files, and says so; without it the package has none of them."""
    output = tmp_path / "package.zip"
    options = ["--arch", "arm64", "--no-compile", "--plugins", "rest", "--extras", "dynamodb"]
    built = package(*options, "--output", str(output))
    assert built.returncode == 0, built.stderr
    assert "core: genesys-enrich[dynamodb] " in built.stdout
    tops = {name.split("/", 1)[0] for name in zipfile.ZipFile(output).namelist()}
    assert {"boto3", "botocore", "genesys_enrich"} <= tops


def test_without_the_extra_the_package_has_no_boto3(artifact: tuple[Path, str]) -> None:
    tops = {name.split("/", 1)[0] for name in zipfile.ZipFile(artifact[0]).namelist()}
    assert not {"boto3", "botocore"} & tops
    assert "core: genesys-enrich " in artifact[1]
