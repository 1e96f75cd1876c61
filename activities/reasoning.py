"""The reasoning activity: ask an OpenAI-compatible LLM for a structured verdict on one case.

Contract with the moderation workflow (it depends on these exactly):

* No endpoint configured -> ``ReasonResult(status=UNAVAILABLE)``; budget for the UTC day spent ->
  ``ReasonResult(status=BUDGET_EXHAUSTED)``. Neither raises: the workflow sends the case to a person.
* Every failure of the call itself raises ``ApplicationError`` with a ``type`` from ``LLMErrorType``.
  Retryable types are retried by Temporal under the workflow's retry policy (the OpenAI client's own
  retries are off, so one activity attempt is exactly one HTTP request). Non-retryable types mean a
  configuration problem that retrying cannot fix.
* A success is ``status=OK`` with the verdict, the policy version judged against (its SHA-256 prefix is
  in ``detail``), token counts, estimated cost and duration.

Spend is charged to the daily budget for every response that reported usage, including responses whose
output turned out to be invalid, because the provider bills those tokens too.
"""

from __future__ import annotations

import asyncio
import email.utils
import logging
import threading
import time
from collections.abc import Callable, Mapping
from datetime import UTC, date, datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Any, Protocol, cast

import openai
import redis.asyncio
import redis.exceptions
from openai.types.chat import ChatCompletion, ChatCompletionMessageParam
from openai.types.shared_params import ResponseFormatJSONSchema
from pydantic import ValidationError
from temporalio import activity
from temporalio.exceptions import ApplicationError

from core.metrics import LLM_COST_USD_TOTAL, LLM_REQUESTS_TOTAL, LLM_TIMEOUT_TOTAL, REASONING_DURATION_MS
from core.policies import PolicyDoc, PolicyNotFoundError, load_policy
from core.settings import LLMSettings
from domain.models import LLMVerdict, ReasonInput, ReasonResult, ReasonStatus
from domain.prompts import build_messages
from workflows import contract

__all__ = [
    "MAX_RETRY_AFTER",
    "UNCONFIGURED_DETAIL",
    "BudgetStore",
    "BudgetStoreError",
    "InMemoryBudgetStore",
    "LLMErrorType",
    "ReasoningActivities",
    "RedisBudgetStore",
    "verdict_json_schema",
]

logger = logging.getLogger(__name__)

UNCONFIGURED_DETAIL = (
    "no LLM endpoint configured: set SAFETY_LLM__BASE_URL (or OPENAI_BASE_URL) and SAFETY_LLM__API_KEY"
)
# A provider asking us to wait longer than this is treated as asking for this long: the workflow's
# deadline is short, and a longer wait would only turn into a review anyway.
MAX_RETRY_AFTER = timedelta(seconds=30)
# How much of a model output or provider message may appear in an error message (and so in history).
_EXCERPT_CHARS = 120


class LLMErrorType(StrEnum):
    """``ApplicationError.type`` values raised by ``reason_about_case``; the workflow matches on them."""

    TIMEOUT = "LLMTimeout"  # retryable
    UNAVAILABLE = "LLMUnavailable"  # retryable: connection refused/reset, DNS
    RATE_LIMITED = "LLMRateLimited"  # retryable, with next_retry_delay from Retry-After when given
    SERVER_ERROR = "LLMServerError"  # retryable: 5xx (and 409)
    INVALID_OUTPUT = "LLMInvalidOutput"  # retryable: not JSON, or not a valid LLMVerdict
    BAD_REQUEST = "LLMBadRequest"  # non-retryable: 400/404/413/422 and other 4xx
    AUTH_ERROR = "LLMAuthError"  # non-retryable: 401/403
    POLICY_NOT_FOUND = "PolicyNotFound"  # non-retryable: ReasonInput.policy_version has no policy file


# --------------------------------------------------------------------------------------------------
# Daily budget stores
# --------------------------------------------------------------------------------------------------


class BudgetStoreError(RuntimeError):
    """The store could not be read or written; callers proceed without enforcing the budget."""


class BudgetStore(Protocol):
    """Estimated LLM spend in USD per UTC day.

    The check (``spent``) and the charge (``add``) are separate calls, so calls that start while the
    total is just under the budget all proceed: the budget can be overshot by at most
    (concurrent calls x cost of one call). That is the price of not holding a lock across an LLM call.
    """

    async def spent(self, day: date) -> float: ...

    async def add(self, day: date, usd: float) -> float: ...


