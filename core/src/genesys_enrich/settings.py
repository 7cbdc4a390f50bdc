"""Settings: a TOML file, overridden by environment variables.

Precedence, highest first:

1. ``GENESYS_ENRICH_<SECTION>__<KEY>`` variables, e.g. ``GENESYS_ENRICH_GENESYS__CLIENT_ID`` or
   ``GENESYS_ENRICH_PLUGINS__REST__API_KEY`` (sections nest with ``__``; names are
   case-insensitive; a list or table is given as JSON);
2. the seed deployment's variables: ``GENESYS_CLIENT_ID``, ``GENESYS_CLIENT_SECRET``,
   ``GENESYS_ENVIRONMENT``, ``GENESYS_API_URL``, ``GENESYS_LOGIN_URL``, ``CRM_API_BASE_URL``,
   ``CRM_API_KEY``;
3. the settings file: ``--settings FILE``, else ``$GENESYS_ENRICH_SETTINGS``, else ``settings.toml``
   in the working directory when there is one;
4. the defaults below.

The three layers are read into one tree of tables and validated once by :class:`Settings`, a
pydantic model: every bad value is reported at once, naming the key, its table and its variable.
Variables under the prefix without ``__`` (``GENESYS_ENRICH_LOG_LEVEL``...) belong to the hosts.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, get_origin

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator

from .decoding import Undecodable, decode_json
from .errors import ConfigError
from .genesys.regions import resolve_domain
from .topics import CUSTOMER_START

ENV_PREFIX = "GENESYS_ENRICH_"
SETTINGS_FILE_ENV = "GENESYS_ENRICH_SETTINGS"

SEED_ENV_NAMES: dict[str, tuple[str, ...]] = {
    "GENESYS_CLIENT_ID": ("genesys", "client_id"),
    "GENESYS_CLIENT_SECRET": ("genesys", "client_secret"),
    "GENESYS_ENVIRONMENT": ("genesys", "environment"),
    "GENESYS_API_URL": ("genesys", "api_url"),
    "GENESYS_LOGIN_URL": ("genesys", "login_url"),
    "CRM_API_BASE_URL": ("plugins", "rest", "base_url"),
    "CRM_API_KEY": ("plugins", "rest", "api_key"),
}
"""The seed deployment's environment variables and the setting each one sets."""


