"""What payload encryption costs per clean event: the codec off and on, side by side, in one run.

Run: .venv/bin/python tests/bench/codec_cost.py [--rate 20] [--n 300] [--rounds 2]

One fresh embedded Temporal server; the production ``ModerateEventWorkflow`` started exactly as the API
starts it, with the stand-in local activities of ``temporal_clean_path.py`` (a clean screen result, a
record that writes nothing), so the rows differ only in the data converter: pydantic JSON ("off") or
pydantic JSON + the AES-256-GCM codec of ``core/codec.py`` ("on"). Per row: server CPU per workflow,
this process's CPU per workflow (client + worker: where the codec runs), and their sum. Rounds alternate
off/on so drift in the machine's speed hits both. The last line times encrypt + decrypt of one clean
event's workflow input alone. See docs/performance.md.
"""

import argparse
import asyncio
import os
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import psutil
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import UnsandboxedWorkflowRunner, Worker

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from core.codec import AESGCMCodec, KeyRing  # noqa: E402
from ops.embedded import TemporalDevServer, free_port  # noqa: E402
from tests.bench.temporal_clean_path import Finished, clean_input, record_nothing, screen_clean  # noqa: E402
from workflows.contract import MODERATE_EVENT_WORKFLOW  # noqa: E402
from workflows.moderate import ModerateEventWorkflow, search_attributes_for_start  # noqa: E402

QUEUES = {"off": "bench-codec-off", "on": "bench-codec-on"}


async def start_one(client: Client, queue: str) -> None:
    inp = clean_input()
    ev = inp.event
    await client.start_workflow(
        MODERATE_EVENT_WORKFLOW, inp, id=f"case-{ev.event_id}", task_queue=queue,
        search_attributes=search_attributes_for_start(inp),
        static_summary=f"{ev.platform} #{ev.channel_id}: {ev.author_id} -> {ev.target_id}",
        static_details=f"case {ev.event_id}, {ev.event_type}, message {ev.message_id}",
    )


async def measure(client: Client, queue: str, server: psutil.Process, rate: float, n: int) -> tuple[float, float]:
    """(server CPU ms, this process's CPU ms) per workflow, until every workflow recorded."""
    me = psutil.Process()
    Finished.reset(n)
    s0, m0, started = server.cpu_times(), me.cpu_times(), time.monotonic()
    tasks = []
    for i in range(n):
        tasks.append(asyncio.create_task(start_one(client, queue)))
        await asyncio.sleep(max(0.0, started + (i + 1) / rate - time.monotonic()))
    await asyncio.gather(*tasks)
    await Finished.event.wait()
    await asyncio.sleep(1.0)  # the last completions reach the server
    s1, m1 = server.cpu_times(), me.cpu_times()
    return ((s1.user + s1.system - s0.user - s0.system) * 1000 / n,
            (m1.user + m1.system - m0.user - m0.system) * 1000 / n)


async def micro(codec: AESGCMCodec, repeat: int = 2000) -> float:
    """Microseconds to encrypt and decrypt one clean event's workflow input payload."""
    [payload] = pydantic_data_converter.payload_converter.to_payloads([clean_input()])
    started = time.perf_counter()
    for _ in range(repeat):
        await codec.decode(await codec.encode([payload]))
    return (time.perf_counter() - started) * 1e6 / repeat


async def main(rate: float, n: int, rounds: int) -> None:
    server = TemporalDevServer(Path(tempfile.mkdtemp()), port=free_port(), ui_port=free_port(),
                               metrics_port=free_port(), headless=True)
    server.start()
    assert server.proc is not None
    proc = psutil.Process(server.proc.pid)
    codec = AESGCMCodec(KeyRing(current="bench", keys={"bench": os.urandom(32)}))
    converters = {"off": pydantic_data_converter, "on": replace(pydantic_data_converter, payload_codec=codec)}
    try:
        clients = {k: await Client.connect(f"127.0.0.1:{server.port}", data_converter=c)
                   for k, c in converters.items()}
        runner = UnsandboxedWorkflowRunner()  # as deployed (SAFETY_WORKER__WORKFLOW_SANDBOX=false)
        async with (Worker(clients["off"], task_queue=QUEUES["off"], workflows=[ModerateEventWorkflow],
                           activities=[screen_clean, record_nothing], workflow_runner=runner),
                    Worker(clients["on"], task_queue=QUEUES["on"], workflows=[ModerateEventWorkflow],
                           activities=[screen_clean, record_nothing], workflow_runner=runner)):
            for k in ("off", "on"):  # warm-up: caches, connections
                await measure(clients[k], QUEUES[k], proc, rate, 50)
            totals: dict[str, list[float]] = {"off": [], "on": []}
            for r in range(rounds):
                for k in ("off", "on") if r % 2 == 0 else ("on", "off"):
                    server_ms, own_ms = await measure(clients[k], QUEUES[k], proc, rate, n)
                    totals[k].append(server_ms + own_ms)
                    print(f"round {r + 1}  codec {k:3s}  server {server_ms:5.1f} ms + client/worker {own_ms:5.1f} ms "
                          f"= {server_ms + own_ms:5.1f} ms CPU per clean event", flush=True)
            off, on = (sum(v) / len(v) for v in (totals["off"], totals["on"]))
            print(f"mean: off {off:.1f} ms, on {on:.1f} ms per clean event ({(on - off):+.1f} ms, "
                  f"{(on / off - 1) * 100:+.0f}%)")
            print(f"encrypt + decrypt of one clean event's workflow input: {await micro(codec):.1f} us")
    finally:
        server.stop()


if __name__ == "__main__":  # the workflow sandbox re-imports this module: run nothing at import
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rate", type=float, default=20.0, help="workflows started per second (open loop)")
    parser.add_argument("--n", type=int, default=300, help="workflows per variant and round")
    parser.add_argument("--rounds", type=int, default=2, help="rounds; each runs off and on (order alternates)")
    args = parser.parse_args()
    asyncio.run(main(args.rate, args.n, args.rounds))
