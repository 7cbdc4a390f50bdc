"""genesys-enrich: put CRM data in front of Genesys Cloud agents.

The public API for plugin authors: ``hookimpl`` marks hook implementations, ``CrmSource`` and
``ContextMapper`` are the classes plugins subclass; the rest are the values they receive and return.
"""

from __future__ import annotations

import pluggy

from .errors import ConfigError, EnrichError, PluginError, SourceError
from .extensions import ContextMapper, CrmSource, PluginConfig, PluginContext
from .hookspecs import PROJECT_NAME
from .models import Field, Interaction, JSONValue, Outcome, Record, Status

hookimpl = pluggy.HookimplMarker(PROJECT_NAME)
"""Marks a plugin's implementation of a hook in :mod:`genesys_enrich.hookspecs`."""

__all__ = [
    "ConfigError",
    "ContextMapper",
    "CrmSource",
    "EnrichError",
    "Field",
    "Interaction",
    "JSONValue",
    "Outcome",
    "PluginConfig",
    "PluginContext",
    "PluginError",
    "Record",
    "SourceError",
    "Status",
    "hookimpl",
]
