"""The ``genesys-enrich`` command: run events, list plugins, see a demo.

Exit codes: 0 when no event failed, 1 when some did, 2 for usage, settings or plugin errors.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Sequence
from contextlib import ExitStack
from pathlib import Path
from typing import TextIO

from genesys_enrich.app import Enricher
from genesys_enrich.errors import ConfigError, PluginError
from genesys_enrich.logs import configure
from genesys_enrich.models import Outcome, Status
from genesys_enrich.plugins import discover
from genesys_enrich.scaffold import add_new_plugin_command
from genesys_enrich.settings import Settings, load_settings

from .inputs import read_events
from .report import outcome_block, plugins_table, summary_line
from .runner import run_events

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    configure(json_lines=False, level="DEBUG" if args.verbose else "WARNING")
    try:
        settings = load_settings(args.settings)
        return int(args.command(args, settings))
    except (ConfigError, PluginError) as error:
        print(f"genesys-enrich: {error}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return 130


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="genesys-enrich",
        description="Enrich Genesys Cloud interactions with CRM data.",
    )
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--settings", metavar="FILE", help="settings TOML file (default: ./settings.toml)"
    )
    common.add_argument("-v", "--verbose", action="store_true", help="log debug details to stderr")
    commands = parser.add_subparsers(required=True, metavar="COMMAND")

    run = commands.add_parser(
        "run",
        parents=[common],
        help="process events from files or stdin",
        description="Process EventBridge events: JSON files (one event or a list), JSONL files, "
        "directories of them, or - for stdin.",
    )
    run.add_argument("events", nargs="+", metavar="EVENTS")
    run.add_argument(
        "--dry-run", action="store_true", help="compute and print each patch; write nothing"
    )
    run.add_argument("--output", metavar="FILE", help="write one JSON outcome per line to FILE")
    run.add_argument(
        "--concurrency", type=int, metavar="N", help="events in flight (default: settings)"
    )
    run.add_argument("--quiet", action="store_true", help="print only the summary")
    run.set_defaults(command=_run)

    plugins = commands.add_parser("plugins", parents=[common], help="list installed plugins")
    plugins.add_argument("--json", action="store_true", help="machine-readable output")
    plugins.set_defaults(command=_plugins)

    demo = commands.add_parser(
        "demo",
        parents=[common],
        help="run sample events against local fake Genesys and CRM servers",
    )
    demo.set_defaults(command=_demo)

    add_new_plugin_command(commands)
    return parser


def _run(args: argparse.Namespace, settings: Settings) -> int:
    concurrency = args.concurrency or settings.pipeline.concurrency
    return asyncio.run(_run_async(args, settings, max(1, concurrency), sys.stdout))


async def _run_async(
    args: argparse.Namespace, settings: Settings, concurrency: int, out: TextIO
) -> int:
    outcomes: list[Outcome] = []
    with ExitStack() as files:
        # A local file written line by line: not worth a thread per write.
        output = files.enter_context(Path(args.output).open("w")) if args.output else None  # noqa: ASYNC230
        async with await Enricher.start(settings, dry_run=args.dry_run) as enricher:
            items = read_events(args.events, sys.stdin)
            async for origin, outcome in run_events(enricher, items, concurrency=concurrency):
                outcomes.append(outcome)
                if output is not None:
                    output.write(json.dumps(outcome.to_json()) + "\n")
                if not args.quiet:
                    print(outcome_block(origin, outcome, show_request=args.dry_run), file=out)
    print(summary_line(outcomes), file=out)
    return EXIT_FAILED if any(o.status is Status.FAILED for o in outcomes) else EXIT_OK


def _plugins(args: argparse.Namespace, settings: Settings) -> int:
    registry = discover()
    enabled = settings.pipeline.enabled_plugins
    if args.json:
        listing = [info.to_json(info.name in enabled) for info in registry.plugins.values()]
        print(json.dumps(listing, indent=2))
    else:
        print(plugins_table(registry, enabled))
    return EXIT_OK


def _demo(args: argparse.Namespace, settings: Settings) -> int:
    from .demo import run_demo  # the fakes are only imported when asked for

    return asyncio.run(run_demo(settings, sys.stdout))


if __name__ == "__main__":
    raise SystemExit(main())
