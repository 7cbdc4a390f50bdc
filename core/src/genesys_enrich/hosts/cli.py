"""The ``genesys-enrich`` command: run events, list plugins, see a demo, serve the fakes, write a
new plugin.

Exit codes: 0 when no event failed, 1 when some did, 2 for usage, settings or plugin errors, 130
when Ctrl-C stopped a run early.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import re
import sys
from collections.abc import Iterator, Sequence
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import TextIO

from genesys_enrich.dead_letters import DeadLetter, DeadLetterFile, read_dead_letters
from genesys_enrich.decoding import Undecodable, decode_json
from genesys_enrich.errors import ConfigError, PluginError
from genesys_enrich.logs import configure
from genesys_enrich.plugins import discover
from genesys_enrich.scaffold import BASES, ScaffoldError, next_steps, write_plugin
from genesys_enrich.settings import Settings, load_settings

from .batch import STDOUT, BatchOptions, default_dead_letter_path, run_batch
from .fakes import read_customers, serve_fakes
from .inputs import Item, Unreadable, count_events, input_reading, missing_inputs, read_events
from .report import plugins_table
from .summary import Ending

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130
"""The command's exit codes (see the module's docstring)."""
_EXIT_CODES = {
    Ending.DONE: EXIT_OK,
    Ending.SOME_FAILED: EXIT_FAILED,
    Ending.INTERRUPTED: EXIT_INTERRUPTED,
}


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    json_logs = getattr(args, "log_format", "text") == "json"
    quiet = "INFO" if json_logs else "WARNING"  # JSON logs include the outcome lines, at INFO
    configure(json_lines=json_logs, level="DEBUG" if args.verbose else quiet)
    try:
        with _retry_logs(shown=args.verbose):
            settings = load_settings(args.settings) if args.needs_settings else None
            code = int(args.command(args, settings))
            sys.stdout.flush()  # a closed pipe shows here, not in a traceback at exit
            return code
    except (ConfigError, PluginError) as error:
        print(f"genesys-enrich: {error}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # The reader went away (`genesys-enrich plugins | head`): not an error worth a traceback.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_FAILED


@contextlib.contextmanager
def _retry_logs(*, shown: bool) -> Iterator[None]:
    """Each scheduled retry is logged; a batch would print them by the hundred, and its summary
    already counts each source's errors. Hidden unless -v, and only while the command runs."""
    loggers = [logging.getLogger(name) for name in ("stamina", "genesys_enrich.retry")]
    saved = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.DEBUG if shown else logging.ERROR)
    try:
        yield
    finally:
        for logger, level in zip(loggers, saved, strict=True):
            logger.setLevel(level)


