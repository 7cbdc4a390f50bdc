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

import argparse
import json
import re
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from genesys_enrich.settings import ENV_PREFIX

from .batch import EXIT_OK, EXIT_USAGE

if TYPE_CHECKING:
    from genesys_enrich.loopback import FakeCrm, FakeGenesys


def add_fakes_command(commands: Any) -> None:
    """Register ``fakes`` on the command line's subcommands (it reads no settings)."""
    parser = commands.add_parser(
        "fakes",
        help="serve a fake Genesys Cloud and a fake CRM on 127.0.0.1 until Ctrl-C",
        description="Serve the demo's fake Genesys Cloud and fake CRM on 127.0.0.1 and print the "
        "environment variables that point genesys-enrich run at them. The fake CRM answers GET "
        '/customers/{id} and searches with GET /customers?field=value ({"results": [...]}, an '
        "empty list when nobody matches).",
    )
    parser.add_argument(
        "--customers",
        metavar="FILE",
        help="a JSON object of customer id to the record the fake CRM answers with "
        "(default: the demo's customers)",
    )
    parser.add_argument(
        "--source",
        default="rest",
        type=_source_name,
        metavar="NAME",
        help="the source whose settings the printed variables point at the fake CRM "
        "(default: rest)",
    )
    parser.add_argument(
        "--crm-rate-limit",
        type=_positive_int,
        metavar="N",
        help="answer 429 with X-RateLimit-Reset (a Unix time) beyond N lookups a minute",
    )
    parser.add_argument(
        "--env-file", metavar="FILE", help="also write the variables to FILE, as export lines"
    )
    parser.set_defaults(command=_fakes, needs_settings=False, settings=None, verbose=False)


def _positive_int(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        msg = f"must be a whole number of at least 1, got {text!r}"
        raise argparse.ArgumentTypeError(msg)
    return int(text)


def _source_name(text: str) -> str:
    if not re.fullmatch(r"[a-z][a-z0-9_]*", text):
        msg = f"must be a source's name, such as rest or acme_crm, got {text!r}"
        raise argparse.ArgumentTypeError(msg)
    return text


def _fakes(args: argparse.Namespace, settings: object) -> int:
    from genesys_enrich.loopback import FakeCrm, FakeGenesys  # only when asked for

    try:
        customers = read_customers(Path(args.customers)) if args.customers else None
    except ValueError as error:
        print(f"genesys-enrich: {error}", file=sys.stderr)
        return EXIT_USAGE
    with (
        FakeGenesys() as genesys,
        FakeCrm(customers, rate_limit=args.crm_rate_limit) as crm,
    ):
        variables = environment(genesys, crm, args.source)
        if args.env_file:
            exports = "".join(f"export {name}={value}\n" for name, value in variables.items())
            Path(args.env_file).write_text(exports, encoding="utf-8")
        announce(genesys, crm, variables, args.env_file, sys.stdout)
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            print("stopped", flush=True)
    return EXIT_OK


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
    env_file: str | None,
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