class InMemoryBudgetStore:
    """Per-process store for tests and single-process development.

    Trade-off: forgotten on restart, and each worker process has its own budget, so N workers may
    spend N times the configured budget. Use ``RedisBudgetStore`` when more than one process reasons.
    """

    def __init__(self, initial: Mapping[date, float] | None = None) -> None:
        self._spend: dict[date, float] = dict(initial or {})
        self._lock = threading.Lock()

    async def spent(self, day: date) -> float:
        with self._lock:
            return self._spend.get(day, 0.0)

    async def add(self, day: date, usd: float) -> float:
        with self._lock:
            self._spend[day] = self._spend.get(day, 0.0) + usd
            return self._spend[day]


class RedisBudgetStore:
    """Shared store: one Redis key per UTC day (``INCRBYFLOAT``), expiring after a few days.

    Trade-off: shared by every worker, and survives restarts; floating-point increments accumulate tiny
    rounding errors (far below a cent per day). Every call is bounded by ``op_timeout_s`` so a slow
    Redis costs at most that much of the LLM attempt's time.
    """

    KEY_PREFIX = "safety:llm:spend_usd:"
    TTL = timedelta(days=3)

    def __init__(self, client: redis.asyncio.Redis, *, op_timeout_s: float = 1.0) -> None:
        self._client = client
        self._op_timeout_s = op_timeout_s

    def key(self, day: date) -> str:
        return f"{self.KEY_PREFIX}{day.isoformat()}"

    async def spent(self, day: date) -> float:
        raw = await self._bounded(self._client.get(self.key(day)))
        return float(raw) if raw is not None else 0.0

    async def add(self, day: date, usd: float) -> float:
        total = await self._bounded(self._client.incrbyfloat(self.key(day), usd))
        await self._bounded(self._client.expire(self.key(day), self.TTL))
        return float(total)

    async def _bounded(self, op: Any) -> Any:
        try:
            return await asyncio.wait_for(op, timeout=self._op_timeout_s)
        except (redis.exceptions.RedisError, OSError, TimeoutError) as exc:
            raise BudgetStoreError(f"budget store (Redis) failed: {type(exc).__name__}: {exc}") from exc


# --------------------------------------------------------------------------------------------------
# Structured-output schema
# --------------------------------------------------------------------------------------------------


def verdict_json_schema() -> dict[str, Any]:
    """``LLMVerdict``'s JSON schema made acceptable to OpenAI strict mode.

    Strict mode requires every property to be listed in ``required`` and ``additionalProperties: false``
    on every object, and rejects ``default``; optional fields stay nullable, so the model sends ``null``.
    """
    schema: dict[str, Any] = _strictify(LLMVerdict.model_json_schema())
    return schema


def _strictify(node: Any) -> Any:
    if isinstance(node, list):
        return [_strictify(item) for item in node]
    if not isinstance(node, dict):
        return node
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key in ("properties", "$defs"):  # maps of names to schemas: names are not keywords
            out[key] = {name: _strictify(sub) for name, sub in value.items()}
        elif key != "default":
            out[key] = _strictify(value)
    if out.get("type") == "object" and "properties" in out:
        out["required"] = list(out["properties"])
        out["additionalProperties"] = False
    return out


# --------------------------------------------------------------------------------------------------
# The activity
# --------------------------------------------------------------------------------------------------


def _utcnow() -> datetime:
    return datetime.now(UTC)


