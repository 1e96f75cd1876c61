"""A fake OpenAI-compatible chat-completions server for tests and benchmarks.

THIS IS A TEST DOUBLE, NOT A CLASSIFIER. Its verdicts come from a few substring/regex rules so that
tests and load runs get deterministic, explainable answers; it knows nothing about harassment beyond
the handful of words in ``DEFAULT_RULES``. Never point a real deployment at it.

What it does:

* ``POST /v1/chat/completions`` answers with a proper ``chat.completion`` object (id, object, created,
  model, choices[0].message.content, finish_reason, usage). The content is a verdict JSON chosen by
  the first rule whose pattern matches the chat content between the prompt delimiters
  (``domain.prompts.CHAT_START``/``CHAT_END``; the whole last user message if they are absent), else
  ``default_verdict``. Token counts are estimated as characters / 4.
* Every request body is recorded (the last ``max_recorded``) for tests to inspect.
* Behaviour is dial-able in-process (``FakeLLMServer.configure``) or over HTTP (``POST /_control`` with
  a JSON object of ``FakeLLMConfig`` fields, ``GET /_stats``, ``POST /_reset``): latency and jitter,
  a random error rate with a chosen status (and ``Retry-After``), a deterministic list of statuses for
  the next calls, malformed output (random or for the next N calls), and ``hang`` (no answer until
  reset). "Down" is simulated by stopping the server. Randomness comes from a seeded RNG, reset with
  the configuration, so a run with the same seed and request order behaves the same.
* Requests whose ``response_format`` is a strict ``json_schema`` that OpenAI would reject (an object
  without ``additionalProperties: false`` or with properties missing from ``required``) get a 400,
  as they would from OpenAI.

Run standalone: ``python -m tests.doubles.fake_llm --port 8090`` (then ``SAFETY_LLM__BASE_URL=
http://127.0.0.1:8090/v1``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import re
import threading
import time
import uuid
from collections import Counter, deque
from types import TracebackType
from typing import Any, Literal

import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from domain.prompts import CHAT_END, CHAT_START
from tests.doubles.http_server import BackgroundHTTPServer

__all__ = ["CLEAN_VERDICT", "DEFAULT_RULES", "FakeLLMConfig", "FakeLLMServer", "VerdictRule", "create_app"]

JSONDict = dict[str, Any]


class VerdictRule(BaseModel):
    """If ``pattern`` occurs in the chat content (case-insensitive), answer ``verdict``."""

    pattern: str
    regex: bool = False
    verdict: JSONDict

    def matches(self, text: str) -> bool:
        if self.regex:
            return re.search(self.pattern, text, re.IGNORECASE) is not None
        return self.pattern.lower() in text.lower()


CLEAN_VERDICT: JSONDict = {
    "violation": False,
    "category": "none",
    "severity": "low",
    "policy_clause": "NONE",
    "rationale": "fake LLM: no rule matched",
    "recommended_action": None,
    "confidence": 0.9,
}

DEFAULT_RULES: list[VerdictRule] = [
    VerdictRule(
        pattern=r"\b(kill you|hurt you|you(?:'re| are) dead|watch your back|i(?:'ll| will) (?:find|kill|hurt) you)\b",
        regex=True,
        verdict={
            "violation": True,
            "category": "threat",
            "severity": "high",
            "policy_clause": "H3",
            "rationale": "fake LLM: threat word list matched",
            "recommended_action": "ban",
            "confidence": 0.95,
        },
    ),
    VerdictRule(
        pattern=r"\b(idiot|moron|stupid|loser|worthless|pathetic|dumbass|imbecile)\b",
        regex=True,
        verdict={
            "violation": True,
            "category": "targeted_insult",
            "severity": "medium",
            "policy_clause": "H1",
            "rationale": "fake LLM: insult word list matched",
            "recommended_action": "delete",
            "confidence": 0.92,
        },
    ),
]

_NOT_JSON = "Sure! Having reviewed the message against the policy, I think it is probably fine {violation: maybe"
_BAD_SCHEMA = json.dumps({"violation": "maybe", "category": "spam", "severity": "extreme", "confidence": 7})


class FakeLLMConfig(BaseModel):
    """Every dial. Unknown fields are rejected so a typo in a test or ``/_control`` call is loud."""

    model_config = ConfigDict(extra="forbid")

    model: str = "fake-llm"
    latency_s: float = Field(default=0.0, ge=0)
    jitter_s: float = Field(default=0.0, ge=0)  # uniform extra latency in [0, jitter_s]
    error_rate: float = Field(default=0.0, ge=0, le=1)
    error_status: int = 500
    retry_after: float | None = None  # sent as Retry-After on 429 and 503 answers
    fail_next: list[int] = Field(default_factory=list)  # statuses for the next calls, in order
    malformed_rate: float = Field(default=0.0, ge=0, le=1)
    malformed_next: int = Field(default=0, ge=0)
    malformed_mode: Literal["not_json", "bad_schema", "alternate"] = "alternate"
    hang: bool = False  # hold every request until reset/configure(hang=False)/stop (or hang_max_s)
    hang_max_s: float = 3600.0
    seed: int = 0
    rules: list[VerdictRule] = Field(default_factory=lambda: [r.model_copy(deep=True) for r in DEFAULT_RULES])
    default_verdict: JSONDict = Field(default_factory=lambda: dict(CLEAN_VERDICT))
    check_strict_schema: bool = True


class _Outcome(BaseModel):
    kind: Literal["ok", "error", "malformed"]
    status: int = 200
    content: str = ""


class _FakeState:
    """Configuration, RNG, recorded requests and counters; shared between the server and test threads."""

    def __init__(self, config: FakeLLMConfig, max_recorded: int = 1000) -> None:
        self._lock = threading.Lock()
        self._max_recorded = max_recorded
        self.stopping = False
        self._apply(config)

    def _apply(self, config: FakeLLMConfig) -> None:
        self.config = config
        self.rng = random.Random(config.seed)
        self.requests: deque[JSONDict] = deque(maxlen=self._max_recorded)
        self.outcomes: Counter[str] = Counter()
        self._malformed_count = 0

    def configure(self, **changes: Any) -> FakeLLMConfig:
        """Change some dials, keeping the rest; a new ``seed`` restarts the RNG."""
        with self._lock:
            merged = FakeLLMConfig.model_validate({**self.config.model_dump(), **changes})
            self.config = merged
            if "seed" in changes:
                self.rng = random.Random(merged.seed)
            return merged

    def reset(self, **config: Any) -> None:
        with self._lock:
            self._apply(FakeLLMConfig(**config))

    def record(self, body: JSONDict) -> None:
        with self._lock:
            self.requests.append(body)

    def hanging(self) -> bool:
        with self._lock:
            return self.config.hang and not self.stopping

    def delay(self) -> float:
        with self._lock:
            jitter = self.rng.uniform(0, self.config.jitter_s) if self.config.jitter_s else 0.0
            return self.config.latency_s + jitter

    def decide(self, chat_content: str) -> _Outcome:
        """Pick this call's outcome: scheduled failures first, then random errors, then malformed output."""
        with self._lock:
            cfg = self.config
            if cfg.fail_next:
                outcome = _Outcome(kind="error", status=cfg.fail_next.pop(0))
            elif cfg.error_rate and self.rng.random() < cfg.error_rate:
                outcome = _Outcome(kind="error", status=cfg.error_status)
            elif cfg.malformed_next or (cfg.malformed_rate and self.rng.random() < cfg.malformed_rate):
                cfg.malformed_next = max(cfg.malformed_next - 1, 0)
                outcome = _Outcome(kind="malformed", content=self._malformed_content())
            else:
                outcome = _Outcome(kind="ok", content=json.dumps(self._verdict(chat_content)))
            self.outcomes[outcome.kind if outcome.kind != "error" else str(outcome.status)] += 1
            return outcome

    def _malformed_content(self) -> str:
        mode = self.config.malformed_mode
        if mode == "alternate":
            mode = "not_json" if self._malformed_count % 2 == 0 else "bad_schema"
        self._malformed_count += 1
        return _NOT_JSON if mode == "not_json" else _BAD_SCHEMA

    def _verdict(self, chat_content: str) -> JSONDict:
        for rule in self.config.rules:
            if rule.matches(chat_content):
                return rule.verdict
        return self.config.default_verdict

    def stats(self) -> JSONDict:
        with self._lock:
            return {
                "recorded_requests": len(self.requests),
                "outcomes": dict(self.outcomes),
                "config": self.config.model_dump(mode="json"),
            }


