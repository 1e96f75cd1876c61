"""``safety demo``: push a realistic, mixed scenario through the running stack's ingest API, so that a
newcomer's console, Temporal Web UI and stats have something real to show.

The scenario (platform ``discord``; every run makes new cases):

* ordinary chat in #general between a dozen people;
* an escalating harasser (``grim_reaper``) who keeps going after ``newbie42``, so the strike ladder climbs;
* a brigading raid: 22 distinct accounts pile onto ``streamer_sam`` in #live-chat within seconds;
* a threat against a moderator;
* an appeal, filed against the first of the harasser's cases that was actioned.

It talks to the API only (``POST /v1/events/ingest``, ``GET /v1/events/{id}/status``, ``POST /v1/appeals``),
exactly as a platform would.
"""

from __future__ import annotations

import random
import time
import uuid
from collections import Counter
from dataclasses import dataclass
from typing import Annotated, Any

import httpx
import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

console = Console()

_CHAT = [
    "gg everyone, that last round was wild", "anyone up for another match later?", "lol nice clutch",
    "brb getting food", "what time does the tournament start tomorrow?", "thanks for the stream, had a great time!",
    "the new patch made the sniper way too weak imo", "welcome to the server! read #rules first :)",
    "does anyone know how to unlock the second map?", "haha that emote is perfect",
    "I disagree about the patch notes but fair point", "good luck in the finals!",
]
_HARASSER = [
    "nobody asked you, newbie42, go back to the tutorial",
    "you are pathetic, newbie42, just quit already",
    "newbie42 you worthless idiot, everyone hates playing with you",
    "seriously newbie42, you are a stupid loser and you should leave this server",
]
_RAID = [
    "you are a worthless idiot", "get off the stream you pathetic loser", "what a stupid moron",
    "nobody wants you here, idiot", "ur trash, quit streaming", "imagine being this pathetic",
    "shut up you dumbass", "worst streamer ever, worthless",
]
_THREAT = "I know where you live, watch your back mod_jess"


@dataclass
class Sent:
    part: str
    event_id: str


def _event(author: str, content: str, *, target: str, channel: str = "general") -> dict[str, Any]:
    return {"event_type": "message", "platform": "discord", "channel_id": channel, "user_id": target,
            "author_id": author, "content": content, "message_id": uuid.uuid4().hex,
            "metadata": {"user_reputation": 0.8, "author_reputation": 0.5, "channel_history_count": 200}}


def scenario(seed: int = 7) -> list[tuple[str, dict[str, Any], float]]:
    """(part, event, pause after it in seconds at speed 1), in the order they are sent."""
    rng = random.Random(seed)
    people = ["ava", "ben", "chloe", "dev", "emma", "finn", "gus", "hana", "ivan", "jade", "kai", "lena"]
    steps: list[tuple[str, dict[str, Any], float]] = []

    def chat(n: int) -> None:
        for _ in range(n):
            author, to = rng.sample(people, 2)  # chat is addressed to someone: the API's user_id
            steps.append(("ordinary chat", _event(author, rng.choice(_CHAT), target=to), 0.15))

    chat(10)
    for i, line in enumerate(_HARASSER):  # the harasser, between ordinary messages
        steps.append(("escalating harasser", _event("grim_reaper", line, target="newbie42"), 0.4))
        chat(4 if i < len(_HARASSER) - 1 else 2)
    for i in range(22):  # the raid: distinct authors, one target, within seconds
        steps.append(("brigading raid", _event(f"raider{i + 1:02d}", rng.choice(_RAID), target="streamer_sam",
                                               channel="live-chat"), 0.05))
    chat(4)
    steps.append(("threat", _event("anon_771", _THREAT, target="mod_jess", channel="support"), 0.2))
    chat(6)
    return steps


