"""Readable text for people at a terminal: outcomes, summaries, plugin listings."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Sequence

from genesys_enrich.models import Outcome, SourceStatus, Status
from genesys_enrich.plugins import PluginRegistry

from .summary import RunSummary

_STATUS_ORDER = (Status.ENRICHED, Status.PARTIAL, Status.SKIPPED, Status.FAILED)


def outcome_block(origin: str, outcome: Outcome, *, show_request: bool = False) -> str:
    """A few lines for one event: status, ids, reason, each field with the source it came from."""
    interaction = outcome.interaction_id or "-"
    retry = " (retryable)" if outcome.retryable else ""
    lines = [
        f"{outcome.status.value.upper():<9} {origin}  interaction {interaction}  "
        f"{outcome.duration_ms:.1f} ms",
        f"          {outcome.reason}{retry}",
    ]
    width = max((len(name) for name in outcome.fields), default=0)
    for name, value in outcome.fields.items():
        source = outcome.provenance.get(name, "?")
        lines.append(f"          {name:<{width}}  {json.dumps(value)}  <- {source}")
    for conflict in outcome.conflicts:
        offers = ", ".join(f"{src}={json.dumps(val)}" for src, val in conflict.values.items())
        lines.append(f"          conflict on {conflict.field}: kept {conflict.kept} ({offers})")
    if show_request and outcome.request is not None:
        request = outcome.request
        lines.append(f"          {request.method} {request.path}")
        lines.append(f"          {json.dumps(request.body)}")
    return "\n".join(lines)


def summary_line(outcomes: Iterable[Outcome]) -> str:
    counts = Counter(outcome.status for outcome in outcomes)
    total = sum(counts.values())
    parts = [f"{counts[status]} {status.value}" for status in _STATUS_ORDER if counts[status]]
    return f"{total} event{'s' if total != 1 else ''}: " + (", ".join(parts) or "none")


def summary_table(summary: RunSummary) -> str:
    """The end-of-run report: counts per status, latencies, each source's calls and errors."""
    counts = summary.statuses
    parts = [f"{counts[status]} {status.value}" for status in _STATUS_ORDER if counts[status]]
    total = summary.total
    lines = [f"{total} event{'s' if total != 1 else ''}: " + (", ".join(parts) or "none")]
    if total:
        latency = summary.latency.to_json()
        rows = [
            [status.value, str(counts[status]), f"{counts[status] / total:.1%}"]
            for status in _STATUS_ORDER
        ]
        lines += ["", table(["status", "events", "share"], rows)]
        lines.append(
            f"\nlatency per event: p50 {latency['p50']} ms, p95 {latency['p95']} ms, "
            f"max {latency['max']} ms"
        )
    if summary.sources:
        rows = []
        for name, stats in sorted(summary.sources.items()):
            ms = stats.latency.to_json()
            rows.append(
                [
                    name,
                    str(stats.calls),
                    str(stats.statuses[SourceStatus.FOUND]),
                    str(stats.statuses[SourceStatus.NO_MATCH]),
                    str(stats.errors),
                    str(stats.statuses[SourceStatus.TIMED_OUT]),
                    str(ms["p50"]),
                    str(ms["p95"]),
                    str(ms["max"]),
                ]
            )
        headers = ["source", "calls", "found", "no match", "errors", "timeouts"]
        lines += ["", table([*headers, "p50 ms", "p95 ms", "max ms"], rows)]
        cached = sum(stats.cached for stats in summary.sources.values())
        if cached:
            calls = sum(stats.calls for stats in summary.sources.values())
            lines.append(
                f"\nsource cache: {cached} of {calls} lookups answered from it "
                f"({cached / calls:.1%} hit rate)"
            )
    if summary.failed or summary.dead_letters:
        why = [f"{summary.retryable_failures} retryable"]
        if summary.misconfigured_failures:
            why.append(f"{summary.misconfigured_failures} misconfigured")
        short = summary.kept_partials
        also = f", {short} partial left short by a misconfigured source" if short else ""
        where = f" in {summary.dead_letter_path}" if summary.dead_letter_path else ""
        kept = (
            "a dry run keeps no dead letters"
            if summary.dry_run
            else f"{summary.dead_letters} kept{where}"
        )
        lines.append(f"\n{summary.failed} failed ({', '.join(why)}){also}; {kept}")
    if summary.interrupted:
        if summary.not_started is None:
            lines.append("interrupted: the rest of the input was not read")
        else:
            lines.append(f"interrupted: {summary.not_started} events were not started")
    return "\n".join(lines)


def table(headers: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    """A plain text table with columns as wide as their widest cell."""
    body = [list(map(str, row)) for row in rows]
    widths = [max(len(cell) for cell in column) for column in zip(headers, *body, strict=False)]
    lines = [
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in [list(headers), *body]
    ]
    lines.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(lines)


def plugins_table(registry: PluginRegistry, enabled: Iterable[str]) -> str:
    on = set(enabled)
    rows = []
    for info in sorted(registry.plugins.values(), key=lambda i: i.name):
        provides = [f"source:{n}" for n in info.sources] + [f"mapper:{n}" for n in info.mappers]
        rows.append(
            [
                info.name,
                f"{info.distribution or '-'} {info.version or ''}".strip(),
                info.status.value,
                "yes" if info.name in on else "no",
                ", ".join(hook.removeprefix("register_") for hook in info.hooks) or "-",
                ", ".join(provides) or "-",
                info.error or "",
            ]
        )
    headers = ["name", "distribution", "status", "enabled", "hooks", "provides", "error"]
    return table(headers, rows)