class ReasoningActivities:
    """Holds the LLM client and the budget store; the worker builds it once from settings.

    ``client`` overrides the client built from ``settings`` (tests, custom transports). ``budget``
    overrides the store built from ``redis``; with neither, the daily budget is not enforced (a warning
    is logged once). ``clock`` decides which UTC day spend is charged to.
    """

    def __init__(
        self,
        settings: LLMSettings,
        *,
        client: openai.AsyncOpenAI | None = None,
        redis: redis.asyncio.Redis | None = None,
        budget: BudgetStore | None = None,
        policies_dir: Path | None = None,
        clock: Callable[[], datetime] = _utcnow,
    ) -> None:
        self.settings = settings
        self.client = client if client is not None else _build_client(settings)
        if budget is None and redis is not None:
            budget = RedisBudgetStore(redis)
        self.budget = budget
        self._policies_dir = policies_dir
        self._clock = clock
        self._response_format: ResponseFormatJSONSchema = {
            "type": "json_schema",
            "json_schema": {"name": "verdict", "strict": True, "schema": verdict_json_schema()},
        }
        if self.client is not None and self.budget is None:
            logger.warning(
                "no budget store (Redis) given: the daily LLM budget of $%.2f is not enforced",
                settings.daily_budget_usd,
            )

    @activity.defn(name=contract.REASON_ABOUT_CASE)
    async def reason_about_case(self, inp: ReasonInput) -> ReasonResult:
        """One attempt: check the budget, make one chat completion, validate the verdict."""
        started = time.perf_counter()
        extra = _log_extra(inp)
        if self.client is None:
            _observe("unconfigured", started)
            logger.warning("reasoning skipped: no LLM endpoint configured", extra=extra)
            return ReasonResult(status=ReasonStatus.UNAVAILABLE, detail=UNCONFIGURED_DETAIL)
        policy = self._policy(inp.policy_version, extra)
        day = self._clock().astimezone(UTC).date()
        refusal = await self._budget_refusal(day, extra)
        if refusal is not None:
            _observe("budget_exhausted", started)
            return ReasonResult(status=ReasonStatus.BUDGET_EXHAUSTED, detail=refusal, policy_version=policy.version)
        completion = await self._complete(self.client, policy, inp, started, extra)
        prompt_tokens, completion_tokens, cost = self._usage(completion, extra)
        await self._charge(day, cost, extra)
        verdict = self._verdict(completion, started, extra)
        duration_ms = _observe("ok", started)
        LLM_REQUESTS_TOTAL.labels(status="ok").inc()
        logger.info(
            "verdict: violation=%s category=%s clause=%s confidence=%.2f",
            verdict.violation,
            verdict.category.value,
            verdict.policy_clause,
            verdict.confidence,
            extra={**extra, "duration_ms": round(duration_ms, 1), "cost_usd": cost},
        )
        return ReasonResult(
            status=ReasonStatus.OK,
            verdict=verdict,
            detail=f"policy {policy.version} sha256:{policy.sha256[:12]}",
            model=completion.model or self.settings.model,
            policy_version=policy.version,
            prompt_tokens=prompt_tokens,
            completion_tokens=completion_tokens,
            cost_usd=cost,
            duration_ms=duration_ms,
        )

    # -- steps ------------------------------------------------------------------------------------

    def _policy(self, version: str, extra: dict[str, Any]) -> PolicyDoc:
        try:
            return load_policy(version, self._policies_dir)
        except PolicyNotFoundError as exc:
            logger.error("policy not found: %s", exc, extra=extra)
            raise ApplicationError(str(exc), type=LLMErrorType.POLICY_NOT_FOUND, non_retryable=True) from None

    async def _budget_refusal(self, day: date, extra: dict[str, Any]) -> str | None:
        """A refusal message when the day's budget is spent; ``None`` to go ahead (also if the store is down)."""
        if self.budget is None:
            return None
        try:
            spent = await self.budget.spent(day)
        except BudgetStoreError as exc:
            logger.warning("%s; proceeding without enforcing the daily LLM budget", exc, extra=extra)
            return None
        limit = self.settings.daily_budget_usd
        if spent < limit:
            return None
        logger.warning("daily LLM budget exhausted: $%.4f spent of $%.2f", spent, limit, extra=extra)
        return (
            f"daily LLM budget exhausted: ${spent:.2f} spent of ${limit:.2f} for {day.isoformat()} (UTC); "
            f"cases go to review until 00:00 UTC or until SAFETY_LLM__DAILY_BUDGET_USD is raised"
        )

    async def _complete(
        self,
        client: openai.AsyncOpenAI,
        policy: PolicyDoc,
        inp: ReasonInput,
        started: float,
        extra: dict[str, Any],
    ) -> ChatCompletion:
        """Make exactly one chat-completion request; map every client error to an ``ApplicationError``."""
        try:
            return await client.chat.completions.create(
                model=self.settings.model,
                messages=cast(list[ChatCompletionMessageParam], build_messages(policy.text, inp)),
                response_format=self._response_format,
                temperature=0,
                max_tokens=self.settings.max_output_tokens,
                timeout=self.settings.attempt_timeout_s,
            )
        except openai.APIError as exc:
            status, error = self._map_error(exc)
            _observe(status, started)
            LLM_REQUESTS_TOTAL.labels(status=status).inc()
            if error.type == LLMErrorType.TIMEOUT:
                LLM_TIMEOUT_TOTAL.inc()
            log = logger.error if error.non_retryable else logger.warning
            log("LLM call failed (%s): %s", error.type, error.message, extra=extra)
            raise error from None

    def _usage(self, completion: ChatCompletion, extra: dict[str, Any]) -> tuple[int, int, float]:
        usage = completion.usage
        if usage is None:
            logger.warning("LLM response reported no token usage: cost recorded as 0", extra=extra)
            return 0, 0, 0.0
        cost = (
            usage.prompt_tokens * self.settings.input_cost_per_mtok
            + usage.completion_tokens * self.settings.output_cost_per_mtok
        ) / 1_000_000
        return usage.prompt_tokens, usage.completion_tokens, cost

    async def _charge(self, day: date, cost: float, extra: dict[str, Any]) -> None:
        LLM_COST_USD_TOTAL.inc(cost)
        if self.budget is None or cost <= 0:
            return
        try:
            await self.budget.add(day, cost)
        except BudgetStoreError as exc:
            logger.warning("%s; this call's $%.6f is not counted against the budget", exc, cost, extra=extra)

    def _verdict(self, completion: ChatCompletion, started: float, extra: dict[str, Any]) -> LLMVerdict:
        try:
            return _parse_verdict(completion, self.settings.max_output_tokens)
        except ApplicationError as error:
            _observe("invalid_output", started)
            LLM_REQUESTS_TOTAL.labels(status="invalid_output").inc()
            logger.warning("LLM output rejected: %s", error.message, extra=extra)
            raise

    # -- error mapping ----------------------------------------------------------------------------

    def _map_error(self, exc: openai.APIError) -> tuple[str, ApplicationError]:
        """(metric status label, error to raise) for a client exception."""
        s = self.settings
        if isinstance(exc, openai.APITimeoutError):
            return "timeout", ApplicationError(
                f"LLM call timed out after {s.attempt_timeout_s:g}s (SAFETY_LLM__ATTEMPT_TIMEOUT_S)",
                type=LLMErrorType.TIMEOUT,
            )
        if isinstance(exc, openai.APIConnectionError):
            cause = exc.__cause__
            reason = f"{type(cause).__name__}: {_excerpt(str(cause))}" if cause else str(exc)
            return "unavailable", ApplicationError(
                f"cannot reach the LLM endpoint {self._endpoint()}: {reason}", type=LLMErrorType.UNAVAILABLE
            )
        if isinstance(exc, openai.APIStatusError):
            return self._map_status(exc)
        return "invalid_output", ApplicationError(
            f"LLM response could not be read: {type(exc).__name__}: {_excerpt(str(exc))}",
            type=LLMErrorType.INVALID_OUTPUT,
        )

    def _map_status(self, exc: openai.APIStatusError) -> tuple[str, ApplicationError]:
        code, said = exc.status_code, _provider_message(exc)
        if code == 429:
            delay = _retry_after(exc.response.headers, self._clock())
            waited = f"; retrying in {delay.total_seconds():g}s" if delay is not None else ""
            return "rate_limited", ApplicationError(
                f"LLM endpoint rate-limited the call (429): {said}{waited}",
                type=LLMErrorType.RATE_LIMITED,
                next_retry_delay=delay,
            )
        if code >= 500 or code == 409:
            return "server_error", ApplicationError(
                f"LLM endpoint failed ({code}): {said}", type=LLMErrorType.SERVER_ERROR
            )
        if code == 408:
            return "timeout", ApplicationError(
                f"LLM endpoint timed out the request (408): {said}", type=LLMErrorType.TIMEOUT
            )
        if code in (401, 403):
            return "auth_error", ApplicationError(
                f"LLM endpoint {self._endpoint()} rejected the credentials ({code}): {said}; check SAFETY_LLM__API_KEY",
                type=LLMErrorType.AUTH_ERROR,
                non_retryable=True,
            )
        return "bad_request", ApplicationError(
            f"LLM endpoint rejected the request ({code}): {said}; check SAFETY_LLM__MODEL "
            f"({self.settings.model!r}), SAFETY_LLM__BASE_URL (it usually ends in /v1) and that the "
            "endpoint supports response_format json_schema",
            type=LLMErrorType.BAD_REQUEST,
            non_retryable=True,
        )

    def _endpoint(self) -> str:
        return str(self.client.base_url) if self.client is not None else "(none)"


