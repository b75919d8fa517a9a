"""The Faust floor: a Faust agent that does nothing, over the same pre-produced records as a
worker bench, in a process of its own. What Faust itself costs per event on this machine.

    uv run python bench/faust_floor.py --group G --expect N topic [topic ...]

The group must already have committed offsets where the records start (the caller sets them
with start_group_at_end before producing). Prints one JSON line: events, seconds, events/s,
CPU seconds of this process.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import contextlib

import faust
from _broker import bench_bootstrap
from _common import proc_cpu_seconds


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument(
        "--bootstrap", default=None, help="a broker to use (default: one of the bench's own)"
    )
    p.add_argument("--group", required=True)
    p.add_argument("--expect", type=int, required=True)
    p.add_argument("--timeout", type=float, default=300.0)
    p.add_argument("topics", nargs="+")
    args = p.parse_args()
    args.bootstrap = bench_bootstrap(args.bootstrap)

    app = faust.App(
        args.group,
        broker=f"kafka://{args.bootstrap}",
        store="memory://",
        datadir=tempfile.mkdtemp(prefix="faust-floor-"),
        web_enabled=False,
        consumer_auto_offset_reset="earliest",
        topic_allow_declare=False,
        topic_disable_leader=True,
    )
    channel = app.topic(*args.topics, key_serializer="raw", value_serializer="raw")
    state: dict[str, Any] = {"n": 0, "first": None, "last": None}
    cpu0 = proc_cpu_seconds(os.getpid())

    @app.agent(channel)
    async def nothing(stream: Any) -> None:
        async for _value in stream:
            if state["first"] is None:
                state["first"] = time.perf_counter()
            state["n"] += 1
            if state["n"] >= args.expect and state["last"] is None:
                state["last"] = time.perf_counter()
                done.set()

    done = asyncio.Event()

    async def run() -> None:
        await app.start()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(done.wait(), args.timeout)
        with_cpu = proc_cpu_seconds(os.getpid()) - cpu0
        seconds = (state["last"] or time.perf_counter()) - (state["first"] or time.perf_counter())
        print(
            json.dumps(
                {
                    "events": state["n"],
                    "seconds": round(seconds, 3),
                    "events_per_s": round(state["n"] / seconds) if seconds > 0 else 0,
                    "cpu_s": round(with_cpu, 2),
                }
            ),
            flush=True,
        )
        await app.stop()

    asyncio.run(run())


if __name__ == "__main__":
    main()
