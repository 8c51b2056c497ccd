"""Join-to-offer latency with 1,000 callers waiting and 200 interpreters on
WebSockets, beside the floor and beside pgqueuer, all on one database.

The 1,000 waiting callers want ISL; the 100 interpreters who sign ISL are on a
break, so those callers stay queued (and watched for position changes) while
every sample runs. The other 100 interpreters sign BSL only and are available.
With `--waiting same-language`, the waiting callers want BSL for a legal
matter instead, and the 100 on a break are the ones who hold the legal
specialism: the waiting callers then share the joining caller's queue (BSL),
though a join offered at once moves none of their places. Each sample: a new
caller sends `join` for BSL (no specialism); the time until one of the 200
consoles receives the `offer`. The caller then leaves, which withdraws the
offer, and the next sample waits until that interpreter is available again.

The floor, measured in the same run between samples: one WebSocket round
trip to the same server process (`ping`, `pong`) plus one durable commit of
a row on the same database. pgqueuer: the time from `enqueue` to its
entrypoint running, one job at a time, a worker listening in this process,
with the server up (its sockets open, idle), so in the same conditions as
the other two.

The samples are taken in alternating blocks (`--blocks`, default 5): a block
of joins (each followed by a floor sample), then a block of pgqueuer jobs,
and so on. A machine shared with others is busier in one minute than in the
next; alternating spreads that over both alike, where measuring all of one
and then all of the other gave each a different minute (p99 moved by 2 ms
between runs). Within a block each is measured alone: pgqueuer's worker
runs only during its own blocks, so its bookkeeping commits never fall on
a join (and a join's clean-up never on a job). Each block starts with 20
unmeasured samples: connections and prepared statements warm, as in a
service that has been running. pgqueuer is measured once more at the end,
with the server stopped, as this benchmark measured it until 2026-12-01.

`server_side` gives the same joins as the server timed them, from its own
histograms on /metrics (signvideo.metrics; warm-up joins included): the
whole join, and within it the join's own statement in the database with
its commit.

5,000 samples of each by default: p99 is then the 50th slowest, not the
10th of 1,000, and PostgreSQL's autovacuum, which visits each busy table
once a minute and slows the next few statements on those tables, falls on
both the joins and pgqueuer's jobs in a run rather than on one or the other.

    python -m bench.join_to_offer [--samples 5000] [--blocks 5]
        [--waiting other-language|same-language]
"""

from __future__ import annotations

import argparse
import asyncio
import math
import time
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Any

import aiohttp
import asyncpg
from prometheus_client.parser import text_string_to_metric_families

from bench.harness import (
    BENCH_SLUG,
    Client,
    add_interpreters,
    client_session,
    database_settings,
    fill_queue,
    fresh_database,
    machine,
    no_collector_pauses,
    one_server,
    open_caller,
    open_console,
    postgres_server,
    raise_file_limit,
    report,
    summary_ms,
)
from tests.servers import ServerProcess

WAITING = 1000
INTERPRETERS = 200
# Unmeasured samples first, for each of the three at the start of every
# block: connections and prepared statements warm, as in a service that has
# been running.
WARM_UP = 20


async def pgqueuer_latency(url: str, samples: int, install: bool = True) -> list[float]:
    from pgqueuer import AsyncpgDriver, Job, Queries, QueueManager

    worker_con = await asyncpg.connect(url)
    producer_con = await asyncpg.connect(url)
    try:
        if install:
            await Queries(AsyncpgDriver(producer_con)).install()
        producer = Queries(AsyncpgDriver(producer_con))
        manager = QueueManager(Queries(AsyncpgDriver(worker_con)))
        arrived: asyncio.Queue[float] = asyncio.Queue()

        @manager.entrypoint("bench")
        async def job(_job: Job) -> None:
            arrived.put_nowait(time.perf_counter())

        runner = asyncio.create_task(manager.run(batch_size=1))
        await asyncio.sleep(1.0)  # let the worker LISTEN before the first job
        latencies = []
        with no_collector_pauses():
            for n in range(WARM_UP + samples):
                sent = time.perf_counter()
                await producer.enqueue("bench", None)
                latency = await asyncio.wait_for(arrived.get(), 10) - sent
                if n >= WARM_UP:
                    latencies.append(latency)
        manager.shutdown.set()
        await asyncio.wait_for(runner, 30)
        return latencies
    finally:
        await worker_con.close()
        await producer_con.close()


