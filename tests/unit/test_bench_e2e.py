"""The pure parts of ``safety bench e2e``: arrival schedule, percentiles, backlog detection, report math."""

from __future__ import annotations

import math
import random

import pytest

from ops.bench.e2e import (
    PhaseResult,
    Sent,
    arrival_schedule,
    backlog_grew,
    build_report,
    choose_kinds,
    make_event,
    pending_series,
    percentile,
    slope,
)


def test_arrival_schedule_is_open_loop_at_the_exact_rate() -> None:
    offs = arrival_schedule(20, 3)
    assert len(offs) == 60
    assert offs[0] == 0 and offs[1] == pytest.approx(0.05) and offs[-1] == pytest.approx(2.95)
    gaps = {round(b - a, 9) for a, b in zip(offs, offs[1:], strict=False)}
    assert gaps == {0.05}  # evenly spaced: the offered rate does not depend on the answers
    assert len(arrival_schedule(0.5, 3)) == 2  # offsets 0 and 2; 4 is past the window
    assert arrival_schedule(7, 1) == [i / 7 for i in range(7)]
    assert arrival_schedule(0, 10) == [] and arrival_schedule(10, 0) == []


def test_percentile_nearest_rank() -> None:
    values = list(range(1, 101))  # 1..100
    random.Random(3).shuffle(values)
    assert percentile(values, 50) == 50
    assert percentile(values, 95) == 95
    assert percentile(values, 99) == 99
    assert percentile(values, 100) == 100
    assert percentile([7.0], 99) == 7.0
    assert math.isnan(percentile([], 50))
    assert percentile([10, 20, 30, 40], 50) == 20


def test_pending_series_counts_accepted_minus_completed() -> None:
    acc = [0.1, 0.2, 1.1, 2.5]
    done = [0.5, 2.2]
    assert pending_series(acc, done, 0.0, 3.0) == [(0.0, 0), (1.0, 1), (2.0, 2), (3.0, 2)]


def test_slope_least_squares() -> None:
    assert slope([(0, 1), (1, 3), (2, 5)]) == pytest.approx(2.0)
    assert slope([(0, 4), (1, 4), (2, 4)]) == 0
    assert slope([(1, 1)]) == 0


def test_backlog_detection_steady_vs_growing() -> None:
    rate = 20.0
    steady = [(float(t), 10 + (t % 2)) for t in range(30)]  # about rate x latency, flat
    grew, trend = backlog_grew(steady, rate, lost=0)
    assert not grew and abs(trend) < 0.5
    growing = [(float(t), 5 * t) for t in range(30)]  # falling behind by 5 events/s
    grew, trend = backlog_grew(growing, rate, lost=0)
    assert grew and trend == pytest.approx(5.0)
    # A warm-up ramp in the first half is not growth.
    ramp = [(float(t), min(t, 10) * 3) for t in range(30)]
    assert not backlog_grew(ramp, rate, lost=0)[0]
    # Any event without an outcome by the end of the drain counts as a growing backlog.
    assert backlog_grew(steady, rate, lost=1)[0]


def test_choose_kinds_exact_mix_and_deterministic() -> None:
    kinds = choose_kinds(200, 0.9, seed=5)
    assert kinds.count("clean") == 180 and kinds.count("risky") == 20
    assert kinds == choose_kinds(200, 0.9, seed=5)
    assert kinds != sorted(kinds)  # shuffled, not all clean first
    ev = make_event("risky", 3, "run", random.Random(0))
    assert ev["message_id"] == "bench-run-3" and ev["event_type"] == "message" and ev["content"]


def _sent(kind: str, t: float, ingest_ms: float, outcome_s: float | None, path: str | None = None) -> Sent:
    return Sent(kind=kind, sent_at=t, accepted_at=t + ingest_ms / 1000, ingest_ms=ingest_ms, status_url="/x",
                completed_at=None if outcome_s is None else t + outcome_s, decision="allow" if outcome_s else None,
                path=None if outcome_s is None else path or ("clean" if kind == "clean" else "full"))


