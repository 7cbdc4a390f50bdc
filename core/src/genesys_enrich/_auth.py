"""How a REST source authenticates: declared once on the class, bound to each source instance.

A declaration names its credentials as ``{field}`` templates over the source's settings, so one
class serves every deployment: ``Bearer("{api_key}")``, ``ApiKey("X-Api-Key", "{api_key}")``,
``Basic("{email}/token", "{api_token}")``, ``OAuth2ClientCredentials(token_url=...)``. The core
binds it to each instance (:meth:`AuthSpec.bind`), so state such as an OAuth token lives as long as
the source. For anything else (a request signature over method, path, body and a timestamp),
implement :class:`Authenticator` and return it from ``bind``.
"""

from __future__ import annotations

import asyncio
import string
from base64 import b64encode
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal, Protocol

import httpx
from pydantic import BaseModel, SecretStr

from .errors import SourceError
from .retry import RETRYABLE_STATUSES, requested_wait


class Authenticator(Protocol):
    """Authenticates the requests of one source instance."""

    async def authenticate(self, request: httpx.Request) -> None:
        """Add credentials to ``request`` (headers, query, a signature): it is the whole request
        about to be sent, method, URL and body included."""

    async def refused(self, request: httpx.Request) -> bool:
        """Called once after the CRM answered ``request`` with 401. Renew what was refused and
        return ``True`` to send the request once more; ``False`` when there is nothing to renew:
        the source then reads its secrets kept in AWS again and, if one was rotated, binds its
        ``auth`` to the new values and sends once more, or else fails the lookup as
        misconfigured."""


class AuthSpec(Protocol):
    """A declaration of how to authenticate, placed on the class as ``auth = ...``."""

    def bind(self, config: BaseModel, context: BindContext) -> Authenticator:
        """The authenticator of one source instance, its templates filled from ``config``."""


@dataclass(frozen=True, slots=True)
class BindContext:
    """What an authenticator may use besides settings: the shared client, the clock, the budget."""

    http: httpx.AsyncClient
    clock: Callable[[], float]
    timeout: float
    """Seconds a request of the authenticator's own (a token request) may take when the request it
    signs carries no timeout: the source's ``timeout_seconds``."""
    source: str
    """The source's name, for messages: ``[plugins.<source>]``."""


def fill(template: str, config: BaseModel, source: str) -> str | None:
    """``template`` with each ``{field}`` replaced by the setting's value (a secret's too);
    ``None`` when a field it names is unset."""
    values: dict[str, str] = {}
    for _, name, _, _ in string.Formatter().parse(template):
        if not name:
            continue
        if name not in type(config).model_fields:
            msg = f"the auth declaration names {{{name}}}, but [plugins.{source}] has no {name!r}"
            raise TypeError(msg)
        value = getattr(config, name)
        if value is None:
            return None
        values[name] = value.get_secret_value() if isinstance(value, SecretStr) else str(value)
    return template.format_map(values)


def named_fields(template: str) -> list[str]:
    """The settings a template names: what a message tells the operator to check."""
    return [name for _, name, _, _ in string.Formatter().parse(template) if name]


class _Static:
    """Headers computed once from settings; nothing to renew after a 401 (a rotated secret is
    the source's to read again, and then it binds the declaration anew)."""

    def __init__(self, headers: Mapping[str, str]) -> None:
        self._headers = dict(headers)

    async def authenticate(self, request: httpx.Request) -> None:
        request.headers.update(self._headers)

    async def refused(self, request: httpx.Request) -> bool:
        return False


@dataclass(frozen=True)
class Bearer:
    """``Authorization: Bearer <token>``, e.g. ``Bearer("{access_token}")``; no header when the
    setting is unset.

    Args:
        token: a template naming the setting that holds the token (a ``SecretStr``).
    """

    token: str

    def bind(self, config: BaseModel, context: BindContext) -> Authenticator:
        """Headers filled from ``config`` once, for every request of the instance."""
        token = fill(self.token, config, context.source)
        return _Static({} if token is None else {"Authorization": f"Bearer {token}"})


@dataclass(frozen=True)
class ApiKey:
    """An API key in a named header, e.g. ``ApiKey("X-Api-Key", "{api_key}")``; no header when
    the setting is unset.

    Args:
        header: the header's name.
        value: a template naming the setting that holds the key (a ``SecretStr``).
    """

    header: str
    value: str

    def bind(self, config: BaseModel, context: BindContext) -> Authenticator:
        """Headers filled from ``config`` once, for every request of the instance."""
        value = fill(self.value, config, context.source)
        return _Static({} if value is None else {self.header: value})


