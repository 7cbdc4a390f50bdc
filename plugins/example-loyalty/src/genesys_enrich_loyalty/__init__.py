"""genesys-enrich source for a loyalty programme's members API.

Finds the member by the customer id an event carries (``GET /v1/members/{id}``) or, for email
conversations, by the sender's address (``GET /v1/members?email=...``), and contributes their
tier and points. Settings live under ``[plugins.loyalty]``.
"""

from __future__ import annotations

from collections.abc import Iterable

import httpx
from pydantic import SecretStr

from genesys_enrich import CrmSource, JSONValue, SourceError, hookimpl
from genesys_enrich.rest import Lookup, RestSource, RestSourceConfig, path_segment


class LoyaltyConfig(RestSourceConfig):
    api_key: SecretStr
    """Sent as the ``X-Api-Key`` header."""
    lookup_keys: tuple[str, ...] = ("customer_id", "email")


class LoyaltySource(RestSource):
    """A member's tier and points, found by customer id or email address."""

    name = "loyalty"
    Config = LoyaltyConfig
    config: LoyaltyConfig

    def build_request(self, key: str, value: str) -> Lookup:
        if key == "email":
            return Lookup("GET", "/v1/members", params={"email": value})
        return Lookup("GET", f"/v1/members/{path_segment(value)}")

    async def auth_headers(self) -> dict[str, str]:
        return {"X-Api-Key": self.config.api_key.get_secret_value()}

    def parse(self, response: httpx.Response) -> dict[str, JSONValue] | None:
        member = self.json_object(response)
        if "members" in member:  # an email search: a list, best match first
            if not member["members"]:
                return None
            member = member["members"][0]
        try:
            return {"loyaltyTier": member["tier"], "loyaltyPoints": member["points"]}
        except KeyError as missing:
            msg = f"answered a member without {missing}: check base_url points at /v1"
            raise SourceError(msg, retryable=False) from None


@hookimpl
def register_crm_sources() -> Iterable[type[CrmSource]]:
    return [LoyaltySource]
