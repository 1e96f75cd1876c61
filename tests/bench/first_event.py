"""Is the first event after `safety up` as fast as the next? Starts the stack (`tests/harness.py`: a real
`safety up` on free ports with the fake LLM), sends a clean event the moment the banner appears, then
``--n`` more one at a time, and prints ingest-to-outcome wall time for the first and the rest.

    .venv/bin/python tests/bench/first_event.py [--n 10] [--json]

Run it from two checkouts (e.g. before and after a change) to compare; each prints one line.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
try:
    from tests.doubles.fake_llm import FakeLLMServer
except ImportError:  # checkouts from before the test doubles left the package
    from core.testing.fake_llm import FakeLLMServer  # type: ignore[no-redef]
from tests.harness import StackProcess


def _event(content: str) -> dict[str, object]:
    return {"event_type": "message", "platform": "discord", "channel_id": "general", "user_id": "user_456",
            "author_id": "user_123", "content": content, "message_id": uuid.uuid4().hex,
            "metadata": {"timestamp": "2026-11-29T12:00:00Z", "user_reputation": 0.8, "author_reputation": 0.3,
                         "channel_history_count": 150}}


def _one(http: httpx.Client, content: str, timeout: float = 120) -> float:
    t0 = time.perf_counter()
    r = http.post("/v1/events/ingest", json=_event(content))
    assert r.status_code == 202, r.text
    url = r.json()["processing_url"]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if http.get(url).json().get("status") == "completed":
            return time.perf_counter() - t0
        time.sleep(0.02)
    raise SystemExit(f"no outcome for {url} within {timeout}s")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=10, help="events after the first (default 10)")
    ap.add_argument("--json", action="store_true", help="one JSON object instead of text")
    args = ap.parse_args()
    with FakeLLMServer() as llm, tempfile.TemporaryDirectory() as tmp:
        data_dir = Path(tmp) / "data"
        data_dir.mkdir()
        stack = StackProcess(data_dir, llm.base_url)
        t_start = time.perf_counter()
        stack.start()
        up_s = time.perf_counter() - t_start
        try:
            with httpx.Client(base_url=stack.base_url, headers={"X-API-Key": stack.key}, timeout=30) as http:
                first = _one(http, "good game everyone, see you tomorrow")
                rest = [_one(http, f"thanks for the match {i}, that was fun") for i in range(args.n)]
        finally:
            stack.stop()
    out = {"up_s": round(up_s, 1), "first_ms": round(first * 1000),
           "next_median_ms": round(statistics.median(rest) * 1000), "next_max_ms": round(max(rest) * 1000),
           "n": args.n}
    print(json.dumps(out) if args.json else
          f"up in {out['up_s']} s; first event {out['first_ms']} ms; next {args.n}: median {out['next_median_ms']} ms,"
          f" max {out['next_max_ms']} ms")


if __name__ == "__main__":
    main()