@dataclass(frozen=True)
class Basic:
    """HTTP Basic auth: ``Basic("{email}/token", "{api_token}")``, ``Basic("{api_key}", "X")``.

    Args:
        username: a template over the settings, or a literal.
        password: a template naming the setting that holds the password or key (a
            ``SecretStr``), or a literal when the key is the user name.
    """

    username: str
    password: str

    def bind(self, config: BaseModel, context: BindContext) -> Authenticator:
        """Headers filled from ``config`` once, for every request of the instance."""
        username = fill(self.username, config, context.source)
        password = fill(self.password, config, context.source)
        if username is None or password is None:
            return _Static({})
        pair = b64encode(f"{username}:{password}".encode()).decode()
        return _Static({"Authorization": f"Basic {pair}"})


@dataclass(frozen=True)
class OAuth2ClientCredentials:
    """OAuth 2.0 client credentials: one token per source instance, shared by concurrent
    lookups, renewed ``renew_before`` seconds before ``expires_in`` runs out and once after a 401.

    When the token endpoint refuses the client (401, or 400 ``invalid_client``) and its
    credentials are kept in AWS Secrets Manager or SSM (settings holding an ARN), they are read
    again; if one was rotated, the token is asked for once more with the new values.

    A token request is made once per attempt of the lookup that needs it, within what is left of
    the lookup's ``timeout_seconds``: a failure worth retrying (429, 5xx, a dropped connection) is
    retried by the lookup, as its other requests are, so an outage of the token endpoint costs
    ``retry_attempts`` requests per lookup, never that many times a retry budget of its own.

    Args:
        token_url: absolute, or a path under ``base_url``; ``{field}`` templates allowed
            (``"https://login.microsoftonline.com/{tenant_id}/oauth2/v2.0/token"``).
        client_id, client_secret: templates over the settings.
        scope: sent when set, e.g. ``"{base_url}/.default"``.
        credentials: ``"basic"`` sends them as HTTP Basic auth (RFC 6749's preference),
            ``"body"`` as ``client_id`` and ``client_secret`` form fields.
        renew_before: seconds before ``expires_in`` runs out that a token is replaced (half
            its life, for a token that lives less than twice that).
    """

    token_url: str
    client_id: str = "{client_id}"
    client_secret: str = "{client_secret}"  # noqa: S105 - a template naming the setting
    scope: str | None = None
    credentials: Literal["basic", "body"] = "basic"
    renew_before: float = 60.0

    def bind(self, config: BaseModel, context: BindContext) -> Authenticator:
        """The token holder of one source instance, shared by its concurrent lookups."""
        return _OAuth2Tokens(self, config, context)


