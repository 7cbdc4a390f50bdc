"""A CRM source for Freshdesk: finds the contact by email, or by phone on either of its numbers.

``GET {base_url}/api/v2/contacts?email=...`` (a list) for an email, and the contact filter API
``GET {base_url}/api/v2/search/contacts?query="phone:'...' OR mobile:'...'"`` (``results``) for
a phone, written as digits only, as Freshdesk's examples store numbers. The API key is the
username of HTTP Basic auth, with ``X`` as the password. No contact is an empty list; deleted
contacts do not count; two contacts left (a shared number) are no match, never a guess. A 400
(a value Freshdesk will not search for) tries the next key; a 404 means a wrong ``base_url``.
Rate limits (429 with ``Retry-After``) are waited out within the lookup's budget. Settings live
under ``[plugins.freshdesk]``.
"""

from pydantic import SecretStr

from genesys_enrich import plugin

BY_NUMBER = "\"phone:'{value}' OR mobile:'{value}'\""


class FreshdeskConfig(plugin.RestSourceConfig):
    """``base_url`` is the helpdesk's, e.g. ``https://acme.freshdesk.com``."""

    api_key: SecretStr
    """An agent's API key (Profile settings > View API key)."""
    lookup_keys: tuple[str, ...] = ("email", "phone")


class FreshdeskContactSource(plugin.RestSource):
    """A Freshdesk contact's profile: name, email, numbers, company, job title, time zone."""

    name = "freshdesk"
    Config = FreshdeskConfig
    request = {
        "email": plugin.Get("/api/v2/contacts", {"email": "{value}"}),
        "phone": plugin.Get("/api/v2/search/contacts", {"query": BY_NUMBER}),
    }
    key_formats, records_at = {"phone": plugin.digits_only}, {"phone": "results"}
    auth = plugin.Basic("{api_key}", "X")
    exclude = {"deleted": {True}}
    no_match_statuses, next_key_statuses = frozenset(), frozenset({400})
    misconfigured_statuses = frozenset({401, 403, 404})
    error_code_at, error_message_at, request_id_header = "code", "message", "X-Request-Id"
    fields = ("id", "name", "email", "phone", "mobile", "company_id", "job_title", "time_zone")


@plugin.hookimpl
def register_crm_sources(register: plugin.Register) -> None:
    register(FreshdeskContactSource)
