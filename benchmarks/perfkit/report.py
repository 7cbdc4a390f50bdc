"""The figures of one ``perf.py`` run as a Markdown table and a plot."""

from __future__ import annotations

from pathlib import Path
from typing import Any

COLUMNS = (
    ("node", "Node.js stand-in"),
    ("httpx", "httpx stand-in"),
    ("before", "before"),
    ("ours", "ours"),
)
IN_FLIGHT = ("1", "4", "16", "64", "256")


def _format(value: float | None, unit: str) -> str:
    if value is None:
        return "—"
    if unit == "ms":
        return f"{value:.1f} ms" if value >= 10 else f"{value:.2f} ms"
    if unit == "/s":
        return f"{value:.0f}"
    return f"{value:.2f}"


def _ratio(ours: float | None, other: float | None) -> str:
    if ours is None or not other:
        return "—"
    return f"{ours / other:.2f}"


class Table:
    def __init__(self, present: set[str]) -> None:
        self.columns = [(key, title) for key, title in COLUMNS if key in present]
        self.ratios = [key for key in ("node", "httpx", "before") if key in present]
        titles = [title for _, title in self.columns]
        ratio_titles = [f"ours ÷ {dict(COLUMNS)[key]}" for key in self.ratios]
        header = ["measure", *titles, *ratio_titles]
        self.lines = [
            "| " + " | ".join(header) + " |",
            "|---|" + "---:|" * (len(header) - 1),
        ]

    def row(self, label: str, values: dict[str, float | None], unit: str) -> None:
        cells = [_format(values.get(key), unit) for key, _ in self.columns]
        ours = values.get("ours")
        cells += [_ratio(ours, values.get(key)) for key in self.ratios]
        self.lines.append("| " + " | ".join([label, *cells]) + " |")

    def text(self) -> str:
        return "\n".join(self.lines) + "\n"


def _pick(figures: dict[str, Any], key: str) -> dict[str, float | None]:
    return {variant: values.get(key) for variant, values in figures.items()}


def markdown(figures: dict[str, Any], *, limit_ms: float) -> str:
    """The table: every figure beside its baselines, with the ratios of ours to each."""
    table = Table(set(figures["cold"]["compiled"]) | set(figures["warm"]))
    for state, what in (("compiled", "`.pyc` compiled first"), ("uncompiled", "no `.pyc`")):
        cold = figures["cold"][state]
        table.row(f"cold start, whole process, {what}", _pick(cold, "total_ms"), "ms")
        table.row("  runtime start-up", _pick(cold, "runtime_ms"), "ms")
        table.row("  handler import", _pick(cold, "import_ms"), "ms")
        table.row("  first event", _pick(cold, "first_event_ms"), "ms")
    warm = figures["warm"]
    table.row("warm, fakes answering at once: p50 per event", _pick(warm, "p50_ms"), "ms")
    table.row("CPU per event, same run", _pick(warm, "cpu_ms"), "ms")
    latency = figures["latency"]
    table.row(
        f"warm, CRM 50 ms + write 30 ms: p50 (limit {limit_ms:.0f} ms)",
        _pick(latency, "p50_ms"),
        "ms",
    )
    table.row(
        "  the same ÷ the limit",
        {k: v / limit_ms for k, v in _pick(latency, "p50_ms").items() if v},
        "ratio",
    )
    concurrency = figures["concurrency"]
    for n in IN_FLIGHT:
        if n not in concurrency:
            continue
        ideal = int(n) / (limit_ms / 1000)
        rates = _pick(concurrency[n], "events_per_s")
        table.row(f"{n} in flight (SQS batches of {n}): events/s, ideal {ideal:.0f}", rates, "/s")
        table.row(
            "  the same ÷ ideal", {k: v / ideal for k, v in rates.items() if v is not None}, "ratio"
        )
        table.row("  p50 per event", _pick(concurrency[n], "p50_ms"), "ms")
        table.row("  CPU per event", _pick(concurrency[n], "cpu_ms"), "ms")
        failed = _pick(concurrency[n], "failed_share")
        if any(failed.values()):
            table.row("  share of events failed (timed out)", failed, "ratio")
    if "1" in concurrency:
        alone = _pick(concurrency["1"], "cpu_ms")
        for n in ("16", "64"):
            if n in concurrency:
                growth = {
                    k: v / alone[k]
                    for k, v in _pick(concurrency[n], "cpu_ms").items()
                    if v and alone.get(k)
                }
                table.row(f"CPU per event at {n} in flight ÷ at 1", growth, "ratio")
    if "run_64" in figures:
        rates = _pick(figures["run_64"], "events_per_s")
        table.row(f"`run --concurrency 64`: events/s, ideal {64000 / limit_ms:.0f}", rates, "/s")
    three = figures["three_crms"]
    table.row("three CRMs (50, 50, 40 ms) + write 30 ms: p50", _pick(three, "p50_ms"), "ms")
    table.row(
        "  the same ÷ the limit",
        {k: v / limit_ms for k, v in _pick(three, "p50_ms").items() if v},
        "ratio",
    )
    for n in ("64", "256"):
        if n in concurrency:
            table.row(
                f"fakes' CPU at {n} in flight, in cores (saturated near 1 each)",
                _pick(concurrency[n], "fake_cores"),
                "ratio",
            )
    text = table.text()
    if "repeat_callers" in figures:
        text += "\n" + "\n".join(repeat_callers(figures["repeat_callers"])) + "\n"
    return text


