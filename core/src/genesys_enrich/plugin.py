"""The plugin contract: everything a genesys-enrich plugin imports, and the hooks it implements.

A plugin is a module registered under the entry-point group ``genesys_enrich``; the entry-point
name is the short name settings use for it (``rest``, ``sql``, ``fields``). It implements one or
both hooks below with ``@hookimpl``, calling ``register`` with each class it provides. The core
builds one instance of each enabled class per process and runs the lookups itself, concurrently,
each under its own timeout, so a slow or broken plugin never holds up another.

A complete plugin for a CRM that answers ``GET /members?email=...`` with ``{"data": [...]}``::

    # genesys_enrich_loyalty.py, with this in its pyproject.toml:
    #   [project.entry-points.genesys_enrich]
    #   loyalty = "genesys_enrich_loyalty"
    from pydantic import SecretStr

    from genesys_enrich.plugin import ApiKey, Get, RestSource, RestSourceConfig, hookimpl


    class LoyaltyConfig(RestSourceConfig):
        api_key: SecretStr
        lookup_keys: tuple[str, ...] = ("email",)


    class Loyalty(RestSource):
        name = "loyalty"
        Config = LoyaltyConfig
        request = Get("/members", {"email": "{value}"})
        auth = ApiKey("X-Api-Key", "{api_key}")
        records_at = "data"
        fields = {"loyaltyTier": "tier", "loyaltyPoints": "points"}


    @hookimpl
    def register_crm_sources(register):
        register(Loyalty)

Enable it by adding ``"loyalty"`` to ``[pipeline] sources`` in settings.toml, with its settings
under ``[plugins.loyalty]``. For a CRM without an HTTP API, subclass :class:`CrmSource` (an
``async def lookup``) or :class:`BlockingCrmSource` (a plain ``def lookup``, run in threads of its
own). The tutorial (docs/tutorial.md) builds an adapter step by step. The test kit tests it
in seconds: the pytest fixtures of :mod:`genesys_enrich.testing.pytest_plugin`
(``run_pipeline``, ``source``, ``clock``, ``make_event``, ``make_interaction``, ``fake_crm``,
``fake_genesys``...), and ``crm_source_test_class`` of
:mod:`genesys_enrich.testing.conformance` for the conformance suite.
"""

from __future__ import annotations

from collections.abc import Callable

import pluggy

from ._auth import ApiKey, Authenticator, Basic, Bearer, OAuth2ClientCredentials
from ._rest import Get, Lookup, Post, RestSource, RestSourceConfig, digits_only, path_segment
from ._sources import BlockingCrmSource, ContextMapper, CrmSource, PluginConfig, PluginContext
from .errors import ConfigError, NoMatch, SourceError
from .models import CUSTOMER_KEYS, Field, Interaction, JSONValue, Record

PROJECT_NAME = "genesys_enrich"
"""The pluggy project name and the entry-point group plugins register under."""

hookimpl = pluggy.HookimplMarker(PROJECT_NAME)
"""Marks a plugin's implementation of a hook below."""

hookspec = pluggy.HookspecMarker(PROJECT_NAME)

Register = Callable[..., None]
"""The type of the hooks' ``register`` argument: call ``register(*classes)`` to hand the core
source or mapper classes (classes, not instances)."""


@hookspec
def register_crm_sources(register: Register) -> None:
    """Register the CRM source classes this plugin provides.

    Called once per process, when the core starts, synchronously. Call ``register`` with each
    class; each needs a unique ``name``, and only those named in ``[pipeline] sources`` are built
    and used, in that order of merge priority (the first source listed wins a conflict).

    The core constructs each enabled class as ``cls(config, context)``: ``config`` is the class's
    ``Config`` model validated from ``[plugins.<name>]``, ``context`` holds the shared HTTP client
    and clock. It then calls ``lookup(interaction)`` for every event, concurrently with the other
    sources: awaited for a :class:`CrmSource`, in the source's own threads for a
    :class:`BlockingCrmSource`.

    Raising here, registering something that is not a source class, or returning a value instead
    of calling ``register`` marks the plugin as failed in ``genesys-enrich plugins``; if settings
    enable one of its sources, start-up fails with a message naming the plugin.

    Args:
        register: call it as ``register(*classes)``.

    Example::

        @hookimpl
        def register_crm_sources(register):
            register(RestCustomerSource)

    .. versionadded:: 1.0.0
    """


@hookspec
def register_context_mappers(register: Register) -> None:
    """Register the context mapper classes this plugin provides.

    Called once per process, when the core starts, synchronously. Only the classes named in
    ``[pipeline] mappers`` are built; they run in that order on the merged record, each
    ``apply(record, interaction)`` receiving the previous one's result, and the last result is
    what is written to Genesys.

    Errors are handled as in :func:`register_crm_sources`.

    Args:
        register: call it as ``register(*classes)`` with :class:`ContextMapper` subclasses.

    Example::

        @hookimpl
        def register_context_mappers(register):
            register(UppercaseTier)

    .. versionadded:: 1.0.0
    """


__all__ = [
    "CUSTOMER_KEYS",
    "PROJECT_NAME",
    "ApiKey",
    "Authenticator",
    "Basic",
    "Bearer",
    "BlockingCrmSource",
    "ConfigError",
    "ContextMapper",
    "CrmSource",
    "Field",
    "Get",
    "Interaction",
    "JSONValue",
    "Lookup",
    "NoMatch",
    "OAuth2ClientCredentials",
    "PluginConfig",
    "PluginContext",
    "Post",
    "Record",
    "Register",
    "RestSource",
    "RestSourceConfig",
    "SourceError",
    "digits_only",
    "hookimpl",
    "path_segment",
    "register_context_mappers",
    "register_crm_sources",
]
