"""A CRM source for customers kept in a SQL database: SQLite built in, PostgreSQL with the
``postgres`` extra, any other SQLAlchemy dialect whose driver is installed.

Settings hold one query per customer key, each taking the key's value as a named bind parameter
(``SELECT ... WHERE phone = :phone``): values are always bound by the driver, never put into SQL
text. The first row's columns become the fields. Settings live under ``[plugins.sql]``.
"""

from __future__ import annotations

import datetime as dt
import decimal
import uuid
from collections.abc import Mapping
from typing import Any
from urllib.request import pathname2url

import sqlalchemy as sa
from pydantic import Field, SecretStr, field_validator
from sqlalchemy import exc as sa_exc

from genesys_enrich.plugin import (
    CUSTOMER_KEYS,
    BlockingCrmSource,
    ConfigError,
    Interaction,
    JSONValue,
    PluginConfig,
    PluginContext,
    Register,
    SourceError,
    hookimpl,
)

DEFAULT_QUERIES = {
    "customer_id": "SELECT * FROM customers WHERE customer_id = :customer_id",
    "external_contact_id": (
        "SELECT * FROM customers WHERE external_contact_id = :external_contact_id"
    ),
    "phone": "SELECT * FROM customers WHERE phone = :phone",
    "email": "SELECT * FROM customers WHERE email = :email",
}
"""A ``customers`` table with a column per customer key; real databases name their own queries."""


class SqlConfig(PluginConfig):
    url: str = "sqlite:///customers.db"
    """A SQLAlchemy database URL: ``sqlite:///path/to/file.db`` or
    ``postgresql+psycopg://user@host:5432/dbname``. Keep the password out of it: set
    ``password``."""
    password: SecretStr | None = None
    """The database password, added to ``url``. Set it in the environment
    (``GENESYS_ENRICH_PLUGINS__SQL__PASSWORD``), never in the file."""
    queries: dict[str, str] = Field(default_factory=lambda: dict(DEFAULT_QUERIES))
    """Customer key to the query that finds the customer by it, with ``:<key>`` bound to the
    key's value. Tried in this order for the keys the event carries, until one finds a row."""
    pool_size: int = Field(default=5, ge=1, le=100)
    """Connections kept open and reused across events; at most this many at once."""
    pool_timeout_seconds: float = Field(default=2.0, gt=0)
    """How long a lookup waits for a free connection before failing (retryably)."""

    @field_validator("url")
    @classmethod
    def _database_url(cls, value: str) -> str:
        try:
            sa.make_url(value)
        except sa_exc.ArgumentError:
            msg = "is not a database URL; expected e.g. sqlite:///customers.db"
            raise ValueError(msg) from None
        return value

    @field_validator("queries")
    @classmethod
    def _bound_queries(cls, queries: dict[str, str]) -> dict[str, str]:
        if not queries:
            msg = f"needs at least one query, keyed by a customer key ({', '.join(CUSTOMER_KEYS)})"
            raise ValueError(msg)
        for key, query in queries.items():
            if key not in CUSTOMER_KEYS:
                msg = f"{key!r} is not a customer key; use one of {', '.join(CUSTOMER_KEYS)}"
                raise ValueError(msg)
            names = set(sa.text(query).compile().params)
            if names != {key}:
                found = ", ".join(f":{name}" for name in sorted(names)) or "none"
                msg = (
                    f"the {key} query must take the value as the bind parameter :{key} and no "
                    f"other (found {found}), as in ... WHERE {key} = :{key}"
                )
                raise ValueError(msg)
        return queries


