"""The plugin contract: the hooks a genesys-enrich plugin implements.

A plugin is a module registered under the entry-point group ``genesys_enrich``; the entry-point
name is the short name settings use for it (``rest``, ``sql``, ``fields``). It implements one or
both hooks below with ``@genesys_enrich.hookimpl``. Hooks only *register* classes; the core
builds one instance of each enabled class per process and runs the lookups itself, concurrently,
each under its own timeout, so a slow or broken plugin never holds up another.

A complete plugin::

    # genesys_enrich_loyalty.py, with this in its pyproject.toml:
    #   [project.entry-points.genesys_enrich]
    #   loyalty = "genesys_enrich_loyalty"
    from genesys_enrich import CrmSource, hookimpl
    from genesys_enrich.rest import path_segment


    class Loyalty(CrmSource):
        name = "loyalty"

        async def lookup(self, interaction):
            if interaction.customer_id is None:
                return None
            member = path_segment(interaction.customer_id)  # "../admin" stays one segment
            response = await self.context.http.get(f"https://loyalty.example.com/members/{member}")
            if response.status_code == 404:
                return None
            response.raise_for_status()
            return {"loyaltyTier": response.json()["tier"]}


    @hookimpl
    def register_crm_sources():
        return [Loyalty]

Enable it by adding ``"loyalty"`` to ``[pipeline] sources`` in settings.toml. For an HTTP CRM,
:class:`~genesys_enrich.rest.RestSource` does the requests, retries and status handling; the
tutorial (docs/tutorial.md) builds an adapter on it step by step.
"""

from __future__ import annotations

from collections.abc import Iterable

import pluggy

from .extensions import ContextMapper, CrmSource

PROJECT_NAME = "genesys_enrich"
"""The pluggy project name and the entry-point group plugins register under."""

_spec = pluggy.HookspecMarker(PROJECT_NAME)


@_spec
def register_crm_sources() -> Iterable[type[CrmSource]]:  # type: ignore[empty-body]
    """Return the CRM source classes this plugin provides.

    Called once per process, when the core starts, synchronously. Each class needs a unique
    ``name``; only those named in ``[pipeline] sources`` are built and used, in that order of merge
    priority (the first source listed wins a conflict).

    The core constructs each enabled class as ``cls(config, context)``: ``config`` is the class's
    ``Config`` model validated from ``[plugins.<name>]``, ``context`` holds the shared HTTP client.
    It then calls ``lookup(interaction)`` for every event, concurrently with the other sources.

    Raising here marks the plugin as failed in ``genesys-enrich plugins``; if settings enable one
    of its sources, start-up fails with a message naming the plugin.

    Returns:
        An iterable of :class:`~genesys_enrich.CrmSource` subclasses (classes, not instances).
        For an HTTP CRM, subclass :class:`~genesys_enrich.rest.RestSource`.

    Example::

        @hookimpl
        def register_crm_sources():
            return [RestCustomerSource]

    .. versionadded:: 0.1.0
    """


@_spec
def register_context_mappers() -> Iterable[type[ContextMapper]]:  # type: ignore[empty-body]
    """Return the context mapper classes this plugin provides.

    Called once per process, when the core starts, synchronously. Only the classes named in
    ``[pipeline] mappers`` are built; they run in that order on the merged record, each
    ``apply(record, interaction)`` receiving the previous one's result, and the last result is
    what is written to Genesys.

    Raising here is handled as in :func:`register_crm_sources`.

    Returns:
        An iterable of :class:`~genesys_enrich.ContextMapper` subclasses (classes, not
        instances).

    Example::

        @hookimpl
        def register_context_mappers():
            return [UppercaseTier]

    .. versionadded:: 0.1.0
    """
