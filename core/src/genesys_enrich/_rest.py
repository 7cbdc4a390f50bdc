"""A CRM source for HTTP APIs, declared rather than programmed.

A subclass states what differs from the defaults, in class attributes: the request per customer
key, how to authenticate, where the records are in the answer, which fields to keep, what to do
with several matches. The base sends through the process's shared HTTP client, encodes every value,
tries the configured keys in order until one finds exactly one record, honours ``Retry-After`` and
rate-limit reset headers within the lookup's time budget, stops calling a CRM that said to wait,
renews credentials once after a 401 (a new token, or a secret rotated in AWS read again), and sorts
every answer into found, no match, retryable, permanent or misconfigured. Each step is a method
to override when a declaration cannot say it.
"""

from __future__ import annotations

import asyncio
import dataclasses
import math
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, ClassVar, Literal, TypeVar
from urllib.parse import quote, quote_plus

import httpx
from pydantic import Field, SecretStr, field_validator

from ._auth import Authenticator, AuthSpec, BindContext, named_fields
from ._sources import CrmSource, PluginConfig, PluginContext
from .errors import ConfigError, NoMatch, SourceError
from .models import CUSTOMER_KEYS, Interaction, JSONValue
from .retry import RETRYABLE_STATUSES, RetryPolicy, requested_wait