class SqlCustomerSource(BlockingCrmSource):
    """Looks the customer up with the configured queries over a pool of connections.

    ``lookup`` is a plain function: the core runs it in a worker thread, so the blocking driver
    holds up no other source. A row's NULL columns are left out, so they hide no other source's
    value.
    """

    name = "sql"
    Config = SqlConfig
    config: SqlConfig

    def __init__(self, config: PluginConfig, context: PluginContext) -> None:
        super().__init__(config, context)
        url = sa.make_url(self.config.url)
        if self.config.password is not None:
            url = url.set(password=self.config.password.get_secret_value())
        self.database = _for_messages(url)
        """The database, for messages: its URL without the password, wherever it was given."""
        self.queries = {key: sa.text(query) for key, query in self.config.queries.items()}
        try:
            self.engine = sa.create_engine(
                _existing_sqlite_file(url),
                pool_size=self.config.pool_size,
                max_overflow=0,
                pool_timeout=self.config.pool_timeout_seconds,
                pool_pre_ping=True,
            )
        except (ImportError, sa_exc.NoSuchModuleError) as error:
            msg = (
                f"[plugins.sql] url: no driver for {self.database} ({error}); for PostgreSQL "
                "install genesys-enrich-crm-sql[postgres]"
            )
            raise ConfigError(msg) from None

    def lookup(self, interaction: Interaction) -> Mapping[str, JSONValue] | None:
        keys = interaction.customer_keys
        for key, query in self.queries.items():
            if key in keys:
                row = self._first_row(key, query, keys[key])
                if row is not None:
                    return _fields(row)
        return None

    def _first_row(self, key: str, query: sa.TextClause, value: str) -> sa.RowMapping | None:
        try:
            connection = self.engine.connect()
        except (sa_exc.DBAPIError, sa_exc.TimeoutError) as error:
            msg = f"could not connect to {self.database}: {_reason(error)}"
            raise SourceError(msg, retryable=True) from None
        with connection:
            try:
                return connection.execute(query, {key: value}).mappings().first()
            except sa_exc.DataError:
                # The value cannot be the column's type ('CUST-0042' for an integer id): no such
                # customer, not a broken query. The value itself stays out of the message.
                connection.rollback()
                return None
            except sa_exc.DBAPIError as error:
                if error.connection_invalidated:
                    msg = f"lost its connection to {self.database}: {_reason(error)}"
                    raise SourceError(msg, retryable=True) from None
                msg = (
                    f"query for {key} failed on {self.database}: {_reason(error)}; "
                    f"check [plugins.sql] queries.{key}"
                )
                raise SourceError(msg, retryable=False) from None

    async def aclose(self) -> None:
        self.engine.dispose()


_SECRET_QUERY_KEYS = ("password", "sslpassword", "passfile")


def _for_messages(url: sa.URL) -> str:
    """The URL with its password hidden, including one given as ``?password=``."""
    hidden = {key: "hidden" for key in url.query if key.lower() in _SECRET_QUERY_KEYS}
    return url.update_query_dict(hidden).render_as_string(hide_password=True)


def _existing_sqlite_file(url: sa.URL) -> sa.URL:
    """A SQLite file URL opened read-write but never created: a mistyped path fails each lookup
    ("unable to open database file") instead of answering from a new, empty database."""
    database = url.database
    if url.get_backend_name() != "sqlite" or not database or database.startswith(":memory:"):
        return url
    if database.startswith("file:"):
        return url
    return url.set(
        database=f"file:{pathname2url(database)}",
        query={**url.query, "mode": "rw", "uri": "true"},
    )


def _fields(row: sa.RowMapping) -> dict[str, JSONValue]:
    return {
        column: _json_value(column, value) for column, value in row.items() if value is not None
    }


def _json_value(column: str, value: Any) -> JSONValue:
    """A column's value as JSON: numbers, text and booleans as they are, decimals as numbers,
    dates and times in ISO 8601, UUIDs as text."""
    if isinstance(value, str | int | float | bool):
        return value
    if isinstance(value, decimal.Decimal):
        return float(value)
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    msg = (
        f"column {column!r} holds a {type(value).__name__}, which cannot be written to "
        "Genesys; convert it to text in the query"
    )
    raise SourceError(msg, retryable=False)


def _reason(error: sa_exc.SQLAlchemyError) -> str:
    """The driver's own message, first line only: no SQL text, no bound values."""
    cause = error.orig if isinstance(error, sa_exc.DBAPIError) else error
    lines = str(cause).strip().splitlines()
    return lines[0] if lines else type(cause).__name__


@hookimpl
def register_crm_sources(register: Register) -> None:
    register(SqlCustomerSource)
