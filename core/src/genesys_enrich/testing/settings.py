"""Settings that point the core at the loopback fakes."""

from __future__ import annotations

from typing import Any

from genesys_enrich.loopback import FakeCrm, FakeGenesys
from genesys_enrich.settings import GenesysSettings, PipelineSettings, Settings


def settings_for(
    genesys: FakeGenesys | None = None,
    crm: FakeCrm | None = None,
    *,
    sources: tuple[str, ...] = ("rest",),
    mappers: tuple[str, ...] = ("fields",),
    plugins: dict[str, dict[str, Any]] | None = None,
    **pipeline: Any,
) -> Settings:
    """Settings for a test: the fakes' URLs and credentials, the given plugins, nothing from the
    environment or a settings file."""
    sections: dict[str, dict[str, Any]] = {name: dict(v) for name, v in (plugins or {}).items()}
    if crm is not None:
        sections["rest"] = {"base_url": crm.url, "api_key": crm.api_key} | sections.get("rest", {})
    genesys_section: dict[str, Any] = {}
    if genesys is not None:
        genesys_section = {
            "api_url": genesys.url,
            "login_url": genesys.url,
            "client_id": genesys.client_id,
            "client_secret": genesys.client_secret,
            # Pace like the fake enforces; a fake without a limit should not slow tests down.
            "requests_per_minute": (
                genesys.rate_limit * 60 / genesys.rate_window if genesys.rate_limit else 1e6
            ),
        }
    # model_construct: the sections are validated, but no environment variable leaks in.
    return Settings.model_construct(
        genesys=GenesysSettings.model_validate(genesys_section),
        pipeline=PipelineSettings.model_validate(
            {"sources": sources, "mappers": mappers, **pipeline}
        ),
        plugins=sections,
    )