# --------------------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------------------


def _build_client(settings: LLMSettings) -> openai.AsyncOpenAI | None:
    api_key = settings.api_key.get_secret_value() if settings.api_key is not None else ""
    if not settings.base_url and not api_key:
        return None
    return openai.AsyncOpenAI(
        base_url=settings.base_url or None,
        # Local OpenAI-compatible servers need no key, but the client insists on one.
        api_key=api_key or "no-key-configured",
        max_retries=0,
        timeout=settings.attempt_timeout_s,
    )


def _parse_verdict(completion: ChatCompletion, max_output_tokens: int) -> LLMVerdict:
    """The validated verdict, or a retryable ``LLMInvalidOutput`` saying what was wrong."""
    if not completion.choices:
        raise _invalid("response has no choices")
    choice = completion.choices[0]
    refusal = getattr(choice.message, "refusal", None)
    if refusal:
        raise _invalid(f"model refused to answer: {_excerpt(refusal)!r}")
    content = choice.message.content
    if not content:
        raise _invalid(f"response has no content (finish_reason={choice.finish_reason})")
    truncated = (
        f"; output was cut off at max_tokens={max_output_tokens} (SAFETY_LLM__MAX_OUTPUT_TOKENS)"
        if choice.finish_reason == "length"
        else ""
    )
    try:
        return LLMVerdict.model_validate_json(content)
    except ValidationError as exc:
        errors = exc.errors(include_input=False, include_url=False)
        if any(e["type"] == "json_invalid" for e in errors):
            raise _invalid(
                f"output is not valid JSON ({errors[0]['msg']}){truncated}; "
                f"{len(content)} chars starting {_excerpt(content)!r}"
            ) from None
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or '(root)'}: {e['msg']}" for e in errors[:5])
        raise _invalid(f"output does not match the verdict schema: {_excerpt(problems, 300)}{truncated}") from None


