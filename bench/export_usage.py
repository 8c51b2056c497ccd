"""Exporting a million calls as CSV, against PostgreSQL's own COPY.

Goal (the billing issue): export 1,000,000 calls as CSV in at most 1.5 times
the time PostgreSQL's own `COPY (...) TO STDOUT` takes for the same rows in
the same run, with the server's peak resident memory at most 200 MB.

One authority (`bench`, Europe/London) gets N ended calls in November 2026,
each with its ledger line, written set-based (no event log: the export reads
the ledger and the calls only). Then, in alternating rounds, the same rows
are read three ways, each to a sink that only counts bytes and lines:

* copy: asyncpg's `copy_from_query` of the named query `usage_lines` with the
  export's parameters and time zone (PostgreSQL's own COPY, nothing else), as
  the database owner: the baseline; and the same COPY as the authority's
  staff (row-level security, which changes the plan), to tell the plan's
  cost from the service's own;
* write_csv: `exports.write_csv` in this process, as the service calls it
  (a read-only transaction as the authority's staff, row-level security);
  also once as the database owner, to tell row-level security's cost from
  the CRLF rewrite's;
* http: `GET /api/v1/authorities/bench/usage?month=2026-11&format=csv` from
  one `signvideo serve` process with an API token, the body streamed and
  discarded; the server's resident memory sampled every 50 ms.

    python -m bench.export_usage [--calls 1000000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import resource
import statistics
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Any

import aiohttp
import asyncpg
import psutil

from bench.harness import (
    BENCH_SLUG,
    database_settings,
    fresh_database,
    machine,
    one_server,
    postgres_server,
    report,
)
from signvideo import exports, tokens
from signvideo.db import Q, authority_scope, init_connection

MONTH = dt.date(2026, 11, 1)
CHUNK = 100_000
GOAL_RATIO = 1.5
GOAL_RSS_MB = 200.0

# N ended calls of November 2026 (UTC is London time that month): queued at
# a spread-out moment, 80 % answered after up to 2 minutes and lasting up to
# an hour, 3 % of those failing within the technical grace, the rest never
# answered. The line is what rate_call would write for the bench card (150 p
# a minute in every band, 60 s increments, 20 % VAT).
INSERT_CHUNK = """
WITH g AS (
    SELECT n,
           timestamptz '2026-11-01 00:00:00+00'
               + make_interval(secs => (n::bigint * 2477) % (29 * 86400)) AS queued_at,
           (n % 10) < 8 AS answered,
           (n % 97) = 0 AS failed,
           10 + (n * 7919) % 110 AS wait_s,
           CASE WHEN (n % 97) = 0 THEN 1 + n % 8 ELSE 20 + (n * 104729) % 3580 END AS talk_s
    FROM generate_series($2::bigint, $3::bigint) AS n
), c AS (
    INSERT INTO calls (authority_id, token_sha256, state, queued_at, answered_at, ended_at,
                       end_reason, deadline_at, language, cost_centre)
    SELECT $1, sha256(int8send(n)), 'ended', queued_at,
           CASE WHEN answered THEN queued_at + make_interval(secs => wait_s) END,
           queued_at + make_interval(secs => wait_s + CASE WHEN answered THEN talk_s ELSE 0 END),
           CASE WHEN NOT answered THEN 'caller_left'
                WHEN failed THEN 'caller_disconnected'
                WHEN n % 2 = 0 THEN 'caller_hung_up' ELSE 'interpreter_hung_up' END,
           queued_at + interval '60 seconds',
           CASE WHEN n % 5 = 0 THEN 'ISL' ELSE 'BSL' END,
           (ARRAY['ASC', 'HOU', 'REV', NULL])[(1 + n % 4)::integer]
    FROM g
    RETURNING id, queued_at, answered_at, ended_at, end_reason
), r AS (
    SELECT c.*,
           extract(epoch FROM ended_at - answered_at)::integer AS billable,
           CASE WHEN answered_at IS NULL THEN NULL
                WHEN extract(isodow FROM answered_at AT TIME ZONE 'Europe/London') <= 5
                     AND (answered_at AT TIME ZONE 'Europe/London')::time >= '09:00'
                     AND (answered_at AT TIME ZONE 'Europe/London')::time < '17:00'
                THEN 'in_hours' ELSE 'out_of_hours' END AS band
    FROM c
)
INSERT INTO ledger (authority_id, kind, call_id, billing_month, service_at, queued_at, ended_at,
                    rate_card_id, rate_band, rate_pence_per_minute, billing_increment_seconds,
                    minimum_charge_pence, billable_seconds, charged_seconds, net_pence,
                    vat_basis_points, zero_rated_reason)