def repeat_callers(figures: dict[str, Any]) -> list[str]:
    """The source cache, off and on, for events from a small set of customers."""
    off, on = figures["ours"], figures["ours+cache"]
    lines = [
        "| repeat callers, CRM 50 ms + write 30 ms | cache off | cache on | on ÷ off |",
        "|---|---:|---:|---:|",
    ]
    for label, key, unit in (
        ("p50 per event", "p50_ms", "ms"),
        ("mean per event", "mean_ms", "ms"),
        ("CPU per event", "cpu_ms", "ms"),
    ):
        cells = [_format(off[key], unit), _format(on[key], unit), _ratio(on[key], off[key])]
        lines.append("| " + " | ".join([label, *cells]) + " |")
    lines.append(f"| source cache hit rate | — | {on['cache_hit_rate']:.0%} | |")
    return lines


def plot(figures: dict[str, Any], path: Path, *, limit_ms: float) -> str:
    """Events/s and p50 against events in flight, beside the ideal; says what it did."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return "no plot: matplotlib is missing (python3 -m uv run --group bench ...)"
    concurrency = figures["concurrency"]
    points = [n for n in IN_FLIGHT if n in concurrency]
    x = [int(n) for n in points]
    figure, (rate, latency) = plt.subplots(1, 2, figsize=(11, 4.2))
    rate.plot(x, [n / (limit_ms / 1000) for n in x], "k--", label="ideal (in flight / 80 ms)")
    latency.axhline(limit_ms, color="k", linestyle="--", label="the 80 ms limit")
    for key, title in COLUMNS:
        if key not in concurrency[points[0]]:
            continue
        rate.plot(x, [concurrency[n][key]["events_per_s"] for n in points], "o-", label=title)
        latency.plot(x, [concurrency[n][key]["p50_ms"] for n in points], "o-", label=title)
    for axes, label in ((rate, "events/s"), (latency, "p50 per event (ms)")):
        axes.set_xscale("log", base=2)
        axes.set_yscale("log")
        axes.set_xticks(x, [str(n) for n in x])
        axes.set_xlabel("events in flight")
        axes.set_ylabel(label)
        axes.grid(True, which="both", alpha=0.3)
        axes.legend()
    rate.set_title("throughput, CRM 50 ms + write 30 ms")
    latency.set_title("latency, same runs")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return f"plot written to {path}"