def _invalid(message: str) -> ApplicationError:
    return ApplicationError(message, type=LLMErrorType.INVALID_OUTPUT)


def _retry_after(headers: Mapping[str, str], now: datetime) -> timedelta | None:
    """The wait a 429 asked for (``retry-after-ms``, ``retry-after`` seconds or HTTP date), capped."""
    seconds: float | None = None
    if (ms := headers.get("retry-after-ms")) is not None:
        seconds = _to_float(ms, 1000)
    if seconds is None and (value := headers.get("retry-after")) is not None:
        seconds = _to_float(value, 1)
        if seconds is None:
            try:
                seconds = (email.utils.parsedate_to_datetime(value) - now).total_seconds()
            except (TypeError, ValueError):
                return None
    if seconds is None:
        return None
    return min(timedelta(seconds=max(seconds, 0.0)), MAX_RETRY_AFTER)


def _to_float(value: str, divisor: int) -> float | None:
    try:
        number = float(value)
    except ValueError:
        return None
    return number / divisor if number == number and number != float("inf") else None


def _provider_message(exc: openai.APIStatusError) -> str:
    body = exc.body
    if isinstance(body, dict):
        error = body.get("error", body)
        message = error.get("message") if isinstance(error, dict) else error
        if message:
            return _excerpt(str(message), 200)
    return _excerpt(exc.response.text or exc.response.reason_phrase, 200)


def _excerpt(text: str, limit: int = _EXCERPT_CHARS) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text)} chars)"


def _observe(status: str, started: float) -> float:
    duration_ms = (time.perf_counter() - started) * 1000
    REASONING_DURATION_MS.labels(status=status).observe(duration_ms)
    return duration_ms


def _log_extra(inp: ReasonInput) -> dict[str, Any]:
    extra: dict[str, Any] = {"case_id": inp.event.event_id, "policy_version": inp.policy_version}
    if activity.in_activity():
        info = activity.info()
        extra.update(workflow_id=info.workflow_id, attempt=info.attempt)
    return extra