SELECT $1, 'call', id, date '2026-11-01', coalesce(answered_at, queued_at), queued_at, ended_at,
       CASE WHEN answered_at IS NOT NULL THEN $4::bigint END, band,
       CASE WHEN answered_at IS NOT NULL THEN 150 END,
       CASE WHEN answered_at IS NOT NULL THEN 60 END,
       CASE WHEN answered_at IS NOT NULL THEN 0 END,
       coalesce(billable, 0),
       CASE WHEN answered_at IS NULL OR (end_reason = 'caller_disconnected' AND billable <= 10)
            THEN 0 ELSE (billable + 59) / 60 * 60 END,
       CASE WHEN answered_at IS NULL OR (end_reason = 'caller_disconnected' AND billable <= 10)
            THEN 0 ELSE ((billable + 59) / 60 * 60 * 150 + 59) / 60 END,
       CASE WHEN answered_at IS NULL THEN 0 ELSE 2000 END,
       CASE WHEN answered_at IS NULL THEN 'not_answered'
            WHEN end_reason = 'caller_disconnected' AND billable <= 10
            THEN 'technical_failure' END
FROM r
"""


@dataclass
class Counted:
    """What a sink was given."""

    size: int = 0
    lines: int = 0

    def add(self, data: bytes) -> None:
        self.size += len(data)
        self.lines += data.count(b"\n")


async def make_calls(url: str, count: int) -> str:
    """N calls with their lines under the bench authority; returns an API token for it."""
    con = await asyncpg.connect(url)
    try:
        await init_connection(con)
        authority_id, card_id = await con.fetchrow(
            "SELECT a.id, r.id FROM authorities a JOIN rate_cards r ON r.authority_id = a.id "
            "WHERE a.slug = $1",
            BENCH_SLUG,
        )
        await con.executemany(
            "INSERT INTO cost_centres (authority_id, code, name) VALUES ($1, $2, $3)",
            [(authority_id, code, code) for code in ("ASC", "HOU", "REV")],
        )
        admin_id = await con.fetchval("SELECT id FROM users WHERE role = 'operator_admin' LIMIT 1")
        _token_id, token = await tokens.make(con, authority_id, "bench export", admin_id)
        started = time.perf_counter()
        for first in range(1, count + 1, CHUNK):
            last = min(first + CHUNK - 1, count)
            async with con.transaction():
                await con.execute(INSERT_CHUNK, authority_id, first, last, card_id)
            print(
                f"inserted {last:,} calls and lines ({time.perf_counter() - started:.0f} s)",
                flush=True,
            )
        await con.execute("VACUUM ANALYZE calls")
        await con.execute("VACUUM ANALYZE ledger")
        print(f"vacuumed ({time.perf_counter() - started:.0f} s)", flush=True)
    finally:
        await con.close()
    return token


def _lines_query() -> str:
    return Q["usage_lines"].rstrip().rstrip(";")


async def copy_baseline(
    con: asyncpg.Connection, sel: exports.Selection, *, as_staff: bool = False
) -> Counted:
    """PostgreSQL's COPY of usage_lines, same parameters and time zone; as
    the database owner (the baseline), or as the authority's staff."""
    counted = Counted()

    async def out(data: bytes) -> None:
        counted.add(data)

    async with con.transaction(readonly=True):
        if as_staff:
            await authority_scope(con, sel.authority_id)
        await con.execute("SELECT set_config('TimeZone', $1, true)", sel.time_zone)
        await con.copy_from_query(
            _lines_query(), *sel.params(), output=out, format="csv", header=True
        )
    return counted


