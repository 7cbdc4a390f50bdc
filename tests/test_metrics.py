"""The EMF documents of an invocation: layout, the 100-value limit, one line each on stdout."""

from __future__ import annotations

import json

import pytest

from genesys_enrich.metrics import InvocationMetrics, MetricsSettings
from genesys_enrich.models import Outcome, SourceResult, SourceStatus, Status
from genesys_enrich.telemetry import EventTrace


def lookup(source: str, status: SourceStatus, ms: float) -> SourceResult:
    return SourceResult(source, status, ms)


def test_more_than_100_values_of_a_metric_spill_into_further_documents() -> None:
    """EMF takes at most 100 values of a metric per document: 250 lookups make three documents for
    the source, the counts in the first only, every latency value exactly once."""
    metrics = InvocationMetrics(MetricsSettings(service="svc"))
    for n in range(250):
        status = SourceStatus.TIMED_OUT if n % 50 == 0 else SourceStatus.FOUND
        outcome = Outcome(Status.ENRICHED, "wrote", sources=(lookup("crm", status, float(n)),))
        metrics.add(outcome, EventTrace(write_ms=1.0))
    documents = metrics.documents(timestamp_ms=1_700_000_000_000)
    service = [d for d in documents if "Source" not in d]
    source = [d for d in documents if d.get("Source") == "crm"]
    assert [len(d["EventLatency"]) for d in service] == [100, 100, 50]
    assert [len(d["SourceLatency"]) for d in source] == [100, 100, 50]
    assert sorted(v for d in source for v in d["SourceLatency"]) == [float(n) for n in range(250)]
    assert (source[0]["SourceLookups"], source[0]["SourceErrors"]) == (250, 5)
    assert (source[0]["SourceTimeouts"], "SourceLookups" in source[1]) == (5, False)
    for document in documents:
        declared = [m["Name"] for m in document["_aws"]["CloudWatchMetrics"][0]["Metrics"]]
        assert declared == [k for k in document if k not in ("_aws", "Service", "Source")]
        assert document["_aws"]["Timestamp"] == 1_700_000_000_000


def test_emit_prints_one_compact_json_line_per_document(capsys: pytest.CaptureFixture[str]) -> None:
    """CloudWatch reads EMF from log lines: each document is one line on stdout."""
    metrics = InvocationMetrics(MetricsSettings(namespace="Custom", service="svc"), cold_start=True)
    metrics.add(Outcome(Status.SKIPPED, "no customer"))
    metrics.emit()
    [line] = capsys.readouterr().out.splitlines()
    document = json.loads(line)
    assert document["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "Custom"
    assert (document["Events"], document["EventsSkipped"], document["ColdStart"]) == (1, 1, 1)
    assert "EventLatency" in document
    assert "GenesysWriteLatency" not in document  # no write, no value: not declared either
