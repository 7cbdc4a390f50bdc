"""The ``genesys-enrich`` command: run events, list plugins, see a demo.

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
from genesys_enrich.scaffold import add_new_plugin_command
from genesys_enrich.settings import Settings, load_settings

from .batch import (
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_USAGE,
    STDOUT,
    BatchOptions,
    default_dead_letter_path,
    run_batch,
)
from .fakes import add_fakes_command
from .inputs import Item, Unreadable, count_events, input_reading, missing_inputs, read_events
from .report import plugins_table


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

    add_new_plugin_command(commands)
    add_fakes_command(commands)
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

    return asyncio.run(
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
    return asyncio.run(
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


if __name__ == "__main__":
    raise SystemExit(main())