async def server_join_timings(
    http: aiohttp.ClientSession, server: ServerProcess
) -> dict[tuple[str, str], float]:
    """The server's own histograms of joins offered at once and of their
    statements in the database (signvideo.metrics): (sample name, bucket bound or
    "") to value."""
    text = await (await http.get(server.url("/metrics"))).text()
    found: dict[tuple[str, str], float] = {}
    for family in text_string_to_metric_families(text):
        if family.name not in ("signvideo_join_seconds", "signvideo_join_database_seconds"):
            continue
        for sample in family.samples:
            if sample.labels.get("outcome", "offered") == "offered":
                key = (sample.name, sample.labels.get("le", ""))
                found[key] = found.get(key, 0.0) + sample.value
    return found


def server_side(timings: dict[tuple[str, str], float]) -> dict[str, Any]:
    """The time inside the server of the joins offered at once, from its
    histograms' increase over the blocks of joins (warm-up joins included):
    means, and the bucket bounds within which p50 and p99 fall."""
    joins = timings[("signvideo_join_seconds_count", "")]

    def at_most(name: str, fraction: float) -> float:
        bounds = sorted(
            (float(le), count) for (sample, le), count in timings.items() if sample == name
        )
        return next(
            round(bound * 1000, 2) if bound != math.inf else bound
            for bound, count in bounds
            if count >= fraction * joins
        )

    whole = timings[("signvideo_join_seconds_sum", "")]
    database = timings[("signvideo_join_database_seconds_sum", "")]
    return {
        "joins": int(joins),
        "join_mean_ms": round(whole / joins * 1000, 2),
        "database_mean_ms": round(database / joins * 1000, 2),
        "database_share_of_join": round(database / whole, 2),
        "join_p50_at_most_ms": at_most("signvideo_join_seconds_bucket", 0.5),
        "join_p99_at_most_ms": at_most("signvideo_join_seconds_bucket", 0.99),
        "database_p50_at_most_ms": at_most("signvideo_join_database_seconds_bucket", 0.5),
        "database_p99_at_most_ms": at_most("signvideo_join_database_seconds_bucket", 0.99),
    }


# What the waiting callers want: (language, specialism).
WAITING_KINDS = {"other-language": ("ISL", None), "same-language": ("BSL", "legal")}


