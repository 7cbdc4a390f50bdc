"""Find plugins through their entry points, validate them, and build the enabled ones.

Discovery is isolated per plugin: one that fails to import or whose hook raises is recorded as
``failed`` with its error, and the others load. Only when settings enable a failed plugin does
start-up stop, with a message naming it.
"""

from __future__ import annotations

import importlib.metadata
import inspect
import logging
import re
import reprlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, TypeVar

import pluggy
from pydantic import ValidationError

from . import plugin as contract
from ._sources import AnySource, BlockingCrmSource, ContextMapper, CrmSource, PluginContext
from .errors import ConfigError, PluginError
from .settings import Settings, describe_validation_error

logger = logging.getLogger(__name__)

ENTRY_POINT_GROUP = contract.PROJECT_NAME
_NAME = re.compile(r"^[a-z][a-z0-9_-]{0,63}$")


class PluginStatus(StrEnum):
    LOADED = "loaded"
    FAILED = "failed"
    NOT_LOADED = "not loaded"
    """Installed but neither enabled nor asked for; its code was not imported."""


@dataclass
class PluginInfo:
    """What ``genesys-enrich plugins`` shows about one plugin."""

    name: str
    distribution: str | None = None
    version: str | None = None
    module: str | None = None
    status: PluginStatus = PluginStatus.NOT_LOADED
    hooks: list[str] = field(default_factory=list)
    sources: list[str] = field(default_factory=list)
    mappers: list[str] = field(default_factory=list)
    error: str | None = None

    @property
    def label(self) -> str:
        if self.distribution:
            return f"plugin {self.name!r} ({self.distribution} {self.version})"
        return f"plugin {self.name!r}"

    def to_json(self, enabled: bool) -> dict[str, Any]:
        return {
            "name": self.name,
            "distribution": self.distribution,
            "version": self.version,
            "module": self.module,
            "status": self.status.value,
            "enabled": enabled,
            "hooks": self.hooks,
            "sources": self.sources,
            "mappers": self.mappers,
            "error": self.error,
        }


@dataclass
class PluginRegistry:
    """The plugins found in this process and the classes they registered."""

    plugins: dict[str, PluginInfo]
    sources: dict[str, type[AnySource]]
    mappers: dict[str, type[ContextMapper]]

    def build_sources(self, settings: Settings, context: PluginContext) -> list[AnySource]:
        """One instance per source named in ``[pipeline] sources``, in that (priority) order."""
        return [
            _build(self._find(self.sources, name, "sources"), settings, context)
            for name in settings.pipeline.sources
        ]

    def build_mappers(self, settings: Settings, context: PluginContext) -> list[ContextMapper]:
        """One instance per mapper named in ``[pipeline] mappers``, in that (run) order."""
        return [
            _build(self._find(self.mappers, name, "mappers"), settings, context)
            for name in settings.pipeline.mappers
        ]

    def _find(self, registered: Mapping[str, type[_E]], name: str, kind: str) -> type[_E]:
        if name in registered:
            return registered[name]
        info = self.plugins.get(name)
        if info is not None and info.status is PluginStatus.FAILED:
            msg = (
                f"{info.label} is enabled in [pipeline] {kind} but failed to load: {info.error}. "
                f"Fix or reinstall it, or remove {name!r} from [pipeline] {kind}."
            )
            raise PluginError(msg)
        known = ", ".join(sorted(registered)) or "none"
        idle = sorted(n for n, i in self.plugins.items() if i.status is PluginStatus.NOT_LOADED)
        others = f"; other installed plugins: {', '.join(idle)}" if idle else ""
        msg = (
            f"[pipeline] {kind} names {name!r}, but no installed plugin provides it "
            f"(installed {kind}: {known}{others}). Check the spelling, install its distribution "
            f"in this environment (for Lambda: in the deployment package), or remove it from "
            f"[pipeline] {kind}."
        )
        raise PluginError(msg)


_E = TypeVar("_E", CrmSource, BlockingCrmSource, AnySource, ContextMapper)


def discover(
    enabled: Iterable[str] | None = None,
    *,
    extra: Mapping[str, object] | None = None,
    entry_points: bool = True,
) -> PluginRegistry:
    """Find and load plugins.

    Args:
        enabled: load only the entry points with these names (the lean path for Lambda cold
            starts); ``None`` loads every installed plugin (what ``genesys-enrich plugins`` shows).
        extra: plugin objects to register directly, by name, as if they had entry points: how a
            test runs the pipeline with only the plugin under test.
        entry_points: set ``False`` to ignore installed plugins altogether.

    Raises:
        PluginError: two plugins register a source or mapper of the same name.
    """
    manager = pluggy.PluginManager(contract.PROJECT_NAME)
    manager.add_hookspecs(contract)
    wanted = None if enabled is None else set(enabled)
    infos: dict[str, PluginInfo] = {}
    if entry_points:
        for entry_point in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
            info = _info(entry_point)
            infos.setdefault(entry_point.name, info)
            if wanted is not None and entry_point.name not in wanted:
                continue
            try:
                loaded = entry_point.load()
            except Exception as error:  # a broken plugin must not stop the others from loading
                _fail(info, error)
                continue
            _register(manager, info, loaded)
    for name, plugin in (extra or {}).items():
        infos[name] = info = PluginInfo(name=name, module=getattr(plugin, "__name__", repr(plugin)))
        _register(manager, info, plugin)
    registry = PluginRegistry(plugins=infos, sources={}, mappers={})
    for info in infos.values():
        if info.status is PluginStatus.LOADED:
            _collect(manager, info, registry)
    return registry