def run_demo(url: str, api_key: str, *, speed: float = 1.0, wait_s: float = 90.0) -> dict[str, Any]:
    steps = scenario()
    headers = {"X-API-Key": api_key}
    sent: list[Sent] = []
    outcomes: dict[str, dict[str, Any]] = {}
    appeal: dict[str, Any] | None = None
    with httpx.Client(base_url=url, headers=headers, timeout=30) as http:
        try:
            ready = http.get("/ready")
        except httpx.HTTPError as err:
            raise typer.BadParameter(f"cannot reach the API at {url} ({err}); start it with `make run` "
                                     "(or `safety up`) first", param_hint="--url") from err
        if ready.status_code != 200:
            console.print(f"[yellow]the stack says it is not ready yet ({ready.status_code}): {ready.text[:200]}; "
                          "sending anyway (events wait durably)[/yellow]")
        with Progress(TextColumn("{task.description:<28}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                      console=console) as progress:
            task = progress.add_task("sending", total=len(steps))
            for part, event, pause in steps:
                progress.update(task, description=f"sending: {part}")
                r = http.post("/v1/events/ingest", json=event)
                if r.status_code in (401, 403):
                    raise typer.BadParameter(f"the API refused the key ({r.status_code}): {r.json().get('detail')}",
                                             param_hint="--api-key")
                if r.status_code != 202:
                    raise typer.BadParameter(f"ingest answered {r.status_code}: {r.text[:300]}")
                sent.append(Sent(part, r.json()["event_id"]))
                progress.advance(task)
                time.sleep(pause / speed)
            wait = progress.add_task("waiting for outcomes", total=len(sent))
            deadline = time.monotonic() + wait_s
            while len(outcomes) < len(sent) and time.monotonic() < deadline:
                for s in sent:
                    if s.event_id in outcomes:
                        continue
                    body = http.get(f"/v1/events/{s.event_id}/status").json()
                    outcome = body.get("outcome")
                    # A case waiting for a moderator is "done" for the demo: it is in the console's queue.
                    if outcome or body.get("stage") == "review":
                        outcomes[s.event_id] = {"part": s.part, **(outcome or {"decision": "review"})}
                        progress.advance(wait)
                time.sleep(0.5)
            harasser_actioned = [s.event_id for s in sent if s.part == "escalating harasser"
                                 and outcomes.get(s.event_id, {}).get("decision") == "action"]
            if harasser_actioned:
                r = http.post("/v1/appeals", json={"case_id": harasser_actioned[0],
                                                   "reason": "I was quoting a meme, we are friends"})
                appeal = r.json() if r.status_code == 201 else {"error": r.text[:300]}
    decisions = Counter(o.get("decision", "?") for o in outcomes.values())
    parts = Counter(s.part for s in sent)
    return {"sent": len(sent), "parts": dict(parts), "decisions": dict(decisions),
            "unfinished": len(sent) - len(outcomes), "appeal": appeal,
            "brigading": any("brigading" in r for o in outcomes.values() for r in o.get("reasons", []))}


def demo(
    url: Annotated[str | None, typer.Option(help="The API's base URL (default: this machine's `safety up`, "
                                                 "http://127.0.0.1:<SAFETY_API__PORT>).")] = None,
    api_key: Annotated[str | None, typer.Option(help="A key that may ingest and file appeals (default: the "
                                                     "development key in .data/dev-api-key).")] = None,
    speed: Annotated[float, typer.Option(min=0.1, max=100.0, help="Pacing: 1 sends the scenario in about 15 s; "
                                                                  "2 twice as fast.")] = 1.0,
    wait: Annotated[float, typer.Option(min=0.0, max=600.0, help="Seconds to wait for every case's outcome.")] = 90.0,
) -> None:
    """Push a realistic mixed scenario through the running stack: ordinary chat, an escalating harasser,
    a brigading raid on one target, a threat and an appeal (about 60 events), with a progress bar.

    Start the stack first (`make run`). Then open the console at http://localhost:8001/console (sign in with
    the development key from .data/dev-api-key, or a moderator key from `safety keys create --role moderator`),
    the Temporal Web UI at http://localhost:8233, and `GET /v1/stats`. With no LLM configured every risky
    message waits for a person in the console's review queue; with one, clear cases are decided at once."""
    from core.settings import get_settings
    from ops.cli.main import _dev_key

    settings = get_settings()
    base = url or f"http://127.0.0.1:{settings.api.port}"
    report = run_demo(base, api_key or _dev_key(), speed=speed, wait_s=wait)
    console.print(f"sent {report['sent']} events: " + ", ".join(f"{n} {p}" for p, n in report["parts"].items()))
    console.print("outcomes: " + (", ".join(f"{n} {d}" for d, n in sorted(report["decisions"].items())) or "none yet")
                  + (f" ({report['unfinished']} still running)" if report["unfinished"] else ""))
    if report["brigading"]:
        console.print("brigading flag raised on streamer_sam")
    appeal = report["appeal"]
    if appeal and "id" in appeal:
        console.print(f"appeal {appeal['id']} filed against case {appeal['case_id']}")
    elif appeal:
        console.print(f"[yellow]the appeal was not filed: {appeal['error']}[/yellow]")
    else:
        console.print("no harasser case was actioned (no LLM configured?), so no appeal was filed: decide one in "
                      "the console, then overturn it there")
    console.print(f"console: {base}/console   Temporal Web UI: {settings.temporal.ui_public_url}")