class _Section(BaseModel):
    # A timeout, limit or window of inf or nan is a typo, not a setting.
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class GenesysSettings(_Section):
    """``[genesys]``: where and as whom to write."""

    environment: str = "mypurecloud.com"
    client_id: str | None = None
    client_secret: SecretStr | None = None
    api_url: str | None = None
    login_url: str | None = None
    timeout_seconds: float = Field(default=20.0, gt=0)
    """A write in all (token, retries and waits included); a host's earlier deadline wins."""
    connect_timeout_seconds: float = Field(default=3.0, gt=0)
    read_timeout_seconds: float = Field(default=5.0, gt=0)
    pool_timeout_seconds: float = Field(default=2.0, gt=0)
    retry_attempts: int = Field(default=4, ge=1, le=20)
    """Attempts in all for a 429, 408, 5xx or dropped connection."""
    retry_wait_initial_seconds: float = Field(default=0.2, ge=0)
    retry_wait_max_seconds: float = Field(default=5.0, ge=0)
    max_retry_after_seconds: float = Field(default=30.0, ge=0)
    """The longest ``Retry-After`` honoured; a longer one is capped."""
    requests_per_minute: float = Field(default=300.0, gt=0)
    """Genesys' limit for the OAuth client; every write and token request counts."""
    max_attributes: int = Field(default=50, ge=1)
    max_attribute_chars: int = Field(default=2000, ge=1)
    token_refresh_margin_seconds: float = Field(default=300.0, ge=0)

    @field_validator("environment")
    @classmethod
    def _known_region(cls, value: str) -> str:
        return resolve_domain(value)

    @field_validator("api_url", "login_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is None or value == "":
            return None
        if not value.startswith(("https://", "http://")):
            msg = f"must be an http(s) URL, got {value!r}"
            raise ValueError(msg)
        return value.rstrip("/")

    @property
    def api_base_url(self) -> str:
        return self.api_url or f"https://api.{self.environment}"

    @property
    def login_base_url(self) -> str:
        return self.login_url or f"https://login.{self.environment}"


class PipelineSettings(_Section):
    """``[pipeline]``: which plugins run, in which order, under which limits."""

    sources: tuple[str, ...] = ("rest",)
    mappers: tuple[str, ...] = ("fields",)
    topics: tuple[str, ...] = (CUSTOMER_START,)
    """Genesys topic patterns (an event's ``detail-type``) to enrich; others are skipped."""
    source_timeout_seconds: float = Field(default=3.5, gt=0)
    concurrency: int = Field(default=32, ge=1)
    source_cache_seconds: float = Field(default=0.0, ge=0)
    """Reuse what a source found for a customer for this long; 0 turns the cache off."""
    source_cache_size: int = Field(default=10_000, ge=1)
    """The most answers the source cache keeps, over all sources."""

    @property
    def enabled_plugins(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys((*self.sources, *self.mappers)))


class IntakeSettings(_Section):
    """``[intake]``: how hosts take events in: duplicate deliveries, stale events and the Lambda
    deadline."""

    duplicate_window_seconds: float = Field(default=900.0, ge=0)
    """An event id seen again within this many seconds of its final outcome is skipped as a
    duplicate; 0 turns the check off."""
    duplicate_capacity: int = Field(default=100_000, ge=1)
    """At most this many event ids are remembered per process; the oldest are forgotten first."""
    duplicate_table: str | None = None
    """A DynamoDB table holding the claims of every Lambda environment (needs the ``dynamodb``
    extra); unset, each process remembers its own."""
    max_event_age_seconds: float = Field(default=300.0, ge=0)
    """Lambda: an event older than this (by its EventBridge ``time`` and its body's own time) is
    skipped as stale rather than written late; 0 turns the check off. ``run`` and ``replay``
    process captured events whatever their age."""
    deadline_margin_seconds: float = Field(default=1.0, ge=0)
    """Lambda: work must end this long before the invocation's time runs out, leaving time to log
    and to answer."""


class Settings(BaseModel):
    """Everything genesys-enrich can be told. Build it with :func:`load_settings`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    genesys: GenesysSettings = GenesysSettings()
    pipeline: PipelineSettings = PipelineSettings()
    intake: IntakeSettings = IntakeSettings()
    plugins: dict[str, dict[str, Any]] = {}
    """``[plugins.<name>]`` sections, validated later by each plugin's own ``Config`` model, whose
    types say which values are secret. Until then every value is plain: the repr names the keys
    each section sets and shows none of their values."""

    def __repr_args__(self) -> Iterable[tuple[str | None, Any]]:
        for name, value in super().__repr_args__():
            if name == "plugins":
                value = {section: _KeysOnly(values) for section, values in value.items()}
            yield name, value


class _KeysOnly:
    """A plugin section as its repr shows it: which keys are set, not to what."""

    def __init__(self, values: Mapping[str, Any]) -> None:
        self.keys = sorted(values)

    def __repr__(self) -> str:
        return "{" + ", ".join(f"{key!r}: ..." for key in self.keys) + "}"


def environment_tables(environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The settings the environment gives, as nested tables: the seed's variables first, then
    ``GENESYS_ENRICH_<SECTION>__<KEY>`` ones over them.

    Raises:
        ConfigError: a list or table setting holds something other than JSON.
    """
    environ = os.environ if environ is None else environ
    tables: dict[str, Any] = {}
    for variable, path in SEED_ENV_NAMES.items():
        if value := environ.get(variable):
            _put(tables, path, value)
    for variable, value in environ.items():
        name = variable.upper()
        if name.startswith(ENV_PREFIX) and "__" in name:
            path = tuple(name.removeprefix(ENV_PREFIX).lower().split("__"))
            _put(tables, path, _parsed(name, path, value))
    return tables


def _put(tables: dict[str, Any], path: tuple[str, ...], value: Any) -> None:
    node = tables
    for key in path[:-1]:
        if not isinstance(node.get(key), dict):
            node[key] = {}
        node = node[key]
    node[path[-1]] = value


def _parsed(variable: str, path: tuple[str, ...], value: str) -> Any:
    """A variable's value as the setting it sets: JSON for a list or table, else the text, which
    the model converts (``"20"`` to 20.0); in a plugin section, JSON when it looks like JSON."""
    structured = _is_structured(path)
    if not structured and not (path[0] == "plugins" and value.lstrip()[:1] in ("[", "{")):
        return value
    try:
        return decode_json(value)
    except Undecodable as error:
        if not structured:
            return value
        msg = (
            f"invalid settings: {variable} cannot be read as JSON ({error}). A list or table "
            "given in an environment variable must be JSON, "
            """e.g. GENESYS_ENRICH_PIPELINE__SOURCES='["rest", "sql"]'."""
        )
        raise ConfigError(msg) from None


def _is_structured(path: tuple[str, ...]) -> bool:
    """Whether the setting at ``path`` in a core section is a list or a table."""
    section = Settings.model_fields.get(path[0])
    model = section.annotation if section is not None else None
    if len(path) != 2 or not (isinstance(model, type) and issubclass(model, BaseModel)):
        return False
    field = model.model_fields.get(path[1])
    return field is not None and get_origin(field.annotation) in (tuple, list, dict)


def settings_file(path: str | Path | None = None) -> Path | None:
    """The file to read: the one given, ``$GENESYS_ENRICH_SETTINGS``, or ./settings.toml if any."""
    if path is not None:
        return Path(path)
    if named := os.environ.get(SETTINGS_FILE_ENV):
        return Path(named)
    default = Path("settings.toml")
    return default if default.is_file() else None


def load_settings(
    path: str | Path | None = None, *, overrides: Mapping[str, Any] | None = None
) -> Settings:
    """Read settings from the file and the environment.

    Args:
        path: the TOML file; see :func:`settings_file` for the default.
        overrides: values that replace the file's, section by section (the environment still wins).

    Raises:
        ConfigError: the file is missing or not TOML, or a value is invalid. The message names every
            bad key and where to set it.
    """
    source = settings_file(path)
    tables = _read_file(source) if source is not None else {}
    for layer in (overrides or {}, environment_tables()):
        tables = _deep_merge(tables, layer)
    try:
        return Settings.model_validate(tables)
    except ValidationError as error:
        raise ConfigError(describe_validation_error(error, source)) from None


def _read_file(source: Path) -> dict[str, Any]:
    """The settings file's tables; :class:`ConfigError` for anything that stops it being read."""
    try:
        return tomllib.loads(source.read_bytes().decode("utf-8"))
    except FileNotFoundError:
        msg = f"settings file {source} does not exist"
    except OSError as error:  # a directory, no permission
        msg = f"settings file {source} cannot be read: {error.strerror or error}"
    except UnicodeDecodeError as error:
        msg = f"settings file {source} is not UTF-8 text (byte {error.start + 1})"
    except tomllib.TOMLDecodeError as error:
        msg = f"settings file {source} is not valid TOML: {error}"
    except RecursionError:
        msg = f"settings file {source} is not valid TOML: arrays or tables nested too deeply"
    raise ConfigError(msg) from None


def _deep_merge(base: Any, extra: Any) -> Any:
    if isinstance(base, dict) and isinstance(extra, Mapping):
        merged = dict(base)
        for key, value in extra.items():
            merged[key] = _deep_merge(base.get(key), value)
        return merged
    return extra


def describe_validation_error(
    error: ValidationError, source: Path | None, *, section: tuple[str, ...] = ()
) -> str:
    """One line per bad setting: its dotted name, the problem, and where to set it."""
    where = f" in {source}" if source else ""
    lines = ["invalid settings:"]
    for problem in error.errors(include_input=False, include_url=False):
        path = tuple(str(part) for part in (*section, *problem["loc"]))
        dotted = ".".join(path)
        env = ENV_PREFIX + "__".join(path).upper()
        seed = next((name for name, target in SEED_ENV_NAMES.items() if target == path), None)
        also = f" or {seed}" if seed else ""
        table, key = ".".join(path[:-1]), path[-1]
        lines.append(
            f"  {dotted}: {problem['msg']}. Set {key} under [{table}]{where}, "
            f"or the environment variable {env}{also}."
        )
    return "\n".join(lines)
