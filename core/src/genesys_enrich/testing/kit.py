"""Run the real pipeline with only the plugins under test, and check the outcome it gives.

What a plugin's tests need beyond the fakes: :func:`run_pipeline` builds the same
:class:`~genesys_enrich.app.Enricher` the Lambda handler and the command line use, with the given
plugins only (nothing installed is loaded), and the ``assert_*`` helpers state what a user would
see, printing the whole outcome when they fail.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from types import ModuleType
from typing import Any

from genesys_enrich.app import Enricher
from genesys_enrich.loopback import FakeGenesys
from genesys_enrich.models import JSONValue, Outcome, SourceResult, SourceStatus, Status
from genesys_enrich.plugin import BlockingCrmSource, ContextMapper, CrmSource, hookimpl
from genesys_enrich.plugins import discover

from .settings import settings_for

Plugin = type[CrmSource] | type[BlockingCrmSource] | type[ContextMapper] | object
"""A source or mapper class, or a plugin module (or object) implementing the hooks."""


def as_plugin(*classes: type[CrmSource | BlockingCrmSource | ContextMapper]) -> object:
    """A plugin object whose hooks register ``classes``, as a plugin module's would."""
    sources = [cls for cls in classes if issubclass(cls, CrmSource | BlockingCrmSource)]
    mappers = [cls for cls in classes if issubclass(cls, ContextMapper)]

    @hookimpl
    def register_crm_sources(register: Callable[..., None]) -> None:
        register(*sources)

    @hookimpl
    def register_context_mappers(register: Callable[..., None]) -> None:
        register(*mappers)

    names = ", ".join(cls.__qualname__ for cls in classes)
    plugin = ModuleType(f"<plugin of {names}>")
    plugin.register_crm_sources = register_crm_sources  # type: ignore[attr-defined]
    plugin.register_context_mappers = register_context_mappers  # type: ignore[attr-defined]
    return plugin


def named_plugins(plugins: Sequence[Plugin]) -> dict[str, object]:
    """Plugin objects by a unique name, classes wrapped with :func:`as_plugin`."""
    named: dict[str, object] = {}
    for plugin in plugins:
        if isinstance(plugin, type) and issubclass(
            plugin, CrmSource | BlockingCrmSource | ContextMapper
        ):
            named[f"{plugin.__module__}.{plugin.__qualname__}"] = as_plugin(plugin)
        else:
            named[getattr(plugin, "__name__", repr(plugin))] = plugin
    return named


async def run_pipeline(
    event: Any,
    *plugins: Plugin,
    config: Mapping[str, Mapping[str, Any]] | None = None,
    genesys: FakeGenesys | None = None,
    sources: Sequence[str] | None = None,
    mappers: Sequence[str] | None = None,
    source_timeout: float | None = None,
) -> Outcome:
    """Process one event through the real pipeline with only ``plugins`` installed.

    Args:
        event: an EventBridge event, e.g. from :func:`~genesys_enrich.testing.make_event`.
        plugins: source and mapper classes, or plugin modules. Without a mapper the outcome
            holds every field the sources gave; a real run also has the mappers of
            ``[pipeline] mappers`` (by default ``fields``, which keeps only what its ``select``
            names): pass them, with their settings in ``config``, to see the fields as written.
        config: plugin settings by source or mapper name, as ``[plugins.<name>]`` would hold them.
        genesys: a running :class:`FakeGenesys` to write to; without one the run is a dry run
            (the outcome holds the request that would be sent).
        sources: the sources to enable, in merge priority order; by default every source the
            plugins register.
        mappers: the mappers to enable, in order; by default every mapper the plugins register.
        source_timeout: seconds each lookup may take (``[pipeline] source_timeout_seconds``).

    Returns:
        The event's one outcome.
    """
    named = named_plugins(plugins)
    if sources is None or mappers is None:
        registry = discover(extra=named, entry_points=False)
        sources = list(registry.sources) if sources is None else sources
        mappers = list(registry.mappers) if mappers is None else mappers
    pipeline: dict[str, Any] = {}
    if source_timeout is not None:
        pipeline["source_timeout_seconds"] = source_timeout
    settings = settings_for(
        genesys,
        sources=tuple(sources),
        mappers=tuple(mappers),
        plugins={name: dict(section) for name, section in (config or {}).items()},
        **pipeline,
    )
    async with await Enricher.start(
        settings, dry_run=genesys is None, plugins=named, entry_points=False
    ) as enricher:
        return await enricher.process(event)


def describe(outcome: Outcome) -> str:
    """The outcome as indented JSON: what an assertion shows when it fails."""
    return json.dumps(outcome.to_json(), indent=2, default=str)


def source_result(outcome: Outcome, source: str) -> SourceResult:
    """What ``source`` did for this event."""
    for result in outcome.sources:
        if result.source == source:
            return result
    msg = f"source {source!r} did not run for this event:\n{describe(outcome)}"
    raise AssertionError(msg)


def assert_enriched(
    outcome: Outcome,
    fields: Mapping[str, JSONValue] | None = None,
    *,
    source: str | None = None,
) -> None:
    """Assert every source answered and the fields were written (or would be, in a dry run).

    Args:
        fields: values the outcome must hold (others may be there too).
        source: the source every one of ``fields`` (or, without ``fields``, every field) must be
            credited to.
    """
    assert outcome.status is Status.ENRICHED, f"expected enriched:\n{describe(outcome)}"
    for name, value in (fields or {}).items():
        assert name in outcome.fields, f"field {name!r} missing:\n{describe(outcome)}"
        assert outcome.fields[name] == value, (
            f"field {name!r} is {outcome.fields[name]!r}, expected {value!r}:\n{describe(outcome)}"
        )
    if source is not None:
        for name in fields or outcome.fields:
            credited = outcome.provenance.get(name)
            assert credited == source, (
                f"field {name!r} came from {credited!r}, expected {source!r}:\n{describe(outcome)}"
            )


def assert_no_match(outcome: Outcome, source: str | None = None) -> None:
    """Assert the event was skipped because no source (or ``source``) knows the customer."""
    assert outcome.status is Status.SKIPPED, f"expected skipped:\n{describe(outcome)}"
    results = [source_result(outcome, source)] if source else list(outcome.sources)
    assert results, f"no source was asked:\n{describe(outcome)}"
    for result in results:
        assert result.status is SourceStatus.NO_MATCH, (
            f"source {result.source!r} ended {result.status.value}, expected no_match:\n"
            f"{describe(outcome)}"
        )


def assert_failed(outcome: Outcome, *, retryable: bool | None = None) -> None:
    """Assert the event failed; when ``retryable`` is given, that it is (or is not) retryable."""
    assert outcome.status is Status.FAILED, f"expected failed:\n{describe(outcome)}"
    if retryable is not None:
        assert outcome.retryable is retryable, (
            f"expected a {'retryable' if retryable else 'permanent'} failure:\n{describe(outcome)}"
        )


def assert_skipped(outcome: Outcome, reason: str | None = None) -> None:
    """Assert the event was skipped, and when ``reason`` is given, that its reason contains it."""
    assert outcome.status is Status.SKIPPED, f"expected skipped:\n{describe(outcome)}"
    if reason is not None:
        assert reason in outcome.reason, f"expected a reason with {reason!r}:\n{describe(outcome)}"
