"""The plugin objects: CRM sources (async or blocking) and context mappers.

Plugins subclass one of them and hand the class to the core through the hooks in
:mod:`genesys_enrich.plugin`. The core builds one instance of each enabled class per process,
passing it its validated settings section and the shared resources, and reuses it for every event:
state kept on the instance (a token, a pause after a 429) lives as long as the process.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import ClassVar

import httpx
from pydantic import BaseModel, ConfigDict

from .models import Interaction, JSONValue, Record


class PluginConfig(BaseModel):
    """Base for a plugin's settings section (``[plugins.<name>]`` in settings.toml).

    Declare fields with types and defaults; type credentials ``pydantic.SecretStr``: the core
    treats a field as secret because its type says so, never because of its name, and keeps it out
    of logs, outcomes and error messages. Unknown keys are an error, so a typo in settings.toml is
    reported at start-up.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)


@dataclass(frozen=True, slots=True)
class PluginContext:
    """Process-wide resources the core shares with every plugin instance."""

    http: httpx.AsyncClient
    """The process's HTTP client: keep-alive connections reused across events. Pass per-request
    ``timeout=`` and ``headers=`` rather than building a client of your own."""
    logger: logging.Logger
    """The core's logger, for a plugin with something to log; never log a credential."""
    clock: Callable[[], float] = field(default=time.monotonic)
    """Seconds, monotonic: what budgets and rate-limit pauses are measured with. Tests pass a
    fake one to move time without waiting."""


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
    """A CRM that can say who a customer is, asked with ``async def lookup``.

    The core awaits every enabled source concurrently, each under its own timeout, so a lookup
    must never block the event loop: use ``self.context.http`` (or another asyncio client). For a
    client library that blocks, subclass :class:`BlockingCrmSource` instead; for an HTTP API,
    :class:`~genesys_enrich.plugin.RestSource` does the requests for you.
    """

    async def lookup(self, interaction: Interaction) -> Mapping[str, JSONValue] | None:
        """Return the customer's fields, or ``None`` when the CRM does not know the customer.

        Args:
            interaction: the contact; read its customer keys (``interaction.customer_keys``).

        Returns:
            A mapping of field names to JSON-serialisable values; ``None`` (or an empty mapping)
            when there is no match.

        Raises:
            NoMatch: the customer is not known, with a reason worth reading in the outcome
                (``"3 contacts share this email"``).
            SourceError: the lookup failed: ``retryable=False`` when trying again cannot help,
                ``misconfigured=True`` when the deployment must be fixed (credentials refused).
                Any other exception is treated as a retryable failure of this source alone.
        """
        raise NotImplementedError


class BlockingCrmSource(_Extension):
    """A CRM asked through a client library that blocks (a database driver, a vendor SDK).

    ``lookup`` is a plain function; the core runs it in threads reserved for this source, so a hung
    CRM holds only its own threads. It cannot be interrupted: give the library its own timeout
    too. Raising works as for :meth:`CrmSource.lookup`.
    """

    def lookup(self, interaction: Interaction) -> Mapping[str, JSONValue] | None:
        """Return the customer's fields, or ``None``; see :meth:`CrmSource.lookup`."""
        raise NotImplementedError


AnySource = CrmSource | BlockingCrmSource
"""Either kind of source."""


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