_NO_SETTINGS = {"needs_settings": False, "settings": None, "verbose": False}
"""The defaults of the commands that read no settings: ``new-plugin`` and ``fakes``."""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="genesys-enrich",
        description="Enrich Genesys Cloud interactions with CRM data.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    parser.set_defaults(needs_settings=True)
    _global_options(parser)
    # The same options after the command; SUPPRESS keeps a value given before it.
    common = argparse.ArgumentParser(add_help=False, argument_default=argparse.SUPPRESS)
    _global_options(common)
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
        "--dry-run",
        action="store_true",
        help="compute and print each patch; write nothing to Genesys, keep no dead letters",
    )
    run.add_argument(
        "--dead-letter",
        metavar="FILE",
        help="append failed events here, whole, for replay (default: dead-letter.jsonl next to "
        "--output FILE, or in the current directory)",
    )
    _batch_arguments(run)
    run.set_defaults(command=_run)

    replay = commands.add_parser(
        "replay",
        parents=[common],
        help="run the events of a dead-letter file again",
        description="Run the events of a dead-letter file again and rewrite it with those that "
        "still fail, their attempt count one higher.",
    )
    replay.add_argument("file", metavar="FILE", help="a dead-letter file written by run")
    _batch_arguments(replay)
    replay.set_defaults(command=_replay)

    plugins = commands.add_parser("plugins", parents=[common], help="list installed plugins")
    plugins.add_argument("--json", action="store_true", help="machine-readable output")
    plugins.set_defaults(command=_plugins)

    demo = commands.add_parser(
        "demo",
        parents=[common],
        help="run sample events against local fake Genesys and CRM servers",
    )
    demo.set_defaults(command=_demo)

    new_plugin = commands.add_parser(
        "new-plugin",
        help="write a new CRM source plugin, ready to test",
        description="Write a CRM source plugin: its entry point, a source, tests using the test "
        "kit and the conformance suite, and a README. Under the plugins/ folder of a clone it "
        "joins the uv workspace as plugins/crm-NAME; elsewhere it is a standalone package.",
    )
    new_plugin.add_argument("name", metavar="NAME", help="the plugin's short name, e.g. loyalty")
    new_plugin.add_argument(
        "--dir", default=".", metavar="DIR", help="where to create it (default: here)"
    )
    new_plugin.add_argument(
        "--base",
        choices=BASES,
        default="RestSource",
        help="RestSource for an HTTP CRM (default, a declaration); CrmSource (async def lookup) "
        "or BlockingCrmSource (a plain def lookup, run in threads) for anything else",
    )
    new_plugin.set_defaults(command=_new_plugin, **_NO_SETTINGS)

    fakes = commands.add_parser(
        "fakes",
        help="serve a fake Genesys Cloud and a fake CRM on 127.0.0.1 until Ctrl-C",
        description="Serve the demo's fake Genesys Cloud and fake CRM on 127.0.0.1 and print the "
        "environment variables that point genesys-enrich run at them. The fake CRM answers GET "
        '/customers/{id} and searches with GET /customers?field=value ({"results": [...]}, an '
        "empty list when nobody matches).",
    )
    fakes.add_argument(
        "--customers",
        metavar="FILE",
        help="a JSON object of customer id to the record the fake CRM answers with "
        "(default: the demo's customers)",
    )
    fakes.add_argument(
        "--source",
        default="rest",
        type=_source_name,
        metavar="NAME",
        help="the source whose settings the printed variables point at the fake CRM "
        "(default: rest)",
    )
    fakes.add_argument(
        "--crm-rate-limit",
        type=_positive_int,
        metavar="N",
        help="answer 429 with X-RateLimit-Reset (a Unix time) beyond N lookups a minute",
    )
    fakes.add_argument(
        "--env-file", metavar="FILE", help="also write the variables to FILE, as export lines"
    )
    fakes.set_defaults(command=_fakes, **_NO_SETTINGS)
    return parser


