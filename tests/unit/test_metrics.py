"""Worker metrics: counters and histogram values, and the /metrics endpoint over real HTTP."""

from __future__ import annotations

import urllib.request

import pytest

from aiconsole.pipeline.metrics import WorkerMetrics


def test_counters_histogram_and_gauges_hold_what_was_observed() -> None:
    m = WorkerMetrics()
    m.observe_call(provider="gemini", seconds=0.2, error_kind=None)
    m.observe_call(provider="gemini", seconds=3.0, error_kind="timeout")
    m.observe_call(provider="gemini", seconds=0.05, error_kind="server_error")
    m.observe_recorded(provider="gemini", status="completed", cost_micros=1_500)
    m.observe_recorded(provider="gemini", status="completed", cost_micros=2_500)
    m.observe_recorded(provider="gemini", status="failed", cost_micros=0)
    m.set_queue_depth({"pending": 42})
    assert m.value("aiconsole_provider_latency_seconds_count", {"provider": "gemini"}) == 3
    assert m.value("aiconsole_provider_latency_seconds_sum", {"provider": "gemini"}) == pytest.approx(3.25)
    # Bucket bounds are the rollup latency buckets in seconds: 0.05 <= 0.05, 0.2 <= 0.25, 3.0 <= 5.0.
    assert m.value("aiconsole_provider_latency_seconds_bucket", {"provider": "gemini", "le": "0.05"}) == 1
    assert m.value("aiconsole_provider_latency_seconds_bucket", {"provider": "gemini", "le": "0.25"}) == 2
    assert m.value("aiconsole_provider_latency_seconds_bucket", {"provider": "gemini", "le": "2.5"}) == 2
    assert m.value("aiconsole_provider_latency_seconds_bucket", {"provider": "gemini", "le": "5.0"}) == 3
    assert m.value("aiconsole_provider_errors_total", {"provider": "gemini", "kind": "timeout"}) == 1
    assert m.value("aiconsole_provider_errors_total", {"provider": "gemini", "kind": "server_error"}) == 1
    assert m.value("aiconsole_photos_processed_total", {"provider": "gemini", "status": "completed"}) == 2
    assert m.value("aiconsole_photos_processed_total", {"provider": "gemini", "status": "failed"}) == 1
    assert m.value("aiconsole_cost_usd_total", {"provider": "gemini"}) == pytest.approx(0.004)
    assert m.value("aiconsole_queue_depth", {"status": "pending"}) == 42
    assert m.value("aiconsole_queue_depth", {"status": "processing"}) == 0


def test_two_workers_in_one_process_do_not_share_registries() -> None:
    a, b = WorkerMetrics(), WorkerMetrics()
    a.observe_recorded(provider="local", status="completed", cost_micros=0)
    assert a.value("aiconsole_photos_processed_total", {"provider": "local", "status": "completed"}) == 1
    assert b.value("aiconsole_photos_processed_total", {"provider": "local", "status": "completed"}) == 0


def test_metrics_endpoint_serves_prometheus_text() -> None:
    m = WorkerMetrics()
    m.observe_recorded(provider="local", status="needs_review", cost_micros=0)
    port = m.serve(0)
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
            body = resp.read().decode()
        assert resp.status == 200
        assert 'aiconsole_photos_processed_total{provider="local",status="needs_review"} 1.0' in body
        assert "# TYPE aiconsole_provider_latency_seconds histogram" in body
    finally:
        m.close()
