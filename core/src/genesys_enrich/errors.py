"""One error tree. Messages are written for a person: what failed, with which value, what to do."""

from __future__ import annotations


class EnrichError(Exception):
    """Base of every error genesys-enrich raises on purpose."""


class ConfigError(EnrichError):
    """A setting is missing or wrong. Raised at start-up, before any event is processed."""


class PluginError(EnrichError):
    """A plugin could not be loaded, validated or constructed. The message names the plugin."""


class EventError(EnrichError):
    """An event cannot be processed as given. Permanent: sending it again will not help."""


class SourceError(EnrichError):
    """A CRM source failed to look a customer up.

    Sources raise this (or let any other exception escape) when the lookup failed, as opposed to
    returning ``None`` (or raising :class:`NoMatch`) when the customer is unknown. ``retryable``
    tells the core whether the same lookup may succeed later (a 5xx, a timeout) or not (a
    malformed answer). ``misconfigured`` says the deployment, not the event, is wrong (credentials
    refused, a base URL that does not exist): the event is kept whole for replay once someone
    fixes it, and the message says what to fix.
    """

    def __init__(
        self,
        message: str,
        *,
        retryable: bool = True,
        misconfigured: bool = False,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.retryable = retryable
        self.misconfigured = misconfigured
        self.retry_after = retry_after
        """Seconds the CRM asked us to wait before trying again, when it said."""


class NoMatch(EnrichError):
    """The CRM does not know the customer, for a reason worth reading in the outcome.

    Raise it from a lookup (or a REST source's ``classify``) instead of returning ``None`` when
    the reason helps whoever reads the outcome: ``NoMatch("3 contacts share this email")``.
    """


class GenesysError(EnrichError):
    """Genesys Cloud refused or failed a request."""

    def __init__(
        self,
        message: str,
        *,
        status_code: int | None = None,
        retryable: bool = False,
        correlation_id: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.retryable = retryable
        self.correlation_id = correlation_id


class InteractionNotFound(GenesysError):
    """Genesys answered 404 to a write: the interaction does not exist or has ended.

    Only a write raises it, so a 404 from anywhere else (a wrong login URL's token endpoint) is
    never mistaken for an event with nothing left to enrich.
    """