def _global_options(parser: argparse.ArgumentParser) -> None:
    """Options every command takes, before or after its name."""
    parser.add_argument(
        "--settings", metavar="FILE", help="settings TOML file (default: ./settings.toml)"
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug details to stderr")
    parser.add_argument(
        "-q",
        "--quiet",
        action="store_true",
        help="no progress, no per-event output: only the summary",
    )
    parser.add_argument(
        "--log-format",
        choices=("text", "json"),
        help="json: logs as JSON lines on stderr, with one line per event's outcome, as in Lambda",
    )


def _version() -> str:
    try:
        return version("genesys-enrich")
    except PackageNotFoundError:  # run from a source tree that was never installed
        return "unknown"


def _batch_arguments(command: argparse.ArgumentParser) -> None:
    command.add_argument(
        "--output",
        metavar="FILE",
        help="write one JSON outcome per line to FILE; - for stdout (the summary then goes to "
        "stderr)",
    )
    command.add_argument(
        "--concurrency",
        type=_positive_int,
        metavar="N",
        help="events in flight at once (default: [pipeline] concurrency)",
    )
    command.add_argument(
        "--json", action="store_true", help="print the summary as one JSON object on stdout"
    )


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        msg = f"must be a whole number of at least 1, got {text!r}"
        raise argparse.ArgumentTypeError(msg)
    return value


def _source_name(text: str) -> str:
    if not re.fullmatch(r"[a-z][a-z0-9_]*", text):
        msg = f"must be a source's name, such as rest or acme_crm, got {text!r}"
        raise argparse.ArgumentTypeError(msg)
    return text


def _run(args: argparse.Namespace, settings: Settings) -> int:
    if missing := missing_inputs(args.events):
        print(f"genesys-enrich: no such file or directory: {', '.join(missing)}", file=sys.stderr)
        return EXIT_USAGE
    output = _output(args)
    dead_letters = (
        Path(args.dead_letter)
        if args.dead_letter
        else default_dead_letter_path(None if output == STDOUT else output)
    )
    if not args.dry_run and (source := input_reading(args.events, dead_letters)) is not None:
        print(
            f"genesys-enrich: the dead-letter file {dead_letters} is also an input ({source}): "
            "failed events would be appended to the file being read. Run its events again with "
            f"`genesys-enrich replay {dead_letters}`, or give another --dead-letter FILE.",
            file=sys.stderr,
        )
        return EXIT_USAGE
    items = read_events(args.events, sys.stdin)
    reads_terminal = "-" in args.events and sys.stdin.isatty()

    def count_not_started() -> int | None:
        return None if reads_terminal else sum(1 for _ in items)

    summary = asyncio.run(
        run_batch(
            settings,
            items,
            DeadLetterFile(dead_letters, dry_run=args.dry_run),
            _options(args, settings, output),
            total=count_events(args.events),
            after_stop=count_not_started,
            out=_summary_stream(output),
        )
    )
    return _EXIT_CODES[summary.ending]


def _replay(args: argparse.Namespace, settings: Settings) -> int:
    path = Path(args.file)
    if not path.is_file():
        print(f"genesys-enrich: dead-letter file {path} does not exist", file=sys.stderr)
        return EXIT_USAGE
    letters = read_dead_letters(path)
    items = (replay_item(number, letter, path) for number, letter in letters)
    rewritten = DeadLetterFile(path, replace=True)

    def keep_not_started() -> int:
        kept = 0
        for _, letter in letters:  # the ones never taken go back unchanged
            rewritten.add(letter)
            kept += 1
        return kept

    output = _output(args)
    summary = asyncio.run(
        run_batch(
            settings,
            items,
            rewritten,
            _options(args, settings, output),
            total=count_events([str(path)]),
            after_stop=keep_not_started,
            out=_summary_stream(output),
        )
    )
    return _EXIT_CODES[summary.ending]


def replay_item(number: int, letter: DeadLetter, path: Path) -> Item | Unreadable:
    """A dead letter as input again; text that was not JSON is decoded again (it may be fixed)."""
    origin = letter.origin or f"{path}:{number}"
    if letter.event is None and letter.text is not None:
        try:
            return Item(origin, decode_json(letter.text), letter.attempts)
        except Undecodable as error:
            reason = f"{origin} is not JSON: {error}"
            return Unreadable(origin, reason, letter.text, letter.attempts)
    return Item(origin, letter.event, letter.attempts)


def _output(args: argparse.Namespace) -> Path | None:
    return Path(args.output) if args.output else None


def _summary_stream(output: Path | None) -> TextIO:
    """Where the summary and per-event blocks go: stderr when stdout carries the outcomes."""
    return sys.stderr if output == STDOUT else sys.stdout


def _options(args: argparse.Namespace, settings: Settings, output: Path | None) -> BatchOptions:
    return BatchOptions(
        concurrency=args.concurrency or settings.pipeline.concurrency,
        output=output,
        dry_run=getattr(args, "dry_run", False),
        quiet=args.quiet,
        json=args.json,
        show_each=args.verbose,
        log_outcomes=getattr(args, "log_format", None) == "json",
    )


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


def _new_plugin(args: argparse.Namespace, settings: None) -> int:
    try:
        written = write_plugin(args.name, Path(args.dir), args.base)
    except ScaffoldError as error:
        print(f"genesys-enrich: {error}", file=sys.stderr)
        return EXIT_USAGE
    print(next_steps(written))
    return EXIT_OK


def _fakes(args: argparse.Namespace, settings: None) -> int:
    try:
        customers = read_customers(Path(args.customers)) if args.customers else None
    except ValueError as error:
        print(f"genesys-enrich: {error}", file=sys.stderr)
        return EXIT_USAGE
    serve_fakes(
        customers,
        source=args.source,
        rate_limit=args.crm_rate_limit,
        env_file=Path(args.env_file) if args.env_file else None,
        out=sys.stdout,
    )
    return EXIT_OK


if __name__ == "__main__":
    raise SystemExit(main())