async def main(samples: int, blocks: int, waiting_kind: str) -> None:
    raise_file_limit()
    language, specialism = WAITING_KINDS[waiting_kind]
    async with postgres_server() as pg_url:
        url = await fresh_database(pg_url, "bench_join_to_offer")
        bsl_only = await add_interpreters(url, INTERPRETERS // 2, ("BSL",), "b")
        # On a break: the only ones who could take the waiting calls.
        bsl_isl = await add_interpreters(
            url, INTERPRETERS // 2, ("BSL", "ISL"), "i", ("legal",) if specialism else ()
        )
        with TemporaryDirectory(prefix="signvideo-bench-") as tmp:
            async with (
                one_server(url, Path(tmp), SIGNVIDEO_OFFER_TIMEOUT="60") as server,
                client_session() as http,
            ):
                figures = await run(
                    http, server, url, bsl_only, bsl_isl, samples, blocks, (language, specialism)
                )
                figures["waiting_callers_want"] = {"language": language, "specialism": specialism}
        # pgqueuer again with the server stopped: the machine quieter than
        # for the other figures (no process holding 1,200 sockets and
        # sweeping once a second), as this benchmark measured it until
        # 2026-12-01.
        figures["pgqueuer_server_stopped_ms"] = summary_ms(
            await pgqueuer_latency(url, samples, install=False)
        )
        figures["database"] = await database_settings(url)
    floor_p99 = figures["floor_ms"]["p99"]
    ours_p99 = figures["join_to_offer_ms"]["p99"]
    figures["p99_over_floor_p99"] = round(ours_p99 / floor_p99, 2)
    figures["goal_p99_within_3x_floor"] = ours_p99 <= 3 * floor_p99
    figures["goal_p99_below_pgqueuer_p99"] = (
        ours_p99 < figures["pgqueuer_enqueue_to_dequeue_ms"]["p99"]
    )
    figures["p99_below_pgqueuer_server_stopped_p99"] = (
        ours_p99 < figures["pgqueuer_server_stopped_ms"]["p99"]
    )
    figures["machine"] = machine()
    report(figures)


async def run(
    http: aiohttp.ClientSession,
    server: ServerProcess,
    url: str,
    bsl_only: list[tuple[int, str]],
    bsl_isl: list[tuple[int, str]],
    samples: int,
    blocks: int,
    waiting_for: tuple[str, str | None],
) -> dict[str, Any]:
    offers: asyncio.Queue[tuple[float, Client, dict[str, object]]] = asyncio.Queue()

    def on_console_message(client: Client, at: float, data: dict[str, object]) -> None:
        if data["type"] == "offer":
            offers.put_nowait((at, client, data))

    consoles = []
    for _user_id, session in bsl_isl:
        console = await open_console(http, server, session)
        await console.send(type="set_state", state="break", reason="training")
        await console.expect("state", state="break")
        consoles.append(console)
    for _user_id, session in bsl_only:
        console = await open_console(http, server, session)
        console.on_message = on_console_message
        await console.send(type="set_state", state="available")
        await console.expect("state", state="available")
        consoles.append(console)

    waiting = await fill_queue(http, server, url, WAITING, *waiting_for)
    db = await asyncpg.connect(url)
    await db.execute("CREATE TABLE bench_floor (id bigserial PRIMARY KEY, at timestamptz)")
    await asyncio.sleep(2)  # let the position updates for the joins settle

    floor_caller = await open_caller(http, server)

    async def join_block(size: int) -> None:
        with no_collector_pauses():
            for n in range(WARM_UP + size):
                measured = n >= WARM_UP
                caller = await open_caller(http, server)
                sent = await caller.send(type="join", authority=BENCH_SLUG, language="BSL")
                offered_at, console, offer = await asyncio.wait_for(offers.get(), 30)
                if measured:
                    join_to_offer.append(offered_at - sent)
                _, queued = await caller.expect("queued")
                assert offer["call_id"] == queued["call_id"], (offer, queued)
                await caller.send(type="leave", call_id=queued["call_id"])
                await console.expect("state", state="available")
                await caller.close()

                started = await floor_caller.send(type="ping")
                await floor_caller.expect("pong")
                round_trip = time.perf_counter() - started
                started = time.perf_counter()
                await db.execute("INSERT INTO bench_floor (at) VALUES (now())")
                if measured:
                    floor.append(round_trip + time.perf_counter() - started)

    join_to_offer: list[float] = []
    floor: list[float] = []
    pgqueuer: list[float] = []
    # pgqueuer in the same conditions: the server up with its 1,000
    # waiting callers and 200 consoles, as for the floor.
    before = await server_join_timings(http, server)
    for block, size in enumerate(block_sizes(samples, blocks)):
        await join_block(size)
        pgqueuer += await pgqueuer_latency(url, size, install=block == 0)
    after = await server_join_timings(http, server)
    timings = {key: value - before.get(key, 0.0) for key, value in after.items()}

    queued_still = await db.fetchval("SELECT count(*) FROM calls WHERE state = 'queued'")
    await db.close()
    for client in [*waiting, *consoles, floor_caller]:
        await client.close()
    return {
        "benchmark": "join_to_offer",
        "waiting_callers": int(queued_still),
        "interpreters_on_websockets": len(bsl_only) + len(bsl_isl),
        "join_to_offer_ms": summary_ms(join_to_offer),
        "floor_ms": summary_ms(floor),
        # The same joins as the server timed them (signvideo.metrics): the
        # join's own statement in the database, with the commit, against the whole.
        "server_side": server_side(timings),
        "pgqueuer_enqueue_to_dequeue_ms": summary_ms(pgqueuer),
        "blocks": blocks,
    }


def block_sizes(samples: int, blocks: int) -> list[int]:
    """`samples` in `blocks` nearly equal parts."""
    share, extra = divmod(samples, blocks)
    return [share + (1 if n < extra else 0) for n in range(blocks) if share or n < extra]


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=5000)
    parser.add_argument("--blocks", type=int, default=5)
    parser.add_argument("--waiting", choices=sorted(WAITING_KINDS), default="other-language")
    args = parser.parse_args()
    if not 1 <= args.blocks <= args.samples:
        parser.error("--blocks must be between 1 and --samples")
    asyncio.run(main(args.samples, args.blocks, args.waiting))
