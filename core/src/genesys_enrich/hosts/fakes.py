"""``genesys-enrich fakes``: the fake Genesys Cloud and fake CRM, served until Ctrl-C.

The loopback fakes of ``genesys-enrich demo`` and the test kit, on their own, for a plugin under
development or a captured event: it prints their URLs and the environment variables that point
``genesys-enrich run`` at them (and writes them to ``--env-file`` for ``. FILE`` in another shell).
The fake CRM answers ``GET /customers/{id}`` with a customer, and searches with
``GET /customers?field=value``, ``{"results": [...]}``; ``--customers FILE`` gives it customers
of your own, ``--crm-rate-limit N`` makes it answer 429 with ``X-RateLimit-Reset`` beyond N
lookups a minute.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from genesys_enrich.settings import ENV_PREFIX

if TYPE_CHECKING:
    from genesys_enrich.loopback import FakeCrm, FakeGenesys


def serve_fakes(
    customers: Mapping[str, Mapping[str, Any]] | None,
    *,
    source: str,
    rate_limit: int | None,
    env_file: Path | None,
    out: TextIO,
) -> None:
    """Serve a fake Genesys Cloud and a fake CRM until Ctrl-C, after printing the variables that
    point genesys-enrich at them (and writing them to ``env_file``, as export lines).

    Args:
        customers: customer id to the record the fake CRM answers with; ``None`` for the demo's.
        source: the source whose settings the variables point at the fake CRM.
        rate_limit: lookups a minute the fake CRM answers before it answers 429.
    """
    from genesys_enrich.loopback import FakeCrm, FakeGenesys  # only when asked for

    with FakeGenesys() as genesys, FakeCrm(customers, rate_limit=rate_limit) as crm:
        variables = environment(genesys, crm, source)
        if env_file is not None:
            exports = "".join(f"export {name}={value}\n" for name, value in variables.items())
            env_file.write_text(exports, encoding="utf-8")
        announce(genesys, crm, variables, env_file, out)
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            print("stopped", file=out, flush=True)


def read_customers(path: Path) -> dict[str, dict[str, Any]]:
    """The fake CRM's customers from a JSON file: customer id to record.

    Raises:
        ValueError: the file cannot be read, or does not hold such an object; the message says
            which.
    """
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        msg = f"cannot read the customers file {path}: {error}"
        raise ValueError(msg) from None
    if not isinstance(data, dict) or not all(isinstance(v, dict) for v in data.values()):
        msg = (
            f"{path} must hold a JSON object of customer id to record, e.g. "
            '{"CUST-1001": {"email": "pat@example.com", "tier": "Gold"}}'
        )
        raise ValueError(msg)
    return data


def environment(genesys: FakeGenesys, crm: FakeCrm, source: str) -> dict[str, str]:
    """The variables that point genesys-enrich at the fakes: Genesys' settings, and the base URL
    and API key of ``source``."""
    plugin = f"{ENV_PREFIX}PLUGINS__{source.upper()}__"
    variables = {
        f"{ENV_PREFIX}GENESYS__API_URL": genesys.url,
        f"{ENV_PREFIX}GENESYS__LOGIN_URL": genesys.url,
        f"{ENV_PREFIX}GENESYS__CLIENT_ID": genesys.client_id,
        f"{ENV_PREFIX}GENESYS__CLIENT_SECRET": genesys.client_secret,
        f"{plugin}BASE_URL": crm.url,
    }
    if crm.api_key is not None:
        variables[f"{plugin}API_KEY"] = crm.api_key
    return variables


def announce(
    genesys: FakeGenesys,
    crm: FakeCrm,
    variables: dict[str, str],
    env_file: Path | None,
    out: TextIO,
) -> None:
    count = len(crm.customers)
    limit = "" if crm.rate_limit is None else f", {crm.rate_limit} lookups a minute"
    lines = [
        f"fake Genesys Cloud  {genesys.url}",
        f"fake CRM            {crm.url}  ({count} customer{'s' * (count != 1)}{limit})",
        "",
        "Point genesys-enrich at them, in another shell"
        + (f" (or `. {env_file}`):" if env_file else ":"),
        *(f"  export {name}={value}" for name, value in variables.items()),
        "",
        "Serving until Ctrl-C.",
    ]
    print("\n".join(lines), file=out, flush=True)
