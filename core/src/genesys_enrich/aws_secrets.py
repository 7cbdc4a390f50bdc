"""Secrets kept in AWS Secrets Manager or SSM Parameter Store, named in settings by their ARN.

Any secret setting may hold, instead of the secret, the ARN of where it is kept (the syntax of
ECS's ``valueFrom``)::

    arn:aws:secretsmanager:<region>:<account>:secret:<name>                 the secret string
    arn:aws:secretsmanager:<region>:<account>:secret:<name>:<json-key>::    one key of a JSON secret
    arn:aws:secretsmanager:...:secret:<name>:<json-key>:<stage>:<version>   a given version
    arn:aws:ssm:<region>:<account>:parameter/<name>                         a SecureString parameter

That is ``[genesys] client_secret`` (``GENESYS_CLIENT_SECRET``) and every setting an enabled plugin
declares as a ``SecretStr`` (CRM API keys, client secrets, passwords), in settings.toml or in the
environment alike: the plugin never knows. :func:`resolve_references` reads them all, concurrently,
when the process starts (in Lambda, once per cold start); each setting then holds a
:class:`StoredSecret`. When the service that uses one refuses it (a rotated secret), the user calls
:func:`refresh`, which reads it again and, if it changed, replaces its value in place: every holder
sees the new one.

How they are read: in AWS Lambda, from the AWS Parameters and Secrets Lambda Extension (a layer
serving HTTP on localhost, authenticated with the function's session token), over the process's
HTTP client, so no AWS SDK is imported on a cold start; elsewhere, with boto3
(``genesys-enrich[aws]``). ``GENESYS_ENRICH_SECRETS_READER=extension`` or ``boto3`` chooses.
"""

from __future__ import annotations

import asyncio
import importlib
import json
import logging
import math
import os
import re
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, Protocol

import httpx
from pydantic import BaseModel, SecretStr

from .errors import ConfigError

if TYPE_CHECKING:
    from .settings import Settings

logger = logging.getLogger(__name__)

EXTENSION_PORT = 2773
"""The extension's default port (``PARAMETERS_SECRETS_EXTENSION_HTTP_PORT`` changes it)."""
REFRESH_AFTER = 30.0
"""Seconds after a refresh read during which another refresh does not read again: a secret refused
on every event is read at most twice a minute."""

_ARN = re.compile(
    r"^arn:(?P<partition>aws[a-z-]*):(?P<service>secretsmanager|ssm):(?P<region>[a-z0-9-]+):"
    r"(?P<account>\d{12}):(?P<resource>.+)$"
)
_LOOKS_LIKE_ONE = re.compile(r"^arn:[^:]*:(secretsmanager|ssm):")


class SecretReadError(ConfigError):
    """A referenced secret could not be read. The message names the reference, never a value."""


@dataclass(frozen=True)
class SecretReference:
    """Where a secret is kept, as parsed from the setting's value."""

    text: str
    """The value as written in settings."""
    service: Literal["secretsmanager", "ssm"]
    arn: str
    """The secret's or parameter's ARN alone (without a JSON key or version)."""
    region: str
    json_key: str | None = None
    version_stage: str | None = None
    version_id: str | None = None

    @classmethod
    def parse(cls, text: str) -> SecretReference | None:
        """The reference ``text`` makes, or ``None`` when it is a plain value.

        Raises:
            ValueError: ``text`` starts like a reference but is not a valid one (it must not be
                taken for the secret itself).
        """
        if not _LOOKS_LIKE_ONE.match(text):
            return None
        match = _ARN.match(text)
        problem = (
            f"{text!r} looks like a Secrets Manager or SSM ARN but is not one: expected "
            "arn:aws:secretsmanager:<region>:<account>:secret:<name>[:<json-key>[:<stage>"
            "[:<version>]]] or arn:aws:ssm:<region>:<account>:parameter/<name>"
        )
        if match is None:
            raise ValueError(problem)
        resource, region = match["resource"], match["region"]
        if match["service"] == "ssm":
            if not resource.startswith("parameter/") or resource == "parameter/":
                raise ValueError(problem)
            return cls(text, "ssm", text, region)
        parts = resource.split(":")
        if parts[0] != "secret" or not 2 <= len(parts) <= 5 or not parts[1]:
            raise ValueError(problem)
        arn = text[: len(text) - len(resource)] + f"secret:{parts[1]}"
        key, stage, version = (*parts[2:], None, None, None)[:3]
        return cls(text, "secretsmanager", arn, region, key or None, stage or None, version or None)

    def pick(self, value: str) -> str:
        """The secret from the stored string: all of it, or its JSON key."""
        if self.json_key is None:
            return value
        try:
            document = json.loads(value)
        except ValueError:
            document = None
        if not isinstance(document, dict):
            msg = f"{self.arn} does not hold a JSON object, so it has no key {self.json_key!r}"
            raise SecretReadError(msg)
        if not isinstance(document.get(self.json_key), str):
            keys = ", ".join(sorted(map(str, document))) or "none"
            msg = f"{self.arn} has no string under the key {self.json_key!r} (its keys: {keys})"
            raise SecretReadError(msg)
        return str(document[self.json_key])


