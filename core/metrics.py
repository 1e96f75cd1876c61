"""Prometheus metrics. Names follow the deployment guide; every alert and dashboard uses only these.

The API serves them on ``/metrics``; each worker serves them on its own port
(``Settings.worker_metrics_port``). Histograms are in milliseconds, as their names say.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

_MS_BUCKETS = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000, 30000)

SCREENING_DURATION_MS = Histogram(
    "safety_screening_duration_ms", "Screening model inference time per event, normalisation and tokenisation included.",
    buckets=_MS_BUCKETS,
)
SCREENING_CONFIDENCE = Histogram(
    "safety_screening_confidence", "Distribution of the overall harm probability from screening.",
    buckets=(0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99),
)
REASONING_DURATION_MS = Histogram(
    "safety_reasoning_duration_ms", "LLM reasoning time per attempt, by outcome.", ["status"], buckets=_MS_BUCKETS,
)
LLM_TIMEOUT_TOTAL = Counter("safety_llm_timeout_total", "LLM calls that timed out.")
LLM_REQUESTS_TOTAL = Counter(
    "safety_llm_requests_total", "LLM calls by outcome (ok, timeout, rate_limited, server_error, invalid_output, ...).",
    ["status"],
)
LLM_COST_USD_TOTAL = Counter("safety_llm_cost_usd_total", "Estimated LLM spend in USD.")
EVENTS_PROCESSED_TOTAL = Counter(
    "safety_events_processed_total", "Cases recorded, by platform, path (clean/full) and decision.",
    ["platform", "path", "decision"],
)
ACTION_FAILED_TOTAL = Counter(
    "safety_action_failed_total", "Platform action attempts that failed, by connector and action.", ["connector", "action"],
)
ACTIONS_APPLIED_TOTAL = Counter(
    "safety_actions_applied_total", "Platform actions applied, by connector and action.", ["connector", "action"],
)
FALSE_POSITIVE_RATE = Gauge(
    "safety_false_positive_rate", "Overturned appeals divided by actioned cases over the last 7 days.",
)
STAGE_DURATION_MS = Histogram(
    "safety_stage_duration_ms", "Activity execution time by stage.", ["stage"], buckets=_MS_BUCKETS,
)
INGEST_REQUESTS_TOTAL = Counter(
    "safety_ingest_requests_total", "Ingest API answers by HTTP status.", ["status"],
)
INGEST_DURATION_MS = Histogram(
    "safety_ingest_duration_ms", "Ingest API handling time (validation to 202).", buckets=_MS_BUCKETS,
)
DEPENDENCY_DEGRADED_TOTAL = Counter(
    "safety_dependency_degraded_total", "Requests served in degraded mode because a dependency was down.", ["dependency"],
)
ACTIONS_UNCONFIRMED_TOTAL = Counter(
    "safety_actions_unconfirmed_total",
    "Platform actions whose interrupted call may or may not have landed and that the platform cannot read "
    "back (not repeated; a moderator checks), by connector and action.", ["connector", "action"],
)
SANCTION_CAP_REACHED_TOTAL = Counter(
    "safety_sanction_cap_reached_total", "Automated bans/timeouts withheld because the community's daily cap was reached.", ["platform", "action"],
)