class _OAuth2Tokens:
    def __init__(
        self, spec: OAuth2ClientCredentials, config: BaseModel, context: BindContext
    ) -> None:
        self._spec = spec
        self._config = config
        self._context = context
        self._token: str | None = None
        self._expires_at = 0.0
        self._lock = asyncio.Lock()
        self.token_requests = 0
        """Tokens fetched so far: one per process, plus one per renewal."""

    async def authenticate(self, request: httpx.Request) -> None:
        timeout = request.extensions.get("timeout")
        time_left = httpx.Timeout(**timeout) if isinstance(timeout, dict) else self._context.timeout
        request.headers["Authorization"] = f"Bearer {await self._current(time_left)}"

    async def refused(self, request: httpx.Request) -> bool:
        async with self._lock:
            # Drop the token only if it is the one refused: a lookup that started before another
            # renewed it must not throw the fresh one away.
            if request.headers.get("Authorization") == f"Bearer {self._token}":
                self._token = None
        return True

    async def _current(self, time_left: httpx.Timeout | float) -> str:
        async with self._lock:
            if self._token is None or self._context.clock() >= self._expires_at:
                self._token, lifetime = await self._fetch(time_left)
                renew_in = max(lifetime - self._spec.renew_before, lifetime / 2)
                self._expires_at = self._context.clock() + renew_in
            return self._token

    async def _fetch(self, time_left: httpx.Timeout | float) -> tuple[str, float]:
        """One token request, taking at most ``time_left`` (what the signed request may take), and
        one more if the client was refused and a credential kept in AWS has since been rotated. A
        failure worth retrying is raised for the lookup to retry: it has the attempts and the
        time budget."""
        sent = self._secrets()
        response = await self._request(time_left)
        if _refuses_client(response) and await self._rotated(sent):
            response = await self._request(time_left)
        return self._token_from(response)

    async def _request(self, time_left: httpx.Timeout | float) -> httpx.Response:
        spec, config, context = self._spec, self._config, self._context
        url = _absolute(_required(spec.token_url, config, context.source), config)
        form = {"grant_type": "client_credentials"}
        if spec.scope is not None and (scope := fill(spec.scope, config, context.source)):
            form["scope"] = scope
        client_id = _required(spec.client_id, config, context.source)
        client_secret = _required(spec.client_secret, config, context.source)
        auth: httpx.BasicAuth | None = None
        if spec.credentials == "basic":
            auth = httpx.BasicAuth(client_id, client_secret)
        else:
            form |= {"client_id": client_id, "client_secret": client_secret}
        self.token_requests += 1
        return await context.http.post(
            url,
            data=form,
            auth=auth or httpx.USE_CLIENT_DEFAULT,
            headers={"Accept": "application/json"},
            timeout=time_left,
        )

    def _secrets(self) -> dict[str, str]:
        """The secret settings the client credentials are filled from, with their values now."""
        names = {*named_fields(self._spec.client_id), *named_fields(self._spec.client_secret)}
        return {
            name: value.get_secret_value()
            for name in sorted(names)
            if isinstance(value := getattr(self._config, name, None), SecretStr)
        }

    async def _rotated(self, sent: Mapping[str, str]) -> bool:
        """Whether a credential refused with the values ``sent`` has changed in AWS since: each
        one kept there is read again (at most every 30 s, however many refusals)."""
        from .aws_secrets import refresh  # after a refusal only: most processes never need it

        reads = (
            refresh(getattr(self._config, name), rejected=value) for name, value in sent.items()
        )
        return any(await asyncio.gather(*reads))

    def _token_from(self, response: httpx.Response) -> tuple[str, float]:
        source = self._context.source
        if response.status_code in RETRYABLE_STATUSES:
            msg = f"the token endpoint answered HTTP {response.status_code}"
            raise SourceError(msg, retryable=True, retry_after=requested_wait(response.headers))
        if response.status_code == httpx.codes.NOT_FOUND:
            url = self._spec.token_url
            names = named_fields(url) or (
                [] if url.startswith(("https:", "http:")) else ["base_url"]
            )
            check = f"[plugins.{source}] {' and '.join(names)}" if names else "the token URL"
            msg = f"the token endpoint answered HTTP 404: it is not there; check {check}"
            raise SourceError(msg, retryable=False, misconfigured=True)
        body = _json_object(response)
        token = body.get("access_token") if response.is_success else None
        if not isinstance(token, str) or not token:
            names = [
                *named_fields(self._spec.client_id),
                *named_fields(self._spec.client_secret),
            ]
            msg = (
                f"the token endpoint refused the client (HTTP {response.status_code}"
                f"{_oauth_error(body)}); check [plugins.{source}] {' and '.join(names)}, and "
                "that the app may use the client credentials flow"
            )
            raise SourceError(msg, retryable=False, misconfigured=True)
        expires_in = body.get("expires_in")
        lifetime = float(expires_in) if isinstance(expires_in, int | float | str) else 3600.0
        return token, lifetime if lifetime == lifetime and lifetime > 0 else 3600.0


def _required(template: str, config: BaseModel, source: str) -> str:
    value = fill(template, config, source)
    if value is None:
        names = ", ".join(named_fields(template))
        msg = f"[plugins.{source}] {names} must be set to sign in"
        raise SourceError(msg, retryable=False, misconfigured=True)
    return value


def _absolute(url: str, config: BaseModel) -> str:
    if url.startswith(("https://", "http://")):
        return url
    base = getattr(config, "base_url", "")
    return f"{str(base).rstrip('/')}{url}"


def _json_object(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _refuses_client(response: httpx.Response) -> bool:
    """Whether the token endpoint refused the client's credentials (RFC 6749 ``invalid_client``,
    which servers send as 401 or 400), rather than the request or the grant."""
    status = response.status_code
    return status == httpx.codes.UNAUTHORIZED or (
        status == httpx.codes.BAD_REQUEST
        and _json_object(response).get("error") == "invalid_client"
    )


def _oauth_error(body: Mapping[str, Any]) -> str:
    """The OAuth error code (``invalid_client``...), when the body has a plausible one."""
    error = body.get("error")
    if isinstance(error, str) and error.isascii() and error.replace("_", "").isalnum():
        return f", {error[:64]}"
    return ""
