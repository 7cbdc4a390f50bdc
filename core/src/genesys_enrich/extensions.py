"""The two kinds of plugin objects: CRM sources and context mappers.

Plugins subclass :class:`CrmSource` or :class:`ContextMapper` and hand the classes to the core from
the hooks in :mod:`genesys_enrich.hookspecs`. The core builds one instance of each enabled class per
process, passing it its validated settings section and the shared resources, and reuses it for every
event.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Mapping
from dataclasses import dataclass
from typing import ClassVar

import httpx
from pydantic import BaseModel, ConfigDict

from .models import Interaction, JSONValue, Record


class PluginConfig(BaseModel):
    """Base for a plugin's settings section (``[plugins.<name>]`` in settings.toml).

    Declare fields with types and defaults; use ``pydantic.SecretStr`` for credentials so they are
    never printed. Unknown keys are an error, so a typo in settings.toml is reported at start-up.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)


@dataclass(frozen=True, slots=True)
class PluginContext:
    """Process-wide resources the core shares with every plugin instance."""

    http: httpx.AsyncClient
    """The process's HTTP client: keep-alive connections reused across events. Pass per-request
    ``timeout=`` and ``headers=`` rather than building a client of your own."""
    logger: logging.Logger


class _Extension:
    name: ClassVar[str]
    """The name settings use to enable this source or mapper and provenance uses to credit it.
    By convention the same as the plugin's entry-point name."""

    Config: ClassVar[type[PluginConfig]] = PluginConfig
    """The settings model for ``[plugins.<name>]``. Override it to accept settings."""

    def __init__(self, config: PluginConfig, context: PluginContext) -> None:
        self.config = config
        self.context = context

    async def aclose(self) -> None:
        """Release what ``__init__`` acquired (pools, files). Called once at shutdown."""


class CrmSource(_Extension):
    """A CRM that can say who a customer is.

    Subclasses set :attr:`name` and implement :meth:`lookup`, as a coroutine (preferred, for HTTP
    CRMs, using ``self.context.http``) or as a plain function (run in a worker thread, for blocking
    client libraries). The core calls every enabled source concurrently, each under its own timeout.
    """

    def lookup(
        self, interaction: Interaction
    ) -> Mapping[str, JSONValue] | Awaitable[Mapping[str, JSONValue] | None] | None:
        """Return the customer's fields, or ``None`` when the CRM does not know the customer.

        Args:
            interaction: the contact; read its customer keys (``interaction.customer_keys``).

        Returns:
            A mapping of field names to JSON-serialisable values, ``None`` (or an empty mapping)
            when there is no match.

        Raises:
            SourceError: the lookup failed; set ``retryable=False`` when retrying cannot help.
                Any other exception is treated as a retryable failure of this source alone.
        """
        raise NotImplementedError


class ContextMapper(_Extension):
    """A step that shapes the merged record into what is written to Genesys.

    Mappers run in the order settings list them; each receives the previous one's output.
    """

    def apply(self, record: Record, interaction: Interaction) -> Record:
        """Return the record to pass on: select, rename, format or add fields.

        Keep the ``Field`` objects of the input for values you pass through, so their provenance
        survives; create ``Field(value, self.name)`` for values you compute.

        Raises:
            Exception: any exception fails the event (not retryable): a mapper bug is not transient.
        """
        raise NotImplementedError