def create_app(state: _FakeState) -> FastAPI:
    """The ASGI app serving ``state``; ``FakeLLMServer`` and the CLI both use it."""
    app = FastAPI(title="fake-llm (test double)", docs_url=None, redoc_url=None)

    @app.post("/v1/chat/completions")
    async def chat_completions(request: Request) -> JSONResponse:
        try:
            body = await request.json()
        except ValueError:
            return _error(400, "request body is not JSON")
        if not isinstance(body, dict) or not isinstance(body.get("messages"), list):
            return _error(400, "request must be a JSON object with a 'messages' list")
        state.record(body)
        schema_problem = _strict_schema_problem(body) if state.config.check_strict_schema else None
        if schema_problem:
            return _error(400, f"Invalid schema for response_format 'verdict': {schema_problem}")
        await _hang_if_asked(state)
        await asyncio.sleep(state.delay())
        outcome = state.decide(_chat_content(body["messages"]))
        if outcome.kind == "error":
            return _error(outcome.status, f"fake LLM injected error {outcome.status}", state.config.retry_after)
        return JSONResponse(_completion(body, outcome.content, state.config.model))

    @app.get("/v1/models")
    async def models() -> JSONDict:
        return {"object": "list", "data": [{"id": state.config.model, "object": "model", "owned_by": "fake"}]}

    @app.post("/_control")
    async def control(request: Request) -> JSONResponse:
        changes = await request.json()
        if not isinstance(changes, dict):
            return _error(422, "send a JSON object of FakeLLMConfig fields")
        try:
            config = state.configure(**changes)
        except ValueError as exc:
            return _error(422, str(exc))
        return JSONResponse(config.model_dump(mode="json"))

    @app.get("/_stats")
    async def stats() -> JSONDict:
        return state.stats()

    @app.post("/_reset")
    async def reset() -> JSONDict:
        state.reset()
        return {"reset": True}

    return app


