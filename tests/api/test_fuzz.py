"""Property-based fuzzing of every route in the OpenAPI schema with schemathesis: no input yields a 5xx.

Each generated request is sent three times to the real app (real PostgreSQL, Redis and Temporal from the
session fixtures; the app's own lifespan runs in schemathesis' ASGI portal thread): with a valid admin
key, with no key, and with an unknown key. 5xx is never acceptable here, because nothing is down: a 503
would be a lie and a 500 is a bug. Ingest with the admin key starts real workflows; nobody runs them in
this module, which is fine (they are durable and wait in the queue).

Knobs: ``SAFETY_FUZZ_EXAMPLES`` (default 25 per operation); ``SAFETY_FUZZ_RANDOM=1`` explores new inputs on
every run (the default is derandomized: the same inputs each run, so the default suite is not flaky).
"""

from __future__ import annotations

import os
from typing import Any

import asyncpg
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given
from hypothesis import settings as hsettings

from api.app import create_app
from core.settings import Settings

MAX_EXAMPLES = int(os.environ.get("SAFETY_FUZZ_EXAMPLES", "25"))
DERANDOMIZE = os.environ.get("SAFETY_FUZZ_RANDOM", "") != "1"
_KEY_HEADER = "x-api-key"


@pytest.fixture(scope="module")
def fuzz_schema(settings: Settings, pool: asyncpg.Pool) -> Any:
    # ``pool`` makes sure the database exists and is migrated before the app's lifespan opens its own pool.
    return schemathesis.openapi.from_asgi("/openapi.json", create_app(settings))


def _operations() -> list[tuple[str, str]]:
    """(method, path) of every route, read from the app's schema at collection (no servers needed)."""
    spec = create_app(Settings()).openapi()
    return [(method.upper(), path) for path, item in spec["paths"].items() for method in item
            if method in ("get", "post", "put", "patch", "delete")]


def _with_key(case: Any, key: str | None) -> dict[str, str]:
    """The case's own headers, with X-API-Key replaced (or removed when ``key`` is None)."""
    headers = {k: v for k, v in (case.headers or {}).items() if k.lower() != _KEY_HEADER}
    if key is not None:
        headers["X-API-Key"] = key
    return headers


@pytest.mark.parametrize(("method", "path"), _operations(), ids=lambda v: str(v))
def test_no_input_gives_a_server_error(fuzz_schema: Any, keys: dict[str, str], method: str, path: str) -> None:
    operation = fuzz_schema[path][method]

    @hsettings(max_examples=MAX_EXAMPLES, deadline=None, phases=[Phase.explicit, Phase.generate],
               suppress_health_check=list(HealthCheck), database=None, derandomize=DERANDOMIZE)
    @given(case=operation.as_strategy())
    def check(case: Any) -> None:
        _check_case(case, keys)

    check()


def _check_case(case: Any, keys: dict[str, str]) -> None:
    for label, key in (("admin key", keys["admin"]), ("no key", None), ("bad key", "sk-not-a-real-key-0000")):
        case.headers = _with_key(case, key)
        try:
            resp = case.call()
        except Exception as err:  # the app raised instead of answering (Starlette re-raises after its 500)
            raise AssertionError(f"{case.method} {case.formatted_path} ({label}) raised {type(err).__name__}: "
                                 f"{err}\nreproduce: {case.as_curl_command()}") from err
        if case.path == "/ready" and resp.status_code == 503:
            # not ready (no workers run in this module) is the route's documented answer, not an error
            assert resp.json()["ready"] is False and any(not v.startswith("ok") for v in resp.json()["checks"].values())
            continue
        assert resp.status_code < 500, (
            f"{case.method} {case.formatted_path} ({label}) -> {resp.status_code}: {resp.text[:500]}\n"
            f"reproduce: {case.as_curl_command()}")
        if key is None or label == "bad key":
            # Every route but health/readiness needs a key: without a valid one nothing may be served.
            if case.path not in ("/health", "/ready"):
                assert not 200 <= resp.status_code < 300, (
                    f"{case.method} {case.formatted_path} ({label}) -> {resp.status_code}: {resp.text[:300]}")
