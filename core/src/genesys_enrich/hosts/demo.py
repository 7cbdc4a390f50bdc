"""``genesys-enrich demo``: the whole job on this machine, against loopback fakes.

A fake Genesys Cloud and a fake CRM start as real HTTP servers on 127.0.0.1, beside a SQLite
customer database for the ``sql`` source (when installed), so two CRMs' answers are merged; a
handful of events covering each outcome run through the same pipeline production uses; then the
demo reads the written contexts back from the fake Genesys to show they landed.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import TextIO

import httpx
from pydantic import SecretStr

from genesys_enrich.app import Enricher
from genesys_enrich.loopback import FakeCrm, FakeGenesys, customer_start_event, sample, seed_event
from genesys_enrich.settings import Settings

from .demo_database import sql_source_installed, write_demo_database
from .inputs import Item
from .report import outcome_block, summary_line
from .runner import run_events

KNOWN_INTERACTION = "8f7e6d5c-4b3a-2109-8765-4321fedcba09"


def demo_events() -> list[Item]:
    """One event for each thing worth seeing."""
    real = sample("customer-start-chat")
    return [
        Item(
            "known customer (seed shape)", seed_event("CUST-1001", interaction_id=KNOWN_INTERACTION)
        ),
        Item("unknown customer", seed_event("CUST-0000")),
        Item("no customer id (the seed's sample)", sample("seed-interaction")),
        Item(
            "malformed: interaction id is a path",
            seed_event("CUST-1001", interaction_id="../../oauth/token"),
        ),
        Item("real Genesys customer.start", real),
        Item("phone-only caller", customer_start_event(ani="tel:+15550100199")),
        Item("audit event (not handled)", sample("audit-user-presence")),
    ]


def demo_settings(
    settings: Settings, genesys: FakeGenesys, crm: FakeCrm, sql_url: str | None = None
) -> Settings:
    """The given settings, pointed at the fakes whatever the environment says, and at the demo's
    SQL database (after the REST CRM in priority) when ``sql_url`` is given."""
    plugins = {name: dict(values) for name, values in settings.plugins.items()}
    plugins["rest"] = plugins.get("rest", {}) | {"base_url": crm.url, "api_key": crm.api_key}
    sources = settings.pipeline.sources
    if sql_url is not None:
        plugins["sql"] = {"url": sql_url}
        sources = sources if "sql" in sources else (*sources, "sql")
    return settings.model_copy(
        update={
            "pipeline": settings.pipeline.model_copy(update={"sources": sources}),
            "genesys": settings.genesys.model_copy(
                update={
                    "api_url": genesys.url,
                    "login_url": genesys.url,
                    "client_id": genesys.client_id,
                    "client_secret": SecretStr(genesys.client_secret),
                }
            ),
            "plugins": plugins,
        }
    )


async def run_demo(settings: Settings, out: TextIO) -> int:
    with FakeGenesys() as genesys, FakeCrm() as crm, tempfile.TemporaryDirectory() as tmp:
        print(f"fake Genesys Cloud on {genesys.url}, fake CRM on {crm.url}", file=out)
        sql_url = None
        if sql_source_installed():
            sql_url = write_demo_database(Path(tmp) / "customers.db")
            print(f"SQL customer database for the sql source: {sql_url}", file=out)
        print(file=out)
        outcomes = []
        demo = demo_settings(settings, genesys, crm, sql_url)
        async with await Enricher.start(demo) as enricher:
            async for origin, outcome in run_events(enricher, demo_events(), concurrency=8):
                outcomes.append(outcome)
                print(outcome_block(origin, outcome), file=out)
                print(file=out)
            print(summary_line(outcomes), file=out)
            if enricher.genesys is not None:
                print(f"token requests: {enricher.genesys.tokens.fetch_count}\n", file=out)
        print("read back from the fake Genesys Cloud:", file=out)
        for line in _read_back(genesys):
            print(f"  {line}", file=out)
    return 0


def _read_back(genesys: FakeGenesys) -> list[str]:
    lines = []
    with httpx.Client(base_url=genesys.url) as http:
        token = http.post(
            "/oauth/token",
            data={"grant_type": "client_credentials"},
            auth=(genesys.client_id, genesys.client_secret),
        ).json()["access_token"]
        headers = {"Authorization": f"Bearer {token}"}
        for interaction_id in genesys.contexts:
            body = http.get(f"/api/v2/interactions/{interaction_id}", headers=headers).json()
            lines.append(
                f"GET /api/v2/interactions/{interaction_id} -> {json.dumps(body['context'])}"
            )
        for conversation_id in dict.fromkeys(c for c, _ in genesys.attributes):
            body = http.get(f"/api/v2/conversations/{conversation_id}", headers=headers).json()
            for participant in body["participants"]:
                lines.append(
                    f"GET /api/v2/conversations/{conversation_id} -> participant "
                    f"{participant['id']} attributes {json.dumps(participant['attributes'])}"
                )
    return lines