async def _hang_if_asked(state: _FakeState) -> None:
    """Hold the request while ``hang`` is on.

    Polls rather than waiting on an ``asyncio.Event`` because the release comes from another thread
    (the test calling ``reset``/``stop``), and 20 ms of extra latency does not matter here.
    """
    deadline = time.monotonic() + state.config.hang_max_s
    while state.hanging() and time.monotonic() < deadline:  # noqa: ASYNC110
        await asyncio.sleep(0.02)


def _chat_content(messages: list[Any]) -> str:
    """The delimited chat message from the last user turn (the whole turn if there are no delimiters)."""
    user = next((m for m in reversed(messages) if isinstance(m, dict) and m.get("role") == "user"), None)
    text = str(user.get("content", "")) if user else ""
    start, end = text.find(CHAT_START), text.rfind(CHAT_END)
    if start != -1 and end > start:
        return text[start + len(CHAT_START) : end]
    return text


def _strict_schema_problem(body: JSONDict) -> str | None:
    fmt = body.get("response_format")
    if not isinstance(fmt, dict) or fmt.get("type") != "json_schema":
        return None
    spec = fmt.get("json_schema") or {}
    if not spec.get("strict"):
        return None
    return _object_problem(spec.get("schema"), "schema")


def _object_problem(node: Any, path: str) -> str | None:
    if isinstance(node, list):
        return next((p for i, n in enumerate(node) if (p := _object_problem(n, f"{path}[{i}]"))), None)
    if not isinstance(node, dict):
        return None
    if node.get("type") == "object":
        props = node.get("properties", {})
        if node.get("additionalProperties") is not False:
            return f"{path}: 'additionalProperties' is required to be supplied and to be false"
        missing = sorted(set(props) - set(node.get("required", [])))
        if missing:
            return f"{path}: 'required' must include every property; missing {missing}"
    if "default" in node:
        return f"{path}: 'default' is not permitted"
    for key, value in node.items():
        if key in ("properties", "$defs") and isinstance(value, dict):
            for name, sub in value.items():
                if problem := _object_problem(sub, f"{path}.{key}.{name}"):
                    return problem
        elif problem := _object_problem(value, f"{path}.{key}"):
            return problem
    return None