async def service_export(
    con: asyncpg.Connection, sel: exports.Selection, *, as_staff: bool
) -> Counted:
    """exports.write_csv in a read-only transaction; as the authority's staff
    (row-level security, as the service reads) or as the database owner."""
    counted = Counted()

    async def out(data: bytes) -> None:
        counted.add(data)

    async with con.transaction(readonly=True):
        if as_staff:
            await authority_scope(con, sel.authority_id)
        await exports.write_csv(con, sel, out)
    return counted


@dataclass
class HttpRun:
    counted: Counted
    seconds: float
    peak_rss_mb: float
    status: int
    server_cpu_s: float
    client_cpu_s: float


async def http_export(http: aiohttp.ClientSession, base_url: str, token: str, pid: int) -> HttpRun:
    proc = psutil.Process(pid)
    peak = proc.memory_info().rss
    done = asyncio.Event()

    async def sample() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, proc.memory_info().rss)
            await asyncio.sleep(0.05)

    sampler = asyncio.create_task(sample())
    counted = Counted()
    server_cpu = sum(proc.cpu_times()[:2])
    client_cpu = time.process_time()
    started = time.perf_counter()
    async with http.get(
        f"{base_url}/api/v1/authorities/{BENCH_SLUG}/usage",
        params={"month": MONTH.strftime("%Y-%m"), "format": "csv"},
        headers={"Authorization": f"Bearer {token}"},
    ) as response:
        async for data in response.content.iter_any():
            counted.add(data)
        status = response.status
    seconds = time.perf_counter() - started
    client_cpu = time.process_time() - client_cpu
    server_cpu = sum(proc.cpu_times()[:2]) - server_cpu
    done.set()
    await sampler
    peak = max(peak, proc.memory_info().rss)
    return HttpRun(counted, seconds, peak / 2**20, status, server_cpu, client_cpu)


def vm_hwm_mb(pid: int) -> float | None:
    """The process's peak resident memory over its whole life (Linux)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


async def timed(make: Callable[[], Awaitable[Counted]]) -> tuple[float, float, Counted]:
    """Wall seconds, this process's CPU seconds, and what was counted."""
    cpu = time.process_time()
    started = time.perf_counter()
    counted = await make()
    return time.perf_counter() - started, time.process_time() - cpu, counted


def figures(seconds: list[float], cpu: list[float] | None = None) -> dict[str, Any]:
    shown: dict[str, Any] = {
        "median_s": round(statistics.median(seconds), 3),
        "runs_s": [round(s, 3) for s in seconds],
    }
    if cpu is not None:
        shown["bench_process_cpu_s_runs"] = [round(s, 2) for s in cpu]
    return shown