class RestSourceConfig(PluginConfig):
    """Settings every HTTP source has; subclass it to add credentials and options."""

    base_url: str
    """The API root, e.g. ``https://crm.example.com/api``; request paths are appended to it."""
    timeout_seconds: float = Field(default=3.0, gt=0)
    """The whole lookup, every key, retry and rate-limit wait included, must finish within this."""
    retry_attempts: int = Field(default=2, ge=1, le=10)
    """Attempts in all for a retryable failure (429, 5xx, a dropped connection)."""
    lookup_keys: tuple[str, ...] = ("customer_id",)
    """Customer keys to look up by, tried in order until one finds exactly one record."""

    @field_validator("lookup_keys")
    @classmethod
    def _known_keys(cls, keys: tuple[str, ...]) -> tuple[str, ...]:
        unknown = [key for key in keys if key not in CUSTOMER_KEYS]
        if unknown:
            msg = f"unknown customer keys {unknown}; use any of {list(CUSTOMER_KEYS)}"
            raise ValueError(msg)
        return keys

    @field_validator("base_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not value.startswith(("https://", "http://")):
            msg = f"must be an http(s) URL, got {value!r}"
            raise ValueError(msg)
        return value.rstrip("/")


@dataclass(frozen=True)
class Lookup:
    """One request to the CRM: method, path under ``base_url``, optional query, JSON body, headers.

    Declared on a source as a template: ``{value}`` stands for the customer key's value (in the
    path, encoded as exactly one segment; in the query and body, as is, since httpx and JSON encode
    them), ``{key}`` for the key's name (in query parameter names and JSON object keys too:
    ``{"{key}": "{value}"}``), and ``{<setting>}`` for a setting of the source
    (``/services/data/v{api_version}/query``, ``{search_fields[email]}``; never a secret). A list
    setting within a string is written comma-separated (``{"$select": "{fields}"}``); a JSON
    value that is one setting's placeholder alone (``"properties": "{properties}"``) takes the
    setting's value as it is, a list say. Write a literal brace as ``{{`` or ``}}``.

    Args:
        method: ``"GET"``, ``"POST"``...
        path: appended to ``base_url``.
        params: the query parameters.
        json: the JSON body.
        headers: request headers beyond ``Accept`` and the auth's.
    """

    method: str
    path: str
    params: Mapping[str, str] | None = None
    json: Any = None
    headers: Mapping[str, str] = field(default_factory=dict)

    def render(self, key: str, value: str, config: PluginConfig) -> Lookup:
        """This template with its placeholders filled."""
        settings = template_settings(config)

        inline = {
            name: ",".join(map(str, item)) if isinstance(item, list) else item
            for name, item in settings.items()
        }

        def fill(template: str, encoded: str) -> str:
            return template.format_map({**inline, "key": key, "value": encoded})

        def fill_json(node: Any) -> Any:
            if isinstance(node, str):
                whole = node[1:-1] if node.startswith("{") and node.endswith("}") else None
                return settings[whole] if whole in settings else fill(node, value)
            if isinstance(node, list):
                return [fill_json(item) for item in node]
            if isinstance(node, dict):
                return {fill(name, value): fill_json(item) for name, item in node.items()}
            return node

        params = self.params
        return Lookup(
            self.method,
            fill(self.path, path_segment(value)),
            params=None
            if params is None
            else {fill(name, value): fill(item, value) for name, item in params.items()},
            json=fill_json(self.json),
            headers={name: fill(item, value) for name, item in self.headers.items()},
        )


def template_settings(config: PluginConfig) -> dict[str, Any]:
    """The settings a request template may name: every one that is set, except secrets."""
    return {
        name: list(item) if isinstance(item, tuple) else item
        for name in type(config).model_fields
        if (item := getattr(config, name)) is not None and not isinstance(item, SecretStr)
    }


def Get(path: str, params: Mapping[str, str] | None = None) -> Lookup:
    """A ``GET`` template: ``Get("/customers/{value}")``, ``Get("/find", {"email": "{value}"})``."""
    return Lookup("GET", path, params=params)


def Post(path: str, json: Any) -> Lookup:
    """A ``POST`` lookup template with a JSON search body."""
    return Lookup("POST", path, json=json)


class RestSource(CrmSource):
    """Base class for HTTP CRM sources: declare, and override only what a declaration cannot say.

    Declarations (class attributes), with their defaults:

    - :attr:`request`: the :class:`Lookup` template, or one per customer key.
    - :attr:`auth`: ``Bearer``, ``ApiKey``, ``Basic``, ``OAuth2ClientCredentials``, or your own.
    - :attr:`key_formats`: how a key's value is written for this API (``{"phone": digits_only}``).
    - :attr:`records_at`: where the records are in the answer (``"results"``, ``"data.items"``).
    - :attr:`fields`: which fields to keep, under which names (dotted paths into the record).
    - :attr:`exclude`, :attr:`several`, :attr:`newest_by`: which records count, and which one
      wins when several do.
    - :attr:`no_match_statuses`, :attr:`next_key_statuses`, :attr:`misconfigured_statuses`: what
      a status means; ``204`` and an empty list are always "no match".
    - :attr:`error_code_at`, :attr:`error_message_at`, :attr:`request_id_header`: what a failure
      reason quotes from the CRM's answer.

    Escape hatches, in the order a lookup calls them: :meth:`format_value`, :meth:`build_request`,
    the authenticator (``auth``), :meth:`classify`, :meth:`keep`, :meth:`select`.

    A 401 is answered once per lookup: the authenticator renews what it can (an OAuth token) and
    the request is sent again; when it cannot (a key), the source's secrets kept in AWS Secrets
    Manager or SSM (settings holding an ARN) are read again, and if one was rotated, ``auth`` is
    bound to the new values and the request sent again. Concurrent lookups refused alike read
    them once. A 401 that stands after that fails the lookup as :attr:`misconfigured_statuses`
    say, naming the settings to check.
    """

    Config: ClassVar[type[PluginConfig]] = RestSourceConfig
    """:class:`RestSourceConfig`, or a subclass of it adding credentials and options."""
    config: RestSourceConfig

    request: ClassVar[Lookup | Mapping[str, Lookup] | None] = None
    """The request that looks a customer up: one template for every key, or one per customer key
    (``{"email": Get("/users", {"email": "{value}"}), "customer_id": Get("/users/{value}")}``)."""
    auth: ClassVar[AuthSpec | None] = None
    """How requests authenticate; ``None`` sends none."""
    key_formats: ClassVar[Mapping[str, Callable[[str], str | None]]] = {}
    """Customer key to a function that writes its value as this API wants it; returning
    ``None`` skips the key. Events carry phones in E.164 (``+15551234567``)."""
    records_at: ClassVar[str | Mapping[str, str] | None] = None
    """A dotted path to the records in the answer (``"results"``, ``"data.items"``), or one per
    customer key (``{"email": "members"}``); ``None`` (or a key left out) when the answer is the
    record itself, or a list of them."""
    fields: ClassVar[Mapping[str, str] | Sequence[str] | None] = None
    """Fields to keep: a list of dotted paths (kept under those names), or output name to dotted
    path (``{"tier": "loyalty.tier"}``); ``None`` keeps the whole record. Missing or null values
    are left out, whole record or not; nested objects are kept whole."""
    exclude: ClassVar[Mapping[str, Collection[Any]]] = {}
    """Records to ignore: dotted path to the values that exclude a record
    (``{"status": {"closed", "merged"}}``)."""
    several: ClassVar[Literal["first", "newest", "none"]] = "none"
    """When several records remain: keep the ``first``, the ``newest`` by :attr:`newest_by`, or
    ``none`` (no match, with the count as reason: never merge two people's data)."""
    newest_by: ClassVar[str | None] = None
    """The dotted path of the timestamp (ISO 8601, or a number) ``several = "newest"`` sorts by."""
    no_match_statuses: ClassVar[Collection[int]] = frozenset({404})
    """Statuses that mean "this CRM does not know the customer". A search API that answers an
    empty list instead should set ``frozenset()`` and put 404 in :attr:`misconfigured_statuses`."""
    next_key_statuses: ClassVar[Collection[int]] = frozenset({422})
    """Statuses that mean "this key's value is unusable here": the next key is tried."""
    misconfigured_statuses: ClassVar[Collection[int]] = frozenset({401, 403})
    """Statuses that mean the deployment is wrong (credentials, permissions, URL): the event is
    kept for replay and the reason says which settings to check."""
    error_code_at: ClassVar[str | None] = None
    """Dotted path to the CRM's error code in a failure's body, quoted in the reason."""
    error_message_at: ClassVar[str | None] = None
    """Dotted path to the CRM's error message in a failure's body, quoted in the reason (with
    the customer's value blanked out)."""
    request_id_header: ClassVar[str | None] = None
    """The header carrying the CRM's request id, quoted in a failure's reason for its support."""
    retry_policy: ClassVar[RetryPolicy] = RetryPolicy(
        max_retry_after=math.inf, wait_initial=0.05, wait_max=1.0, wait_jitter=0.1
    )
    """CRM lookups wait little: an agent is about to pick up. A wait the CRM asks for is honoured
    whole when it ends within ``timeout_seconds``; one that would not is not made (never cut
    short, which would only ask again too early): the lookup fails, retryable, at once."""

    def __init__(self, config: PluginConfig, context: PluginContext) -> None:
        super().__init__(config, context)
        self._clock = context.clock
        self._paused_until = float("-inf")
        self.authenticator: Authenticator | None = None
        self._bind_context = BindContext(
            context.http, context.clock, self.config.timeout_seconds, self.name
        )
        self._rebinding = asyncio.Lock()
        if self.auth is not None:
            self.authenticator = self.auth.bind(self.config, self._bind_context)
        self._check_requests()

    def _check_requests(self) -> None:
        """Fill each key's template once at start-up, so a setting it needs and lacks is a
        configuration error now, not a failed lookup later."""
        if self.request is None and type(self).build_request is RestSource.build_request:
            msg = (
                f"{type(self).__qualname__} declares no request: set request = Get(...) or "
                "Post(...), or override build_request"
            )
            raise TypeError(msg)
        for key in self.config.lookup_keys:
            template = _for_key(self.request, key)
            if template is None and isinstance(self.request, Mapping):
                msg = (
                    f"[plugins.{self.name}] lookup_keys names {key!r}, which {self.name} cannot "
                    f"look up by; use any of {list(self.request)}"
                )
                raise ConfigError(msg)
            try:
                template and template.render(key, "x", self.config)
            except (KeyError, IndexError, AttributeError, ValueError) as missing:
                raise ConfigError(self._unfillable(key, missing)) from None

    def _unfillable(self, key: str, error: Exception) -> str:
        """Why the request template for ``key`` cannot be filled from the settings."""
        where = f"[plugins.{self.name}] cannot look up by {key!r}: its request"
        if not isinstance(error, KeyError):
            return f"{where} template is malformed ({type(error).__name__}: {error})"
        name = str(error.args[0])
        if name not in type(self.config).model_fields:
            return f"{where} names {{{name}}}, which is not a setting of {self.name}"
        if isinstance(getattr(self.config, name), SecretStr):
            return (
                f"{where} names {{{name}}}, a secret, which a request template never holds: "
                "send it with auth = ..."
            )
        return f"{where} needs the setting {name}, which is not set"

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.several not in ("first", "newest", "none"):
            msg = f"{cls.__qualname__}.several must be 'first', 'newest' or 'none'"
            raise TypeError(msg)
        if cls.several == "newest" and not cls.newest_by:
            msg = f"{cls.__qualname__}.several = 'newest' needs newest_by, the timestamp's path"
            raise TypeError(msg)

    async def lookup(self, interaction: Interaction) -> Mapping[str, JSONValue] | None:
        budget_ends = self._clock() + self.config.timeout_seconds
        keys = interaction.customer_keys
        reasons: list[str] = []
        for key in self.config.lookup_keys:
            if key not in keys:
                continue
            value = self.format_value(key, keys[key])
            request = None if value is None else self.build_request(key, value)
            if value is None or request is None:
                continue
            try:
                records = await self._fetch(request, key, budget_ends, hide=(keys[key], value))
                return self.select(self._choose(records))
            except NoMatch as no_match:
                if str(no_match):
                    reasons.append(f"by {key}: {no_match}")
        if reasons:
            raise NoMatch("; ".join(reasons))
        return None

    def format_value(self, key: str, value: str) -> str | None:
        """The value as this API wants it (see :attr:`key_formats`); ``None`` skips the key."""
        format_ = self.key_formats.get(key)
        return value if format_ is None else format_(value)

    def build_request(self, key: str, value: str) -> Lookup | None:
        """The request for customer key ``key`` whose formatted value is ``value``, from
        :attr:`request`; ``None`` skips this key. Override it to build what a template cannot
        (and encode values put in a path with :func:`path_segment`)."""
        template = _for_key(self.request, key)
        if template is None:
            return None
        return template.render(key, value, self.config)

    def classify(self, response: httpx.Response, key: str) -> list[dict[str, Any]]:
        """The records in the answer to a lookup by ``key``, or the exception that says what the
        answer means.

        Raises :class:`NoMatch` for ``204``, :attr:`no_match_statuses` and
        :attr:`next_key_statuses`; :class:`SourceError` with ``misconfigured=True`` for
        :attr:`misconfigured_statuses`, retryable (with the wait the CRM asked for) for 408, 429
        and 5xx, permanent for anything else. Override it for APIs that report errors or
        throttling inside a ``200`` (GraphQL): raise ``SourceError(..., retry_after=seconds)`` and
        the lookup waits and tries again within its budget.
        """
        status = response.status_code
        if status == httpx.codes.NO_CONTENT or status in self.no_match_statuses:
            raise NoMatch
        if status in self.next_key_statuses:
            msg = f"the CRM could not use the value ({self.describe(response)})"
            raise NoMatch(msg)
        if status in self.misconfigured_statuses:
            msg = f"{self.describe(response)}; {self._what_to_check(status)}"
            raise SourceError(msg, retryable=False, misconfigured=True)
        if status in RETRYABLE_STATUSES:
            wait = requested_wait(response.headers)
            raise SourceError(self.describe(response), retryable=True, retry_after=wait)
        if not response.is_success:
            raise SourceError(self.describe(response), retryable=False)
        return self._records(response, key)

    def keep(self, record: dict[str, Any]) -> bool:
        """Whether a record counts (see :attr:`exclude`)."""
        return not any(at(record, path) in values for path, values in self.exclude.items())

    def select(self, record: dict[str, Any]) -> Mapping[str, JSONValue]:
        """The fields to contribute from the chosen record (see :attr:`fields`)."""
        if self.fields is None:
            found = record
        else:
            paths = self.fields if isinstance(self.fields, Mapping) else {p: p for p in self.fields}
            found = {name: at(record, path) for name, path in paths.items()}
        # A null is the CRM having no value: left out, it cannot hide another source's value.
        return {name: value for name, value in found.items() if value is not None}

    def describe(self, response: httpx.Response) -> str:
        """A failure's reason: the status, the CRM's error code and message, its request id."""
        parts = [f"answered HTTP {response.status_code}"]
        if self.error_code_at or self.error_message_at:
            body = _json(response)
            for path in (self.error_code_at, self.error_message_at):
                detail = at(body, path) if path else None
                if isinstance(detail, str | int) and str(detail).strip():
                    parts.append(_last_line(str(detail))[:200])
        if self.request_id_header and (request_id := response.headers.get(self.request_id_header)):
            parts.append(f"request id {request_id[:100]}")
        return ": ".join(parts[:2]) + "".join(f"; {part}" for part in parts[2:])

    async def _fetch(
        self, request: Lookup, key: str, budget_ends: float, *, hide: tuple[str, str]
    ) -> list[dict[str, Any]]:
        left = self._paused_until - self._clock()
        if left > 0:
            msg = f"the CRM asked us to wait another {left:.3g} s (rate limited)"
            raise SourceError(msg, retryable=True)
        attempts, hook = self.retry_policy.retrying(
            attempts=self.config.retry_attempts, deadline=budget_ends, clock=self._clock
        )
        try:
            async for attempt in attempts:
                with attempt:
                    response = await self._send(request, budget_ends)
                    try:
                        return self.classify(response, key)
                    except SourceError as error:
                        if error.retry_after is not None:
                            self._pause(error.retry_after)
                        secret = (*hide, *self._credentials(response.request))
                        raise _without(error, secret) from None
                    except NoMatch as no_match:
                        secret = (*hide, *self._credentials(response.request))
                        raise NoMatch(_blanked(str(no_match), secret)) from None
        except Exception as error:
            if hook.out_of_time is None:  # only a retry cut short has more to say
                raise
            cause = str(error) if isinstance(error, SourceError) else type(error).__name__
            msg = f"{cause}; {hook.out_of_time}"
            raise SourceError(msg, retryable=True) from None
        raise AssertionError("unreachable: stamina returns or raises")  # noqa: EM101

    async def _send(self, request: Lookup, budget_ends: float) -> httpx.Response:
        """Send once; after a 401, renew the credentials (the authenticator's, or secrets rotated
        in AWS) and send once more."""
        authenticator = self.authenticator
        response = await self._send_once(request, budget_ends, authenticator)
        if response.status_code != httpx.codes.UNAUTHORIZED or authenticator is None:
            return response
        if await authenticator.refused(response.request) or await self._rotated(authenticator):
            await response.aclose()
            response = await self._send_once(request, budget_ends, self.authenticator)
        return response

    async def _rotated(self, refused: Authenticator) -> bool:
        """Whether the secrets ``refused`` signed with have been rotated: the settings' secrets
        kept in AWS are read again and, if one changed, :attr:`auth` is bound to the new values.
        Lookups refused at the same time wait for the first one's read: they find the values it
        bound, or, when nothing changed, a store that read moments ago and does not read again."""
        from .aws_secrets import refresh_all  # after a refusal only: most processes never need it

        async with self._rebinding:
            if self.authenticator is not refused:
                return True  # another lookup has read them meanwhile and bound the new values
            if self.auth is None or not await refresh_all(self.config):
                return False
            self.authenticator = self.auth.bind(self.config, self._bind_context)
            return True

    async def _send_once(
        self, request: Lookup, budget_ends: float, authenticator: Authenticator | None
    ) -> httpx.Response:
        http = self.context.http
        prepared = http.build_request(
            request.method,
            self.config.base_url + request.path,
            params=request.params,
            json=request.json,
            headers={"Accept": "application/json", **request.headers},
            timeout=max(0.001, budget_ends - self._clock()),
        )
        if authenticator is not None:
            await authenticator.authenticate(prepared)
        return await http.send(prepared)

    def _credentials(self, request: httpx.Request) -> list[str]:
        """What a CRM quoting the request back could show of our credentials: every secret
        setting, and what the authenticator put in the request's headers."""
        found = [
            value.get_secret_value()
            for name in type(self.config).model_fields
            if isinstance(value := getattr(self.config, name), SecretStr)
        ]
        for name, value in request.headers.items():
            if name.lower() in _PLAIN_HEADERS:
                continue
            found += [value, *value.split(" ", 1)[1:]]  # "Bearer <token>": the token alone too
        return [value for value in found if len(value) >= _SHORTEST_CREDENTIAL]

    def _pause(self, seconds: float) -> None:
        self._paused_until = max(self._paused_until, self._clock() + seconds)

    def _records(self, response: httpx.Response, key: str) -> list[dict[str, Any]]:
        body = _json(response)
        where = _for_key(self.records_at, key)
        found = body if where is None else at(body, where)
        if isinstance(found, dict):
            return [found]
        if isinstance(found, list):
            return [record for record in found if isinstance(record, dict)]
        expected = "a JSON object or list" if where is None else repr(where)
        msg = (
            f"answered HTTP {response.status_code} without {expected}; check "
            f"[plugins.{self.name}] base_url"
        )
        raise SourceError(msg, retryable=False)

    def _choose(self, records: list[dict[str, Any]]) -> dict[str, Any]:
        kept = [record for record in records if self.keep(record)]
        if not kept:
            raise NoMatch(f"{len(records)} excluded" if records else "")
        if len(kept) == 1 or self.several == "first":
            return kept[0]
        if self.several == "none":
            msg = f"{len(kept)} records match"
            raise NoMatch(msg)
        return max(kept, key=lambda record: _sortable(at(record, self.newest_by or "")))

    def _what_to_check(self, status: int) -> str:
        if status in (httpx.codes.UNAUTHORIZED, httpx.codes.FORBIDDEN) and self.auth is not None:
            templates = [getattr(self.auth, name, None) for name in _attributes(self.auth)]
            names = sorted(
                {
                    name
                    for template in templates
                    if isinstance(template, str)
                    for name in named_fields(template)
                }
            )
            settings = f" {', '.join(names)}" if names else "'s credentials"
            return f"check [plugins.{self.name}]{settings} and its permissions"
        if status == httpx.codes.NOT_FOUND:
            return f"check [plugins.{self.name}] base_url"
        return f"check [plugins.{self.name}]"


_PLAIN_HEADERS = frozenset(
    {
        "accept",
        "accept-encoding",
        "connection",
        "content-length",
        "content-type",
        "host",
        "user-agent",
    }
)
"""Request headers that never carry a credential."""

_SHORTEST_CREDENTIAL = 8
"""Shorter header values are not blanked out of messages: no key or token is that short, and
blanking ``json`` would garble the message for nothing."""


def path_segment(value: str) -> str:
    """Encode a value as exactly one URL path segment: ``../admin?x=1`` stays inside the path."""
    if value in (".", ".."):
        return value.replace(".", "%2E")
    return quote(value, safe="")


def digits_only(value: str) -> str | None:
    """A phone number as digits only (``+1 555-0100`` → ``15550100``); ``None`` if it has none."""
    digits = "".join(char for char in value if char.isascii() and char.isdigit())
    return digits or None


def at(data: Any, path: str) -> Any:
    """The value at a dotted path (``"data.items.0.id"``), or ``None`` where there is none."""
    for part in path.split("."):
        if isinstance(data, dict):
            data = data.get(part)
        elif isinstance(data, list) and part.isdigit() and int(part) < len(data):
            data = data[int(part)]
        else:
            return None
    return data


_T = TypeVar("_T")


def _for_key(declaration: _T | Mapping[str, _T] | None, key: str) -> _T | None:
    """A declaration made once for every key, or the one made for ``key``."""
    if isinstance(declaration, Mapping):
        return declaration.get(key)
    return declaration


def _json(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


def _last_line(message: str) -> str:
    """The last non-empty line: the lines before it often quote the request, and the customer."""
    lines = [line.strip() for line in message.splitlines() if line.strip()]
    return lines[-1] if lines else ""


def _attributes(spec: object) -> list[str]:
    """The attribute names of an auth declaration: a dataclass's fields, slotted or not."""
    if dataclasses.is_dataclass(spec):
        return [item.name for item in dataclasses.fields(spec)]
    return list(getattr(spec, "__dict__", {}))


def _sortable(value: Any) -> tuple[int, Any]:
    """A sort key for ``newest_by``: numbers and ISO 8601 timestamps (any offset; none means
    UTC) compare as instants, anything else after them as text, a missing value first."""
    if isinstance(value, bool) or value is None:
        return (0, 0)
    if isinstance(value, int | float):
        return (1, value)
    try:
        instant = datetime.fromisoformat(str(value))
    except ValueError:
        return (2, str(value))
    if instant.tzinfo is None:
        instant = instant.replace(tzinfo=UTC)
    return (1, instant.timestamp())


def _blanked(message: str, values: tuple[str, ...]) -> str:
    """``message`` with the customer's values blanked out, as given and as a URL carries them."""
    shown = {
        form
        for value in values
        for form in (value, path_segment(value), quote_plus(value))
        if len(form) >= 3
    }
    for form in sorted(shown, key=len, reverse=True):
        message = message.replace(form, "…")
    return message


def _without(error: SourceError, values: tuple[str, ...]) -> SourceError:
    """The error with the customer's values and our credentials blanked out of its message."""
    message = _blanked(str(error), values)
    if message == str(error):
        return error
    return SourceError(
        message,
        retryable=error.retryable,
        misconfigured=error.misconfigured,
        retry_after=error.retry_after,
    )