def test_build_report_math() -> None:
    events = [_sent("clean", 1000 + i * 0.1, 10 + i, 0.2) for i in range(9)]
    events.append(_sent("risky", 1000.9, 50, 3.0))
    events.append(Sent(kind="clean", sent_at=1001.0, error="ingest 503"))  # never accepted
    main = PhaseResult(events=events, send_start=1000.0, send_end=1001.0, cpu_s=1.0 + 0.5, wall_s=10.0)
    clean = PhaseResult(events=[_sent("clean", 2000 + i, 10, 0.1) for i in range(10)], cpu_s=0.3, wall_s=2.0)
    naive = {"n": 10, "failed": 0, "cpu_s": 0.6, "wall_s": 2.0}
    rep = build_report(main, rate=10, duration_s=1.0, idle_cpu_per_s=0.05, clean_phase=clean, naive=naive)
    assert rep["sent"] == 11 and rep["accepted"] == 10 and rep["not_accepted"] == 1
    assert rep["errors"] == {"ingest 503": 1}
    assert rep["events_per_s"] == 10.0
    assert rep["ingest_p50_ms"] == 14.0 and rep["ingest_p99_ms"] == 50.0
    assert rep["clean_p50_ms"] == pytest.approx(200.0, abs=0.2) and rep["risky_p99_ms"] == pytest.approx(3000, abs=1)
    # CPU: (1.5 s - 0.05 s/s idle x 10 s) / 10 events = 100 ms; clean (0.3 - 0.1) / 10 = 20; naive (0.6 - 0.1) / 10 = 50
    assert rep["temporal_cpu_ms_per_event"] == pytest.approx(100.0)
    assert rep["temporal_cpu_ms_per_clean_event"] == pytest.approx(20.0)
    assert rep["naive_temporal_cpu_ms_per_workflow"] == pytest.approx(50.0)
    assert rep["naive_ratio"] == pytest.approx(0.4)
    assert rep["lost"] == 0 and rep["backlog_grew"] is False


def test_build_report_counts_lost_and_classifies_by_outcome_path() -> None:
    events = [_sent("clean", 1000 + i * 0.1, 10, 0.2) for i in range(5)]
    events.append(_sent("clean", 1000.5, 10, 2.0, path="full"))  # sent as clean, screened risky
    events.append(_sent("risky", 1000.6, 10, None))  # accepted, no outcome by the end of the drain
    main = PhaseResult(events=events, send_start=1000.0, send_end=1001.0, cpu_s=None, wall_s=5.0)
    rep = build_report(main, rate=7, duration_s=1.0, idle_cpu_per_s=0.0)
    assert rep["lost"] == rep["unfinished_at_drain"] == 1 and rep["backlog_grew"] is True
    late = build_report(main, rate=7, duration_s=1.0, idle_cpu_per_s=0.0, unknown_after_drain=0)
    assert late["unfinished_at_drain"] == 1 and late["lost"] == 0 and late["backlog_grew"] is True
    assert rep["clean_n"] == 5 and rep["risky_n"] == 2  # the lost one counts by what it was sent as
    assert rep["risky_p50_ms"] == pytest.approx(2000, abs=1)
    assert rep["temporal_cpu_ms_per_event"] is None and rep["naive_ratio"] is None


def test_json_keys_the_cli_promises() -> None:
    main = PhaseResult(events=[_sent("clean", 1.0, 5, 0.1)], send_start=1.0, send_end=2.0, cpu_s=0.1, wall_s=1.0)
    rep = build_report(main, rate=1, duration_s=1, idle_cpu_per_s=0.0)
    for key in ("events_per_s", "ingest_p50_ms", "ingest_p99_ms", "clean_p50_ms", "clean_p95_ms", "clean_p99_ms",
                "risky_p50_ms", "risky_p95_ms", "risky_p99_ms", "temporal_cpu_ms_per_event",
                "naive_temporal_cpu_ms_per_workflow", "naive_ratio", "backlog_grew", "lost"):
        assert key in rep, key
