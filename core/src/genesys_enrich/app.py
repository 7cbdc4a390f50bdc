"""The process-wide assembly: one HTTP client, one token cache, the plugins, one pipeline.

Hosts build an :class:`Enricher` once per process (per warm Lambda environment, per CLI run) and
hand it every event. It must be used on one event loop: the HTTP client belongs to the loop it was
created on.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from types import TracebackType
from typing import Any, Self

import httpx
from pydantic import SecretStr

from ._sources import AnySource, ContextMapper, PluginContext
from .aws_secrets import resolve_references
from .errors import ConfigError
from .genesys.auth import TokenProvider
from .genesys.client import GenesysClient, WriteLimits
from .genesys.ratelimit import Clock, RateLimiter
from .genesys.requests import DryRun
from .genesys.transport import Timeouts, Transport
from .http_transport import AsyncioTransport, api_client
from .models import Outcome
from .pipeline import Pipeline
from .plugins import PluginRegistry, discover
from .retry import RetryPolicy, install_retry_logging
from .settings import GenesysSettings, Settings
from .source_cache import SourceCache

logger = logging.getLogger("genesys_enrich")


class Enricher:
    """Turns events into outcomes with everything settings enable. Build it with :meth:`start`."""

    def __init__(
        self,
        settings: Settings,
        http: httpx.AsyncClient,
        registry: PluginRegistry,
        sources: list[AnySource],
        mappers: list[ContextMapper],
        genesys: GenesysClient | None,
        *,
        owns_http: bool = True,
        connections: AsyncioTransport | None = None,
    ) -> None:
        self.settings = settings
        self._owns_http = owns_http
        self._connections = connections
        self.http = http
        self.registry = registry
        self.genesys = genesys
        self.pipeline = Pipeline(
            sources,
            mappers,
            DryRun() if genesys is None else genesys,
            source_timeout=settings.pipeline.source_timeout_seconds,
            topics=settings.pipeline.topics,
            blocking_threads=settings.pipeline.concurrency,
            cache=_source_cache(settings),
        )

    @classmethod
    async def start(
        cls,
        settings: Settings,
        *,
        dry_run: bool = False,
        plugins: Mapping[str, object] | None = None,
        entry_points: bool = True,
        http: httpx.AsyncClient | None = None,
        clock: Clock | None = None,
    ) -> Self:
        """Load the enabled plugins, build the clients, and check the settings they need.

        Args:
            settings: from :func:`~genesys_enrich.settings.load_settings`.
            dry_run: compute every patch but write nothing; needs no Genesys credentials.
            plugins: extra plugin objects by name, registered as if installed (for tests).
            entry_points: set ``False`` to use only ``plugins``, ignoring what is installed.
            http: an HTTP client to use instead of building one (its owner closes it).
            clock: the Genesys rate limiter's clock; tests pass a faster one.

        Raises:
            ConfigError: a setting is missing or wrong.
            PluginError: an enabled plugin is missing, failed to load, or is invalid.
        """
        genesys_settings = settings.genesys
        credentials = None if dry_run else _credentials(genesys_settings)
        registry = discover(
            settings.pipeline.enabled_plugins, extra=plugins, entry_points=entry_points
        )
        install_retry_logging()
        connections = None
        client = http
        if client is None:
            connections = AsyncioTransport(max_connections=100, max_idle=100)
            client = api_client(
                connections,
                timeout=_timeouts(genesys_settings).within(None),
                headers={"User-Agent": "genesys-enrich"},
            )
        context = PluginContext(http=client, logger=logger)
        try:
            # Secrets named by ARN are read now, once for the life of the process.
            settings = await resolve_references(settings, client, genesys=not dry_run)
            sources = registry.build_sources(settings, context)
            mappers = registry.build_mappers(settings, context)
        except Exception:
            if http is None:
                await client.aclose()
            raise
        credentials = credentials and _credentials(settings.genesys)
        genesys = credentials and _genesys_client(client, genesys_settings, credentials, clock)
        return cls(
            settings,
            client,
            registry,
            sources,
            mappers,
            genesys,
            owns_http=http is None,
            connections=connections,
        )

    async def process(self, event: Any, *, deadline: float | None = None) -> Outcome:
        """Enrich one event; see :meth:`Pipeline.process`."""
        return await self.pipeline.process(event, deadline=deadline)

    def after_restore(self) -> None:
        """Make a process restored from a snapshot (AWS Lambda SnapStart) its own: close the
        kept-alive connections (their sockets did not survive), forget the Genesys token (every
        copy of the snapshot would share it, and its expiry was reckoned on a clock that has
        since moved), and restart the rate limiter. Connections a plugin opened itself are the
        plugin's to renew."""
        if self._connections is not None:
            self._connections.drop_idle_connections()
        if self.genesys is not None:
            self.genesys.tokens.forget()
            self.genesys.transport.limiter.restart()

    async def aclose(self) -> None:
        self.pipeline.close()
        for extension in (*self.pipeline.sources, *self.pipeline.mappers):
            try:
                await extension.aclose()
            except Exception:
                logger.warning("closing %s failed", extension.name, exc_info=True)
        if self._owns_http:
            await self.http.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()


