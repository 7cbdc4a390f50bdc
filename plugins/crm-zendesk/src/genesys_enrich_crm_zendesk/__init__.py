"""A CRM source for Zendesk Support: finds the end user by external id, email or phone.

``GET {base_url}/api/v2/users/search.json`` with ``external_id=`` for the customer id, and a
search query (``email:"..."``, ``phone:"..."``) for the others, signed with an API token
(HTTP Basic ``{agent_email}/token:{api_token}``). No user is an empty ``users`` list; deleted
users (``active: false``) do not count; two users left (a shared phone number) are no match, never
a guess. A 404 means a wrong ``base_url``. Rate limits (429 with ``Retry-After``) are waited out
within the lookup's budget. Settings live under ``[plugins.zendesk]``.
"""

from pydantic import SecretStr

from genesys_enrich.plugin import Basic, Get, Register, RestSource, RestSourceConfig, hookimpl

USERS = "/api/v2/users/search.json"


def _phrase(value: str) -> str | None:
    """``value`` as a search-syntax phrase; ``None`` skips a value a quote would break out of."""
    return None if '"' in value else f'"{value}"'


class ZendeskConfig(RestSourceConfig):
    """``base_url`` is the account's, e.g. ``https://acme.zendesk.com``."""

    agent_email: str
    """The email address of the agent or admin the API token belongs to."""
    api_token: SecretStr
    """An API token (Admin Center > Apps and integrations > Zendesk API)."""
    lookup_keys: tuple[str, ...] = ("customer_id", "email", "phone")


class ZendeskUserSource(RestSource):
    """A Zendesk user's profile: name, contact details, organization, tags."""

    name = "zendesk"
    Config = ZendeskConfig
    request = {
        "customer_id": Get(USERS, {"external_id": "{value}"}),
        "email": Get(USERS, {"query": "email:{value}"}),
        "phone": Get(USERS, {"query": "phone:{value}"}),
    }
    key_formats = {"email": _phrase, "phone": _phrase}
    auth = Basic("{agent_email}/token", "{api_token}")
    records_at, exclude = "users", {"active": {False}}
    no_match_statuses, misconfigured_statuses = frozenset(), frozenset({401, 403, 404})
    error_code_at, error_message_at = "error", "description"
    request_id_header = "X-Zendesk-Request-Id"
    fields = ("id", "name", "email", "phone", "external_id", "organization_id", "tags", "time_zone")


@hookimpl
def register_crm_sources(register: Register) -> None:
    register(ZendeskUserSource)