def _info(entry_point: importlib.metadata.EntryPoint) -> PluginInfo:
    dist = entry_point.dist
    return PluginInfo(
        name=entry_point.name,
        distribution=dist.name if dist else None,
        version=dist.version if dist else None,
        module=entry_point.value,
    )


def _register(manager: pluggy.PluginManager, info: PluginInfo, plugin: object) -> None:
    # pluggy checks each hook implementation against its spec; an invalid plugin must not stop
    # the others from loading: record its error and go on.
    try:
        manager.register(plugin, name=info.name)
        manager.check_pending()
    except Exception as error:
        if manager.is_registered(plugin):
            manager.unregister(plugin)
        _fail(info, error)
        return
    info.status = PluginStatus.LOADED
    info.hooks = [caller.name for caller in manager.get_hookcallers(plugin) or ()]


def _fail(info: PluginInfo, error: BaseException, during: str = "") -> None:
    info.status = PluginStatus.FAILED
    info.error = f"{during}{type(error).__name__}: {error}"
    logger.warning("%s failed to load: %s", info.label, info.error)


_KINDS: tuple[tuple[str, tuple[type, ...], str], ...] = (
    ("register_crm_sources", (CrmSource, BlockingCrmSource), "sources"),
    ("register_context_mappers", (ContextMapper,), "mappers"),
)


def _collect(manager: pluggy.PluginManager, info: PluginInfo, registry: PluginRegistry) -> None:
    """Call this plugin's hooks through pluggy, alone, so its error is its own, and record what
    it registers."""
    plugin = manager.get_plugin(info.name)
    others = [other for _, other in manager.list_name_plugin() if other is not plugin]
    for hook, bases, kind in _KINDS:
        if hook not in info.hooks:
            continue
        registered: list[Any] = []

        def register(*classes: Any, _into: list[Any] = registered) -> None:
            _into.extend(classes)

        try:
            returned = manager.subset_hook_caller(hook, remove_plugins=others)(register=register)
        except Exception as error:
            _fail(info, error, during=f"{hook}() raised ")
            return
        try:
            values = [value for value in returned if value is not None]
            if values:
                shown = reprlib.repr(values[0])
                msg = (
                    f"{hook}() returned {shown} instead of calling register: write "
                    f"`def {hook}(register): register(YourClass)`"
                )
                raise PluginError(msg)
            for cls in registered:
                _check_class(cls, bases, info, hook)
        except PluginError as error:
            _fail(info, error)
            return
        target: dict[str, Any] = getattr(registry, kind)
        for cls in registered:
            if cls.name in target:
                other = _owner(registry, cls.name)
                msg = (
                    f"{_kind_name(bases)} name {cls.name!r} is registered twice: by {info.label} "
                    f"and by {other}. Uninstall one, or rename one of them."
                )
                raise PluginError(msg)
            target[cls.name] = cls
            getattr(info, kind).append(cls.name)


def _kind_name(bases: tuple[type, ...]) -> str:
    return "source" if CrmSource in bases else bases[0].__name__


def _owner(registry: PluginRegistry, name: str) -> str:
    for info in registry.plugins.values():
        if name in info.sources or name in info.mappers:
            return info.label
    return "another plugin"


def _check_class(cls: Any, bases: tuple[type, ...], info: PluginInfo, hook: str) -> None:
    if not (isinstance(cls, type) and issubclass(cls, bases)):
        names = " or ".join(base.__name__ for base in bases)
        msg = f"{info.label}: {hook}() must register {names} subclasses, got {cls!r}"
        raise PluginError(msg)
    name = getattr(cls, "name", None)
    if not isinstance(name, str) or not _NAME.match(name):
        msg = (
            f"{info.label}: {cls.__qualname__}.name must be a short lowercase name "
            f"(letters, digits, '-' or '_'), got {name!r}"
        )
        raise PluginError(msg)
    _check_kind(cls, info)


def _check_kind(cls: type, info: PluginInfo) -> None:
    """The kind of source says how its lookup is called: awaited, or run in threads. A lookup of
    the other kind would fail every event, so say so now."""
    if not issubclass(cls, CrmSource | BlockingCrmSource):
        return
    is_async = inspect.iscoroutinefunction(cls.lookup)
    if issubclass(cls, CrmSource) and not is_async:
        msg = (
            f"{info.label}: {cls.__qualname__}.lookup must be `async def` in a CrmSource; "
            "for a lookup that blocks (a database driver, a vendor SDK) subclass "
            "BlockingCrmSource instead"
        )
        raise PluginError(msg)
    if issubclass(cls, BlockingCrmSource) and is_async:
        msg = (
            f"{info.label}: {cls.__qualname__}.lookup must be a plain `def` in a "
            "BlockingCrmSource, which runs it in threads; subclass CrmSource for an async lookup"
        )
        raise PluginError(msg)


def _build(cls: type[_E], settings: Settings, context: PluginContext) -> _E:
    section = settings.plugins.get(cls.name, {})
    try:
        config = cls.Config.model_validate(section)
    except ValidationError as error:
        raise ConfigError(
            describe_validation_error(error, None, section=("plugins", cls.name))
        ) from None
    return cls(config, context)
