"""genesys-enrich source for a loyalty programme's members API.

Finds the member by the customer id an event carries (``GET /v1/members/{id}``) or, for email
conversations, by the sender's address (``GET /v1/members?email=...``, a list, best match first),
and contributes their tier and points. Settings live under ``[plugins.loyalty]``.
"""

from pydantic import SecretStr

from genesys_enrich.plugin import ApiKey, Get, Register, RestSource, RestSourceConfig, hookimpl


class LoyaltyConfig(RestSourceConfig):
    api_key: SecretStr
    """Sent as the ``X-Api-Key`` header."""
    lookup_keys: tuple[str, ...] = ("customer_id", "email")


class LoyaltySource(RestSource):
    """A member's tier and points, found by customer id or email address."""

    name = "loyalty"
    Config = LoyaltyConfig
    request = {
        "customer_id": Get("/v1/members/{value}"),
        "email": Get("/v1/members", {"email": "{value}"}),
    }
    records_at = {"email": "members"}
    several = "first"
    auth = ApiKey("X-Api-Key", "{api_key}")
    fields = {"loyaltyTier": "tier", "loyaltyPoints": "points"}


@hookimpl
def register_crm_sources(register: Register) -> None:
    register(LoyaltySource)
