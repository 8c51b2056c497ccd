"""10,000 callers waiting at once on one server process: its resident memory,
and how long a change of place takes to reach the last of them.

The callers join over WebSockets (20 at a time) and wait; nobody is on duty.
Once the queue is quiet, the memory of the server process is read. Then the
first caller leaves, which moves every other caller up one place; the time is
taken from sending `leave` until each caller's `position` message arrives (the
clock of this process, which also has to read 10,000 sockets; its garbage
collector leaves the objects that exist before the leave alone).

    python -m bench.ten_thousand_waiting [--callers 10000]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import time
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Any

import aiohttp
import psutil

from bench.harness import (
    BENCH_SLUG,
    Client,
    client_session,
    database_settings,
    fresh_database,
    gather_limited,
    machine,
    one_server,
    open_caller,
    postgres_server,
    raise_file_limit,
    report,
    summary_ms,
)
from tests.servers import ServerProcess

QUIET_S = 2.0


async def main(count: int) -> None:
    raise_file_limit()
    async with postgres_server() as pg_url:
        url = await fresh_database(pg_url, "bench_ten_thousand")
        with TemporaryDirectory(prefix="signvideo-bench-") as tmp:
            async with one_server(url, Path(tmp)) as server, client_session() as http:
                figures = await run(http, server, count)
        figures["database"] = await database_settings(url)
    figures["machine"] = machine()
    report(figures)


async def run(http: aiohttp.ClientSession, server: ServerProcess, count: int) -> dict[str, Any]:
    last_message = time.perf_counter()
    moved_at: dict[str, float] = {}
    watching = False

    def on_message(client: Client, at: float, data: dict[str, object]) -> None:
        nonlocal last_message
        last_message = at
        if watching and data["type"] == "position":
            moved_at.setdefault(str(data["call_id"]), at)

    server_process = psutil.Process(server.process.pid)
    rss_before = server_process.memory_info().rss

    async def join(_n: int) -> tuple[Client, dict[str, object]]:
        caller = await open_caller(http, server)
        caller.on_message = on_message
        await caller.send(type="join", authority=BENCH_SLUG)
        _, queued = await caller.expect("queued", timeout=120)
        caller.keep = False
        return caller, queued

    started = time.perf_counter()
    joined = await gather_limited(count, 20, join)
    join_seconds = time.perf_counter() - started
    while time.perf_counter() - last_message < QUIET_S:
        await asyncio.sleep(0.2)
    rss_waiting = server_process.memory_info().rss

    # The benchmark's own collector must not stall its reading of 10,000
    # sockets while it measures the server: what exists now is left alone.
    gc.collect()
    gc.freeze()
    first, first_queued = next(pair for pair in joined if pair[1]["position"] == 1)
    others = {str(queued["call_id"]) for caller, queued in joined if caller is not first}
    watching = True
    sent = await first.send(type="leave", call_id=first_queued["call_id"])
    deadline = time.perf_counter() + 30
    while len(moved_at) < len(others) and time.perf_counter() < deadline:
        await asyncio.sleep(0.05)
    reached = [moved_at[call_id] - sent for call_id in others if call_id in moved_at]
    for caller, _ in joined:
        await caller.close()
    return {
        "benchmark": "ten_thousand_waiting",
        "callers": count,
        "join_seconds": round(join_seconds, 1),
        "server_rss_mib_at_start": round(rss_before / 2**20, 1),
        "server_rss_mib_with_all_waiting": round(rss_waiting / 2**20, 1),
        "callers_told_of_new_place": len(reached),
        "callers_to_tell": len(others),
        "position_change_reached_ms": summary_ms(reached) if reached else None,
        "goal_rss_at_most_1_gib": rss_waiting <= 2**30,
        "goal_last_reached_within_1_s": bool(reached)
        and len(reached) == len(others)
        and max(reached) <= 1.0,
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--callers", type=int, default=10_000)
    asyncio.run(main(parser.parse_args().callers))