def _completion(body: JSONDict, content: str, model: str) -> JSONDict:
    prompt_chars = sum(len(str(m.get("content", ""))) for m in body["messages"] if isinstance(m, dict))
    prompt_tokens, completion_tokens = max(1, prompt_chars // 4), max(1, len(content) // 4)
    return {
        "id": f"chatcmpl-fake-{uuid.uuid4().hex[:24]}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": body.get("model") or model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": content, "refusal": None},
                "finish_reason": "stop",
                "logprobs": None,
            }
        ],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        },
    }


def _error(status: int, message: str, retry_after: float | None = None) -> JSONResponse:
    headers = {"retry-after": f"{retry_after:g}"} if retry_after is not None and status in (429, 503) else {}
    kind = {
        400: "invalid_request_error",
        401: "authentication_error",
        403: "permission_error",
        404: "not_found_error",
        429: "rate_limit_error",
    }.get(status, "server_error")
    return JSONResponse(
        {"error": {"message": message, "type": kind, "param": None, "code": str(status)}},
        status_code=status,
        headers=headers,
    )


class FakeLLMServer:
    """The fake served by uvicorn in a background thread on ``host`` and a free (or given) port.

    ``with FakeLLMServer() as llm:`` starts and stops it; ``llm.base_url`` ends in ``/v1``. Stopping
    it is how tests simulate an endpoint that is down (connection refused).
    """

    def __init__(self, *, host: str = "127.0.0.1", port: int = 0, max_recorded: int = 1000, **config: Any) -> None:
        self.host = host
        self.port = port
        self._state = _FakeState(FakeLLMConfig(**config), max_recorded=max_recorded)
        self._http = BackgroundHTTPServer(host, port, "fake-llm")

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}/v1"

    @property
    def config(self) -> FakeLLMConfig:
        return self._state.config

    @property
    def requests(self) -> list[JSONDict]:
        """Recorded request bodies, oldest first (a copy)."""
        with self._state._lock:
            return list(self._state.requests)

    def configure(self, **changes: Any) -> FakeLLMConfig:
        return self._state.configure(**changes)

    def reset(self, **config: Any) -> None:
        """Back to defaults (or ``config``): clears recorded requests, counters and any hang."""
        self._state.reset(**config)

    def stats(self) -> JSONDict:
        return self._state.stats()

    @property
    def running(self) -> bool:
        """False after ``stop`` (or before ``start``): the port refuses connections."""
        return self._http.running

    def start(self, timeout_s: float = 10.0) -> FakeLLMServer:
        """Bind, serve in a daemon thread, and return once the server accepts connections."""
        self._state.stopping = False
        self._http.serve(create_app(self._state), timeout_s)
        self.port = self._http.port
        return self

    def stop(self) -> None:
        """Release hung requests, shut down, and close the port (new connections are refused)."""
        self._state.stopping = True
        self._http.shutdown()

    def __enter__(self) -> FakeLLMServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Fake OpenAI-compatible LLM (a test double, not a classifier).")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8090)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--latency-s", type=float, default=0.0)
    parser.add_argument("--jitter-s", type=float, default=0.0)
    parser.add_argument("--error-rate", type=float, default=0.0)
    parser.add_argument("--error-status", type=int, default=500)
    parser.add_argument("--malformed-rate", type=float, default=0.0)
    args = parser.parse_args(argv)
    state = _FakeState(
        FakeLLMConfig(
            seed=args.seed,
            latency_s=args.latency_s,
            jitter_s=args.jitter_s,
            error_rate=args.error_rate,
            error_status=args.error_status,
            malformed_rate=args.malformed_rate,
        )
    )
    print(f"fake LLM (test double) on http://{args.host}:{args.port}/v1 - control: POST /_control, GET /_stats")
    uvicorn.run(create_app(state), host=args.host, port=args.port, log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
