"""The reasoning benchmark runs end to end (tiny run), so the published figure stays reproducible."""

from __future__ import annotations

from ops.bench.reasoning import run_reasoning_bench


async def test_reasoning_bench_reports_percentiles_and_outcomes() -> None:
    result = await run_reasoning_bench(cases=4, concurrency=4, latency_s=0.0, error_rate=0.0)
    assert result["cases"] == 4 and result["outcomes"] == {"ok": 4}
    assert 0 < result["reason_p50_ms"] <= result["reason_p95_ms"] <= result["reason_max_ms"]
