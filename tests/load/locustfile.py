"""Locust load profile for the ingest API: a realistic mix of chat events and a sample of status polls.

Each simulated platform integration posts events to ``/v1/events/ingest`` (90 % clean chat, 10 % abusive,
every one with a unique ``message_id``), and polls the ``processing_url`` of about one event in ten
until it is completed (or for 60 s), the way an integration that waits for a verdict would. 503 and
429 answers are counted as failures by locust (they are what the platform would retry).

Key: env ``SAFETY_API_KEY``, else ``$SAFETY_DATA_DIR/dev-api-key`` (default ``.data/dev-api-key``).

Run against a running stack (``safety up``):

    .venv/bin/locust -f tests/load/locustfile.py --headless -u 20 -r 5 -t 60s --host http://127.0.0.1:8001

Add ``--csv .data/locust`` for CSV stats, or drop ``--headless`` for the web UI on :8089. Knobs (env):
``SAFETY_LOAD_CLEAN_RATIO`` (0.9), ``SAFETY_LOAD_POLL_SAMPLE`` (0.1), ``SAFETY_LOAD_WAIT_MIN``/``_MAX``
(seconds between events per user; 0.05/0.5).

Not collected by pytest (the file name does not start with ``test_``).
"""

from __future__ import annotations

import os
import random
import time
import uuid
from pathlib import Path

from locust import HttpUser, between, events, task

CLEAN_RATIO = float(os.environ.get("SAFETY_LOAD_CLEAN_RATIO", "0.9"))
POLL_SAMPLE = float(os.environ.get("SAFETY_LOAD_POLL_SAMPLE", "0.1"))
POLL_TIMEOUT_S = 60.0
WAIT_MIN = float(os.environ.get("SAFETY_LOAD_WAIT_MIN", "0.05"))
WAIT_MAX = float(os.environ.get("SAFETY_LOAD_WAIT_MAX", "0.5"))

CLEAN = [
    "gg everyone, see you tomorrow", "lol nice one", "thanks for the stream, had a great time!",
    "brb getting food", "what time does the tournament start tomorrow?", "welcome to the channel!",
    "anyone up for a match later tonight?", "I disagree about the patch notes, the sniper nerf was overdue honestly",
    "can someone explain the rules? I just joined and I'm a bit lost", "that clutch in round 3 was insane",
    "does anyone know a good guide for the new map?", "happy birthday mate, have a good one",
]
ABUSIVE = [
    "you are a worthless idiot, nobody wants you here, go kill yourself",
    "you are such an idiot, nobody wants you here",
    "shut up you stupid loser, everyone hates you",
    "people like you are pathetic, get out of this server you moron",
    "i will find you and hurt you, watch your back",
]
PLATFORMS = ["discord", "twitch", "webhook"]


def api_key() -> str:
    key = os.environ.get("SAFETY_API_KEY", "").strip()
    if key:
        return key
    path = Path(os.environ.get("SAFETY_DATA_DIR", ".data")) / "dev-api-key"
    if not path.exists():
        raise SystemExit(f"set SAFETY_API_KEY or start the stack so that {path} exists")
    return path.read_text().strip()


def event_body(rng: random.Random) -> dict[str, object]:
    abusive = rng.random() >= CLEAN_RATIO
    text = rng.choice(ABUSIVE if abusive else CLEAN)
    if not abusive and rng.random() < 0.3:
        text = f"{text} {rng.choice(CLEAN)}"
    return {
        "event_type": "message", "platform": rng.choice(PLATFORMS), "channel_id": f"load-{rng.randrange(20)}",
        "user_id": f"load-target-{rng.randrange(500)}", "author_id": f"load-author-{rng.randrange(5000)}",
        "content": text, "message_id": f"load-{uuid.uuid4().hex}",
        "metadata": {"timestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                     "user_reputation": round(rng.random(), 2), "author_reputation": round(rng.random(), 2),
                     "channel_history_count": rng.randrange(1000)},
    }


@events.init_command_line_parser.add_listener
def _doc(parser) -> None:  # type: ignore[no-untyped-def]
    parser.description = (parser.description or "") + " Safety system ingest load (tests/load/locustfile.py)."


class PlatformIntegration(HttpUser):
    """One chat platform integration posting events and occasionally waiting for a verdict."""

    wait_time = between(WAIT_MIN, WAIT_MAX)

    def on_start(self) -> None:
        self.client.headers.update({"X-API-Key": api_key(), "Content-Type": "application/json"})
        self.rng = random.Random()
        self.pending: list[tuple[str, float]] = []  # (status url, deadline)

    @task(10)
    def ingest(self) -> None:
        body = event_body(self.rng)
        with self.client.post("/v1/events/ingest", json=body, name="POST /v1/events/ingest",
                              catch_response=True) as resp:
            if resp.status_code != 202:
                resp.failure(f"{resp.status_code}: {resp.text[:200]}")
                return
            resp.success()
            if self.rng.random() < POLL_SAMPLE:
                self.pending.append((resp.json()["processing_url"], time.monotonic() + POLL_TIMEOUT_S))

    @task(3)
    def poll_status(self) -> None:
        if not self.pending:
            return
        url, deadline = self.pending.pop(0)
        with self.client.get(url, name="GET /v1/events/{id}/status", catch_response=True) as resp:
            if resp.status_code != 200:
                resp.failure(f"{resp.status_code}: {resp.text[:200]}")
                return
            resp.success()
            if resp.json().get("status") == "completed":
                return
        if time.monotonic() < deadline:
            self.pending.append((url, deadline))  # not done yet: ask again later
        else:
            events.request.fire(request_type="OUTCOME", name="outcome within 60 s", response_time=POLL_TIMEOUT_S * 1000,
                                response_length=0, exception=TimeoutError(f"no outcome for {url}"), context={})