def _source_cache(settings: Settings) -> SourceCache | None:
    seconds = settings.pipeline.source_cache_seconds
    return SourceCache(seconds, settings.pipeline.source_cache_size) if seconds > 0 else None


def _credentials(settings: GenesysSettings) -> tuple[str, SecretStr]:
    missing = [
        f"{name} (or GENESYS_ENRICH_GENESYS__{name.removeprefix('GENESYS_')})"
        for name, value in (
            ("GENESYS_CLIENT_ID", settings.client_id),
            ("GENESYS_CLIENT_SECRET", settings.client_secret),
        )
        if not value
    ]
    if missing or settings.client_id is None or settings.client_secret is None:
        msg = (
            f"{' and '.join(missing)} not set: genesys-enrich needs a Genesys Cloud OAuth client "
            "(Client Credentials grant) to write. Set them in the environment, or under [genesys] "
            "in the settings file; use --dry-run to compute patches without writing."
        )
        raise ConfigError(msg)
    return settings.client_id, settings.client_secret


def _timeouts(settings: GenesysSettings) -> Timeouts:
    return Timeouts(
        connect=settings.connect_timeout_seconds,
        read=settings.read_timeout_seconds,
        pool=settings.pool_timeout_seconds,
    )


def _genesys_client(
    http: httpx.AsyncClient,
    settings: GenesysSettings,
    credentials: tuple[str, SecretStr],
    clock: Clock | None,
) -> GenesysClient:
    """The process's Genesys client: one rate limiter and one transport for tokens and writes."""
    client_id, client_secret = credentials
    transport = Transport(
        http,
        limiter=RateLimiter(settings.requests_per_minute, clock=clock),
        policy=RetryPolicy(
            max_retry_after=settings.max_retry_after_seconds,
            default_retry_after=min(3.0, settings.max_retry_after_seconds),
            wait_initial=settings.retry_wait_initial_seconds,
            wait_max=settings.retry_wait_max_seconds,
            wait_jitter=settings.retry_wait_initial_seconds / 2,
        ),
        attempts=settings.retry_attempts,
        timeouts=_timeouts(settings),
    )
    tokens = TokenProvider(
        transport,
        login_url=settings.login_base_url,
        client_id=client_id,
        client_secret=client_secret,
        region=settings.environment,
        refresh_margin=settings.token_refresh_margin_seconds,
    )
    return GenesysClient(
        transport,
        api_url=settings.api_base_url,
        tokens=tokens,
        limits=WriteLimits(
            max_keys=settings.max_attributes, max_value_chars=settings.max_attribute_chars
        ),
        timeout=settings.timeout_seconds,
        client_id=client_id,
    )
