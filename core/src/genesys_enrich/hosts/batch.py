"""One batch run for ``genesys-enrich run`` and ``replay``: events in; outcomes, dead letters,
progress and a summary out; Ctrl-C handled.

Every event taken ends in exactly one outcome line (with ``--output``), and in the dead-letter file
when it failed or is to be kept for another try (:attr:`~genesys_enrich.models.Outcome.keep`: a
partial write a misconfigured source left short, too). The first Ctrl-C stops taking events and
lets those in flight finish; a second one cuts them short, and they are dead-lettered as
interrupted. Either way the summary is printed and says how many events were not started.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import sys
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from genesys_enrich.app import Enricher
from genesys_enrich.dead_letters import DeadLetter, DeadLetterFile
from genesys_enrich.errors import ConfigError
from genesys_enrich.models import Outcome, Status
from genesys_enrich.settings import Settings

from .inputs import Item, Unreadable
from .progress import Progress
from .report import outcome_block, summary_table
from .runner import EventRunner
from .summary import RunSummary

STDOUT = Path("-")
"""``--output -``: the outcomes go to standard output."""


@dataclass(frozen=True)
class BatchOptions:
    """How to run and what to show."""

    concurrency: int
    output: Path | None = None
    dry_run: bool = False
    quiet: bool = False
    """No progress and no per-event blocks: only the summary."""
    json: bool = False
    """The summary as one JSON object on stdout instead of a table."""
    show_each: bool = False
    """Print each event's outcome block (always on for a dry run, unless quiet or json)."""
    log_outcomes: bool = False
    """Log each outcome as a record of ``genesys_enrich.outcome`` (``--log-format json``)."""


async def run_batch(
    settings: Settings,
    items: Iterator[Item | Unreadable],
    dead_letters: DeadLetterFile,
    options: BatchOptions,
    *,
    total: int | None,
    after_stop: Callable[[], int | None],
    out: TextIO | None = None,
    err: TextIO | None = None,
) -> RunSummary:
    """Run ``items``, report, and return what the run did (its :attr:`~RunSummary.ending` says
    whether some event failed or Ctrl-C stopped it).

    Args:
        items: the events; an iterator, so what is not taken stays in it after an interruption.
        dead_letters: where failed events go.
        total: how many events to expect, for the ETA; ``None`` if unknown.
        after_stop: called after an interruption to deal with the events not taken; returns how
            many there were, or ``None`` when they cannot be counted.
    """
    out = out or sys.stdout
    err = err or sys.stderr
    summary = RunSummary()
    summary.dead_letter_path = str(dead_letters.path)
    summary.output_path = str(options.output) if options.output else None
    show_each = (options.show_each or options.dry_run) and not (options.quiet or options.json)
    # Per-event blocks are progress enough, and a redrawn bar would garble them.
    quiet = options.quiet or show_each
    progress = None if quiet else Progress(err, total=total, terminal=err.isatty())
    with ExitStack() as files:
        files.enter_context(dead_letters)
        async with await Enricher.start(settings, dry_run=options.dry_run) as enricher:
            # Only once start-up succeeded: opening truncates what an earlier run wrote there.
            output = files.enter_context(_open_output(options.output)) if options.output else None
            runner = EventRunner(
                enricher, concurrency=options.concurrency, log_outcomes=options.log_outcomes
            )
            # Closed before the enricher, so no event in flight outlives its clients.
            with _interrupts(runner, progress, err):
                async with contextlib.aclosing(runner.run(items)) as outcomes:
                    async for item, outcome in outcomes:
                        summary.add(outcome)
                        if output is not None:
                            output.write(json.dumps(outcome.to_json()) + "\n")
                        if outcome.status is Status.FAILED or outcome.keep:
                            dead_letters.add(_dead_letter(item, outcome))
                        if show_each:
                            block = outcome_block(
                                item.origin, outcome, show_request=options.dry_run
                            )
                            print(block, file=out)
                        if progress is not None:
                            progress.update(summary.total, summary.failed)
        if runner.stopped:
            summary.interrupted = True
            summary.not_started = after_stop()
    summary.dead_letters = dead_letters.count
    if progress is not None:
        progress.finish(summary.total, summary.failed)
    print(json.dumps(summary.to_json()) if options.json else summary_table(summary), file=out)
    return summary


def _open_output(path: Path) -> contextlib.AbstractContextManager[TextIO]:
    if path == STDOUT:
        return contextlib.nullcontext(sys.stdout)  # left open: it is not ours to close
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        # A local file written line by line: not worth a thread per write.
        return path.open("w", encoding="utf-8")
    except OSError as error:
        msg = f"cannot write the output file {path}: {error.strerror}"
        raise ConfigError(msg) from None


def _dead_letter(item: Item | Unreadable, outcome: Outcome) -> DeadLetter:
    if isinstance(item, Unreadable):
        return DeadLetter.of(
            None, outcome, origin=item.origin, attempts=item.attempts + 1, text=item.text
        )
    return DeadLetter.of(item.event, outcome, origin=item.origin, attempts=item.attempts + 1)


@contextlib.contextmanager
def _interrupts(runner: EventRunner, progress: Progress | None, err: TextIO) -> Iterator[None]:
    """Ctrl-C once: stop taking events. Twice: abandon those in flight too."""
    loop = asyncio.get_running_loop()

    def say(text: str) -> None:
        if progress is not None:
            progress.say(text)
        else:
            print(text, file=err, flush=True)

    def on_interrupt() -> None:
        if not runner.stopped:
            runner.stop()
            say(
                f"interrupted: finishing {runner.in_flight} events in flight, taking no more "
                "(Ctrl-C again to abandon them to the dead-letter file)"
            )
        else:
            runner.abandon()
            say("abandoning the events in flight")

    try:
        loop.add_signal_handler(signal.SIGINT, on_interrupt)
    except (NotImplementedError, RuntimeError):  # no signal handlers here (Windows, a thread)
        yield
        return
    try:
        yield
    finally:
        loop.remove_signal_handler(signal.SIGINT)


def default_dead_letter_path(output: Path | None) -> Path:
    """``dead-letter.jsonl`` next to the output file, or in the working directory."""
    return (output.parent if output else Path()) / "dead-letter.jsonl"