async def main(calls: int, rounds: int) -> None:
    began = time.perf_counter()
    async with postgres_server() as pg_url:
        url = await fresh_database(pg_url, "bench_export_usage")
        token = await make_calls(url, calls)
        setup_s = time.perf_counter() - began
        con = await asyncpg.connect(url)
        await init_connection(con)
        authority = await con.fetchrow(Q["authority_by_slug"], BENCH_SLUG)
        sel = exports.selection(authority, {"month": MONTH.strftime("%Y-%m")})
        expected_lines = await con.fetchval(Q["usage_totals"], *sel.params())
        times: dict[str, list[float]] = {
            "copy": [],
            "copy_staff": [],
            "write_csv": [],
            "write_csv_owner": [],
        }
        cpu: dict[str, list[float]] = {name: [] for name in times}
        sizes: dict[str, set[tuple[int, int]]] = {name: set() for name in [*times, "http"]}
        http_runs: list[HttpRun] = []
        with TemporaryDirectory(prefix="signvideo-bench-") as tmp:
            async with (
                one_server(url, Path(tmp)) as server,
                aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=None)) as http,
            ):
                pid = server.process.pid
                idle_rss_mb = psutil.Process(pid).memory_info().rss / 2**20
                hwm_before_mb = vm_hwm_mb(pid)
                # One unmeasured read of everything, so that each way starts warm.
                await copy_baseline(con, sel)
                ways: dict[str, Callable[[], Awaitable[Counted]]] = {
                    "copy": lambda: copy_baseline(con, sel),
                    "copy_staff": lambda: copy_baseline(con, sel, as_staff=True),
                    "write_csv": lambda: service_export(con, sel, as_staff=True),
                    "write_csv_owner": lambda: service_export(con, sel, as_staff=False),
                }
                for n in range(rounds):
                    for name, way in ways.items():
                        seconds, cpu_seconds, counted = await timed(way)
                        times[name].append(seconds)
                        cpu[name].append(cpu_seconds)
                        sizes[name].add((counted.size, counted.lines))
                        print(f"round {n + 1} {name}: {seconds:.2f} s", flush=True)
                    run = await http_export(http, server.base_url, token, pid)
                    http_runs.append(run)
                    sizes["http"].add((run.counted.size, run.counted.lines))
                    print(
                        f"round {n + 1} http: {run.seconds:.2f} s, status {run.status}, "
                        f"server peak {run.peak_rss_mb:.1f} MiB",
                        flush=True,
                    )
                hwm_mb = vm_hwm_mb(pid)
        await con.close()
        settings = await database_settings(url)
    copy_median = statistics.median(times["copy"])
    http_seconds = [run.seconds for run in http_runs]
    ratio = {
        name: round(statistics.median(times[name]) / copy_median, 2)
        for name in ("copy_staff", "write_csv", "write_csv_owner")
    }
    ratio["http"] = round(statistics.median(http_seconds) / copy_median, 2)
    copy_bytes, copy_lines = next(iter(sizes["copy"]))
    # The export's only change is CRLF for LF: one byte more a line.
    same_rows = all(
        sizes[name] == {(copy_bytes + copy_lines, copy_lines)}
        for name in ("write_csv", "write_csv_owner", "http")
    ) and sizes["copy"] == sizes["copy_staff"] == {(copy_bytes, copy_lines)}
    peak_rss = max(run.peak_rss_mb for run in http_runs)
    report(
        {
            "benchmark": "export_usage",
            "calls": calls,
            "ledger_lines_selected": expected_lines,
            "rounds": rounds,
            "setup_seconds": round(setup_s, 1),
            "copy": figures(times["copy"], cpu["copy"]),
            "copy_as_staff": figures(times["copy_staff"], cpu["copy_staff"]),
            "write_csv_as_staff": figures(times["write_csv"], cpu["write_csv"]),
            "write_csv_as_owner": figures(times["write_csv_owner"], cpu["write_csv_owner"]),
            "http": {
                **figures(http_seconds),
                "statuses": [run.status for run in http_runs],
                "server_peak_rss_mib_runs": [round(run.peak_rss_mb, 1) for run in http_runs],
                "server_cpu_s_runs": [round(run.server_cpu_s, 2) for run in http_runs],
                "client_cpu_s_runs": [round(run.client_cpu_s, 2) for run in http_runs],
            },
            "ratio_to_copy": ratio,
            "bytes": {name: sorted(value) for name, value in sizes.items()},
            "lines_are_calls_plus_header": copy_lines == calls + 1,
            "same_rows_apart_from_crlf": same_rows,
            "server_rss_mib": {
                "idle": round(idle_rss_mb, 1),
                "peak_sampled": round(peak_rss, 1),
                "vm_hwm_before_downloads": None
                if hwm_before_mb is None
                else round(hwm_before_mb, 1),
                "vm_hwm_at_end": None if hwm_mb is None else round(hwm_mb, 1),
            },
            "bench_process_max_rss_mib": round(
                resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1
            ),
            "goal_http_within_1_5_times_copy": ratio["http"] <= GOAL_RATIO,
            "goal_server_peak_rss_at_most_200_mb": max(peak_rss, hwm_mb or 0) * 2**20
            <= GOAL_RSS_MB * 1e6,
            "database": settings,
            "machine": machine(),
        }
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    asyncio.run(main(args.calls, args.rounds))