class SecretReader(Protocol):
    """Reads the current value of a referenced secret."""

    async def read(self, reference: SecretReference) -> str:
        """The secret's value.

        Raises:
            SecretReadError: it could not be read; the message says why and what to check.
        """
        ...


class ExtensionReader:
    """Reads through the AWS Parameters and Secrets Lambda Extension: ``GET
    http://localhost:<port>/secretsmanager/get`` and ``/systemsmanager/parameters/get`` with the
    ``X-Aws-Parameters-Secrets-Token`` header. The extension keeps its own cache (five minutes
    by default); set its ``SECRETS_MANAGER_TTL`` / ``SSM_PARAMETER_STORE_TTL`` lower for a rotation
    to show sooner, or turn it off with ``PARAMETERS_SECRETS_EXTENSION_CACHE_ENABLED=false``:
    genesys-enrich reads each secret only once per cold start and after a refusal anyway."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        *,
        token: str | None,
        port: int = EXTENSION_PORT,
        timeout: float = 5.0,
    ) -> None:
        self._http = http
        self._token = token
        self._base = f"http://localhost:{port}"
        self._timeout = timeout

    @classmethod
    def from_environment(cls, http: httpx.AsyncClient) -> ExtensionReader:
        port = os.environ.get("PARAMETERS_SECRETS_EXTENSION_HTTP_PORT") or EXTENSION_PORT
        return cls(http, token=os.environ.get("AWS_SESSION_TOKEN"), port=int(port))

    async def read(self, reference: SecretReference) -> str:
        if not self._token:
            msg = "AWS_SESSION_TOKEN is not set, and the extension requires it"
            raise SecretReadError(msg)
        if reference.service == "secretsmanager":
            path = "/secretsmanager/get"
            params = {"secretId": reference.arn}
            if reference.version_stage:
                params["versionStage"] = reference.version_stage
            if reference.version_id:
                params["versionId"] = reference.version_id
        else:
            path = "/systemsmanager/parameters/get"
            params = {"name": reference.arn, "withDecryption": "true"}
        try:
            response = await self._http.get(
                self._base + path,
                params=params,
                headers={"X-Aws-Parameters-Secrets-Token": self._token},
                timeout=self._timeout,
            )
        except httpx.TransportError as error:
            msg = (
                f"the AWS Parameters and Secrets Lambda Extension at {self._base} did not answer "
                f"({type(error).__name__}): add its layer to the function (see "
                "docs/operations.md), or set GENESYS_ENRICH_SECRETS_READER=boto3"
            )
            raise SecretReadError(msg) from None
        if response.status_code != httpx.codes.OK:
            msg = (
                f"the AWS Parameters and Secrets Lambda Extension answered "
                f"{response.status_code}: {response.text.strip()[:300]} (check the ARN and that "
                "the function's role may read it, and decrypt it with its KMS key)"
            )
            raise SecretReadError(msg)
        try:
            answer = response.json()
        except ValueError:
            msg = "the AWS Parameters and Secrets Lambda Extension answered 200 without JSON"
            raise SecretReadError(msg) from None
        return reference.pick(_value_of(reference, answer))


class Boto3Reader:
    """Reads with boto3 (``GetSecretValue``, ``GetParameter``), in a worker thread. For use outside
    Lambda: importing boto3 adds a large share to a cold start."""

    def __init__(self) -> None:
        try:  # imported only here: only when secrets are referenced, outside Lambda
            boto3 = importlib.import_module("boto3")
        except ImportError:
            msg = (
                "reading secrets from AWS outside AWS Lambda needs boto3: install "
                "genesys-enrich[aws] (or add boto3) in this environment"
            )
            raise SecretReadError(msg) from None
        self._boto3 = boto3
        self._clients: dict[tuple[str, str], Any] = {}
        self._lock = threading.Lock()

    async def read(self, reference: SecretReference) -> str:
        return await asyncio.to_thread(self._read, reference)

    def _read(self, reference: SecretReference) -> str:
        client = self._client(reference.service, reference.region)
        try:
            if reference.service == "secretsmanager":
                options = {"SecretId": reference.arn}
                if reference.version_stage:
                    options["VersionStage"] = reference.version_stage
                if reference.version_id:
                    options["VersionId"] = reference.version_id
                answer = client.get_secret_value(**options)
            else:
                answer = client.get_parameter(Name=reference.arn, WithDecryption=True)
        except Exception as error:  # botocore's errors say what AWS refused, never the value
            msg = f"AWS refused to give it: {type(error).__name__}: {error}"
            raise SecretReadError(msg) from None
        return reference.pick(_value_of(reference, answer))

    def _client(self, service: str, region: str) -> Any:
        with self._lock:  # creating clients from the default session is not thread-safe
            key = (service, region)
            if key not in self._clients:
                self._clients[key] = self._boto3.client(service, region_name=region)
            return self._clients[key]


def _value_of(reference: SecretReference, answer: Any) -> str:
    """The string in a ``GetSecretValue`` or ``GetParameter`` answer."""
    if reference.service == "secretsmanager":
        value = answer.get("SecretString") if isinstance(answer, Mapping) else None
        if not isinstance(value, str):
            msg = f"{reference.arn} holds no secret string (binary secrets are not supported)"
            raise SecretReadError(msg)
        return value
    parameter = answer.get("Parameter") if isinstance(answer, Mapping) else None
    value = parameter.get("Value") if isinstance(parameter, Mapping) else None
    if not isinstance(value, str):
        msg = f"the answer for {reference.arn} holds no parameter value"
        raise SecretReadError(msg)
    return value


def default_reader(http: httpx.AsyncClient) -> SecretReader:
    """The extension in AWS Lambda, boto3 elsewhere, unless ``GENESYS_ENRICH_SECRETS_READER``
    says ``extension`` or ``boto3``."""
    chosen = os.environ.get("GENESYS_ENRICH_SECRETS_READER", "").lower()
    if chosen not in ("", "extension", "boto3"):
        msg = f"GENESYS_ENRICH_SECRETS_READER must be extension or boto3, got {chosen!r}"
        raise ConfigError(msg)
    in_lambda = "AWS_LAMBDA_FUNCTION_NAME" in os.environ
    if chosen == "extension" or (not chosen and in_lambda):
        return ExtensionReader.from_environment(http)
    return Boto3Reader()


class StoredSecret(SecretStr):
    """A secret setting read from AWS. A ``SecretStr`` like any other (masked in reprs and
    dumps) that also knows where it came from, so :func:`refresh` can read it again."""

    def __init__(self, value: str, reference: SecretReference, store: SecretStore) -> None:
        super().__init__(value)
        self.reference = reference
        self._store = store

    async def refresh(self, *, rejected: str | None = None) -> bool:
        """See :func:`refresh`."""
        return await self._store.refresh(self, rejected=rejected)

    def _replace(self, value: str) -> None:
        SecretStr.__init__(self, value)


class SecretStore:
    """The secrets one process read, each read once, and again when refused (a rotation).

    Args:
        reader: how to read them.
        refresh_after: seconds after a refresh read during which :meth:`refresh` does not read
            again.
        clock: ``time.monotonic``; tests pass another.
    """

    def __init__(
        self,
        reader: SecretReader,
        *,
        refresh_after: float = REFRESH_AFTER,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._reader = reader
        self._refresh_after = refresh_after
        self._clock = clock
        self._fresh_until: dict[str, float] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self.reads = 0
        """How many times a secret was read: once each per start, plus refreshes that read."""

    async def read(self, reference: SecretReference) -> StoredSecret:
        """Read ``reference`` and wrap its value."""
        self.reads += 1
        return StoredSecret(await self._reader.read(reference), reference, self)

    async def refresh(self, secret: StoredSecret, *, rejected: str | None = None) -> bool:
        """Read ``secret`` again after a service refused ``rejected`` (the value that was sent;
        by default the one in force). Returns whether the value in force now differs from it, so
        trying again may pass. A secret a refresh read in the last :data:`REFRESH_AFTER` seconds
        is not read again; a read that fails is logged and returns ``False``."""
        rejected = secret.get_secret_value() if rejected is None else rejected
        reference = secret.reference
        async with self._locks.setdefault(reference.text, asyncio.Lock()):
            if secret.get_secret_value() != rejected:
                return True  # another caller has replaced it meanwhile
            if self._clock() < self._fresh_until.get(reference.text, -math.inf):
                return False  # read again moments ago: that is what AWS holds
            self.reads += 1
            self._fresh_until[reference.text] = self._clock() + self._refresh_after
            try:
                value = await self._reader.read(reference)
            except SecretReadError as error:
                logger.warning("could not read %s again: %s", reference.text, error)
                return False
            if value == rejected:
                return False
            secret._replace(value)
            logger.info(
                "the secret at %s has changed since it was read: using the new value",
                reference.text,
            )
            return True


async def refresh(secret: SecretStr | None, *, rejected: str | None = None) -> bool:
    """After a service refused ``secret`` (a 401), read it again from AWS if that is where it came
    from. Returns ``True`` when the value in force is now another one: send the request again
    (the same ``SecretStr`` object now gives the new value). Returns ``False`` for a secret
    written in settings, or when AWS holds the same value (the secret is wrong, not rotated).

    Args:
        rejected: the value that was refused, when the caller knows it; under concurrency
            another caller may have replaced it already, and then this returns ``True`` at once.
    """
    if isinstance(secret, StoredSecret):
        return await secret.refresh(rejected=rejected)
    return False


async def refresh_all(config: BaseModel) -> bool:
    """:func:`refresh` every secret of a plugin's settings (a 401 does not say which one was
    refused). Returns whether any of them changed."""
    secrets = [value for value in _values(config) if isinstance(value, StoredSecret)]
    changed = await asyncio.gather(*(secret.refresh() for secret in secrets))
    return any(changed)


def _values(model: BaseModel) -> list[Any]:
    values: list[Any] = []
    for name in type(model).model_fields:
        value = getattr(model, name)
        values.extend(_values(value) if isinstance(value, BaseModel) else [value])
    return values


async def resolve_references(
    settings: Settings,
    http: httpx.AsyncClient,
    *,
    genesys: bool = True,
    reader: SecretReader | None = None,
) -> Settings:
    """``settings`` with every secret reference replaced by a :class:`StoredSecret`: ``[genesys]
    client_secret`` (unless ``genesys`` is false: a dry run writes nothing) and the sections of
    the enabled plugins. Settings without references are returned as they are, and nothing is
    read or imported.

    Raises:
        ConfigError: a reference is malformed or could not be read; the message names the setting.
    """
    found: dict[tuple[str, ...], SecretReference] = {}
    client_secret = settings.genesys.client_secret
    if genesys and client_secret is not None:
        _collect(("genesys", "client_secret"), client_secret.get_secret_value(), found)
    for name in settings.pipeline.enabled_plugins:
        _collect(("plugins", name), settings.plugins.get(name, {}), found)
    if not found:
        return settings
    store = SecretStore(reader or default_reader(http))
    unique = {reference.text: reference for reference in found.values()}
    setting_of = {reference.text: path for path, reference in found.items()}

    async def read(reference: SecretReference) -> StoredSecret:
        try:
            return await store.read(reference)
        except SecretReadError as error:
            where = _describe(setting_of[reference.text])
            msg = f"cannot read {where} from {reference.text}: {error}"
            raise ConfigError(msg) from None

    stored = dict(zip(unique, await asyncio.gather(*map(read, unique.values())), strict=True))
    update: dict[str, Any] = {}
    if ("genesys", "client_secret") in found:
        secret = stored[found["genesys", "client_secret"].text]
        update["genesys"] = settings.genesys.model_copy(update={"client_secret": secret})
    plugins = {
        name: _replaced(section, stored) if name in settings.pipeline.enabled_plugins else section
        for name, section in settings.plugins.items()
    }
    return settings.model_copy(update={**update, "plugins": plugins})


def _collect(
    path: tuple[str, ...], value: Any, found: dict[tuple[str, ...], SecretReference]
) -> None:
    if isinstance(value, Mapping):
        for key, item in value.items():
            _collect((*path, str(key)), item, found)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _collect((*path, str(index)), item, found)
    elif isinstance(value, str):
        try:
            reference = SecretReference.parse(value.strip())
        except ValueError as error:
            msg = f"{_describe(path)}: {error}"
            raise ConfigError(msg) from None
        if reference is not None:
            found[path] = reference


def _replaced(value: Any, stored: Mapping[str, StoredSecret]) -> Any:
    if isinstance(value, Mapping):
        return {key: _replaced(item, stored) for key, item in value.items()}
    if isinstance(value, list):
        return [_replaced(item, stored) for item in value]
    if isinstance(value, str) and value.strip() in stored:
        return stored[value.strip()]
    return value


def _describe(path: tuple[str, ...]) -> str:
    """``[plugins.rest] api_key`` for ``("plugins", "rest", "api_key")``."""
    table, key = path[:-1], path[-1]
    return f"[{'.'.join(table)}] {key}"
