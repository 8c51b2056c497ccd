"""Rating calls: calls per second, as a pure function and through the database.

* pure: `billing.rate_call` over 1,000,000 generated calls of 2026 (a tenth
  of them on bank holidays, in and out of hours, across the clock changes;
  some never answered, some failing within the technical grace, a few before
  any rate card) with three rate cards, in this process, nothing else;
* database: N ended calls (100,000 by default) with their event logs
  ('queued', 'answered', 'ended' with its reason) written set-based, then
  each rated by `billing.rate_ended_call(con, call_id)`, the path a call's
  end takes in production, in transactions of 1,000 calls on 4 connections.
  Afterwards the ledger is checked against `rate_call` of the same calls.

    python -m bench.rating [--calls 1000000] [--rounds 3] [--db-calls 100000]
                           [--connections 4] [--batch 1000]
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import random
import statistics
import time
import uuid
from collections import Counter
from typing import Any

import asyncpg

from bench.harness import (
    BENCH_SLUG,
    database_settings,
    fresh_database,
    machine,
    postgres_server,
    report,
)
from signvideo import billing, hours
from signvideo.db import Q, init_connection

ZONE_NAME = "Europe/London"
NATION = "england-and-wales"
YEAR = 2026
BATCH = 100_000

# Three cards, as an authority's might be over two price rises: the last one
# bills in 30 s increments with a minimum charge and longer in-hours.
CARDS = [
    billing.RateCard(
        id=1,
        effective_from=dt.date(2025, 4, 1),
        in_hours_pence_per_minute=150,
        out_of_hours_pence_per_minute=200,
        bank_holiday_pence_per_minute=250,
        billing_increment_seconds=60,
    ),
    billing.RateCard(
        id=2,
        effective_from=dt.date(2026, 4, 1),
        in_hours_pence_per_minute=160,
        out_of_hours_pence_per_minute=210,
        bank_holiday_pence_per_minute=260,
        billing_increment_seconds=60,
        minimum_charge_pence=50,
        monthly_standing_charge_pence=5000,
    ),
    billing.RateCard(
        id=3,
        effective_from=dt.date(2026, 10, 1),
        in_hours_pence_per_minute=165,
        out_of_hours_pence_per_minute=220,
        bank_holiday_pence_per_minute=275,
        billing_increment_seconds=30,
        minimum_charge_pence=50,
        monthly_standing_charge_pence=5000,
        in_hours_days=frozenset({1, 2, 3, 4, 5, 6}),
        in_hours_start=dt.time(8),
        in_hours_end=dt.time(18),
    ),
]


def bank_holidays(year: int) -> list[dt.date]:
    day, found = dt.date(year, 1, 1), []
    while day.year == year:
        if hours.bank_holiday(NATION, day):
            found.append(day)
        day += dt.timedelta(days=1)
    return found


def generate_calls(count: int, rng: random.Random) -> list[billing.CallTimes]:
    """`count` ended calls: a tenth on bank holidays, 1 in 200 in January 2025
    (before any card), 14 % never answered, 3 % failing within seconds."""
    zone = hours.zone(ZONE_NAME)
    holidays = bank_holidays(YEAR)
    calls = []
    for _ in range(count):
        draw = rng.random()
        if draw < 0.10:
            day = rng.choice(holidays)
        elif draw < 0.105:
            day = dt.date(2025, 1, 1) + dt.timedelta(days=rng.randrange(31))
        else:
            day = dt.date(YEAR, 1, 1) + dt.timedelta(days=rng.randrange(365))
        local = dt.datetime.combine(day, dt.time(), zone) + dt.timedelta(
            seconds=rng.randrange(86400)
        )
        queued = local.astimezone(dt.UTC)
        wait = dt.timedelta(seconds=rng.uniform(2, 180))
        kind = rng.random()
        if kind < 0.14:
            calls.append(billing.CallTimes(queued, None, queued + wait, "caller_left"))
            continue
        answered = queued + wait
        if kind < 0.17:
            talk, reason = rng.uniform(0.5, 9.5), rng.choice(sorted(billing.TECHNICAL_END_REASONS))
        else:
            talk = rng.uniform(20, 3600)
            reason = rng.choice(
                ["caller_hung_up", "interpreter_hung_up", "interpreter_hung_up", "media_failed"]
            )
        calls.append(
            billing.CallTimes(queued, answered, answered + dt.timedelta(seconds=talk), reason)
        )
    return calls


def pure_rounds(count: int, rounds: int) -> dict[str, Any]:
    zone = hours.zone(ZONE_NAME)
    rng = random.Random(20261201)
    started = time.perf_counter()
    batches = []
    left = count
    while left > 0:
        batches.append(generate_calls(min(BATCH, left), rng))
        left -= BATCH
    print(f"generated {count:,} calls ({time.perf_counter() - started:.1f} s)", flush=True)
    rate_call = billing.rate_call
    per_second = []
    kinds: Counter[str] = Counter()
    net = 0
    for n in range(rounds):
        seconds = 0.0
        for batch in batches:
            began = time.perf_counter()
            ratings = [rate_call(call, CARDS, zone, NATION) for call in batch]
            seconds += time.perf_counter() - began
            if n == 0:
                kinds.update(r.zero_rated_reason or r.band or "?" for r in ratings)
                net += sum(r.net_pence for r in ratings)
        per_second.append(count / seconds)
        print(f"pure round {n + 1}: {count / seconds:,.0f} calls/s", flush=True)
    return {
        "calls": count,
        "rounds": rounds,
        "calls_per_second_median": round(statistics.median(per_second)),
        "calls_per_second_runs": [round(r) for r in per_second],
        "microseconds_per_call_median": round(1e6 / statistics.median(per_second), 2),
        "lines_by_band_or_zero_reason": dict(sorted(kinds.items())),
        "net_pence_total": net,
    }


# N ended calls of 2026 with their event logs: a tenth on bank holidays
# ($3), the rest spread over the year, at any local time; one in seven never
# answered, one in 29 of the answered failing within 1 to 8 seconds.
INSERT_CALLS = """
WITH g AS (
    SELECT n,
           (CASE WHEN n % 10 = 0
                 THEN ($4::date[])[(1 + (n / 10) % cardinality($4::date[]))::integer]
                 ELSE date '2026-01-01' + ((n * 7919) % 365)::integer END
            + make_interval(secs => (n * 104729) % 86400)) AT TIME ZONE 'Europe/London'
               AS queued_at,
           n % 7 <> 0 AS answered,
           n % 29 = 0 AS failed,
           5 + (n * 31) % 175 AS wait_s,
           CASE WHEN n % 29 = 0 THEN 1 + n % 8 ELSE 20 + (n * 1009) % 3580 END AS talk_s
    FROM generate_series($2::bigint, $3::bigint) AS n
), c AS (
    INSERT INTO calls (authority_id, token_sha256, state, queued_at, answered_at, ended_at,
                       end_reason, deadline_at)
    SELECT $1, sha256(int8send(n)), 'ended', queued_at,
           CASE WHEN answered THEN queued_at + make_interval(secs => wait_s) END,
           queued_at + make_interval(secs => wait_s + CASE WHEN answered THEN talk_s ELSE 0 END),
           CASE WHEN NOT answered THEN 'caller_left'
                WHEN failed THEN 'interpreter_disconnected'
                WHEN n % 2 = 0 THEN 'caller_hung_up' ELSE 'interpreter_hung_up' END,
           queued_at + interval '60 seconds'
    FROM g
    RETURNING id, queued_at, answered_at, ended_at, end_reason
)
INSERT INTO call_events (call_id, at, kind, actor, detail)
SELECT id, queued_at, 'queued', 'caller', '{}'::jsonb FROM c
UNION ALL
SELECT id, answered_at, 'answered', 'interpreter', '{}'::jsonb FROM c
WHERE answered_at IS NOT NULL
UNION ALL
SELECT id, ended_at, 'ended', CASE WHEN end_reason LIKE 'interpreter%' THEN 'interpreter'
                                   ELSE 'caller' END,
       jsonb_build_object('reason', end_reason,
                          'was', CASE WHEN answered_at IS NULL THEN 'queued' ELSE 'answered' END)
FROM c
"""


async def make_calls(url: str, count: int) -> int:
    """The bench authority gets the cards of 1 April and 1 October 2026 and
    `count` ended calls; returns its id."""
    con = await asyncpg.connect(url)
    try:
        await init_connection(con)
        authority_id: int = await con.fetchval(
            "SELECT id FROM authorities WHERE slug = $1", BENCH_SLUG
        )
        for card in CARDS[1:]:
            await con.execute(
                """INSERT INTO rate_cards (authority_id, effective_from,
                       in_hours_pence_per_minute, out_of_hours_pence_per_minute,
                       bank_holiday_pence_per_minute, billing_increment_seconds,
                       minimum_charge_pence, monthly_standing_charge_pence, in_hours_days,
                       in_hours_start, in_hours_end)
                   VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)""",
                authority_id,
                card.effective_from,
                card.in_hours_pence_per_minute,
                card.out_of_hours_pence_per_minute,
                card.bank_holiday_pence_per_minute,
                card.billing_increment_seconds,
                card.minimum_charge_pence,
                card.monthly_standing_charge_pence,
                sorted(card.in_hours_days),
                card.in_hours_start,
                card.in_hours_end,
            )
        started = time.perf_counter()
        holidays = bank_holidays(YEAR)
        for first in range(1, count + 1, BATCH):
            last = min(first + BATCH - 1, count)
            async with con.transaction():
                await con.execute(INSERT_CALLS, authority_id, first, last, holidays)
            print(
                f"inserted {last:,} calls with events ({time.perf_counter() - started:.0f} s)",
                flush=True,
            )
        for table in ("calls", "call_events"):
            await con.execute(f"VACUUM ANALYZE {table}")
    finally:
        await con.close()
    return authority_id


async def rate_in_database(
    url: str, authority_id: int, connections: int, batch: int
) -> dict[str, Any]:
    con = await asyncpg.connect(url)
    await init_connection(con)
    ids: list[uuid.UUID] = [
        row["id"]
        for row in await con.fetch(
            "SELECT id FROM calls WHERE authority_id = $1 ORDER BY ended_at", authority_id
        )
    ]
    batches = asyncio.Queue[list[uuid.UUID]]()
    for at in range(0, len(ids), batch):
        batches.put_nowait(ids[at : at + batch])
    written = 0
    transaction_seconds: list[float] = []

    async def worker() -> None:
        nonlocal written
        mine = await asyncpg.connect(url)
        try:
            await init_connection(mine)
            while not batches.empty():
                calls = batches.get_nowait()
                began = time.perf_counter()
                async with mine.transaction():
                    for call_id in calls:
                        if await billing.rate_ended_call(mine, call_id):
                            written += 1
                transaction_seconds.append(time.perf_counter() - began)
        finally:
            await mine.close()

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(connections)))
    seconds = time.perf_counter() - started
    print(f"rated {len(ids):,} calls in the database: {len(ids) / seconds:,.0f} calls/s")

    # The ledger against rate_call of the same event logs.
    cards = [
        billing.RateCard.from_row(row) for row in await con.fetch(Q["rate_cards_of"], authority_id)
    ]
    zone = hours.zone(ZONE_NAME)
    expected_kinds: Counter[str] = Counter()
    expected_net = 0
    for row in await con.fetch(
        """SELECT min(at) FILTER (WHERE kind = 'queued') AS queued_at,
                  min(at) FILTER (WHERE kind = 'answered') AS answered_at,
                  max(at) FILTER (WHERE kind = 'ended') AS ended_at,
                  max(detail ->> 'reason') AS end_reason
           FROM call_events GROUP BY call_id"""
    ):
        rating = billing.rate_call(billing.CallTimes(*row.values()), cards, zone, NATION)
        expected_kinds[rating.zero_rated_reason or rating.band or "?"] += 1
        expected_net += rating.net_pence
    ledger = await con.fetch(
        "SELECT coalesce(zero_rated_reason, rate_band) AS kind, count(*) AS lines, "
        "sum(net_pence)::bigint AS net FROM ledger WHERE kind = 'call' GROUP BY 1 ORDER BY 1"
    )
    await con.close()
    kinds = {row["kind"]: row["lines"] for row in ledger}
    net = sum(row["net"] for row in ledger)
    return {
        "calls": len(ids),
        "connections": connections,
        "calls_per_transaction": batch,
        "seconds": round(seconds, 2),
        "calls_per_second": round(len(ids) / seconds),
        "transaction_ms": {
            "p50": round(statistics.median(transaction_seconds) * 1000, 1),
            "max": round(max(transaction_seconds) * 1000, 1),
        },
        "lines_written": written,
        "lines_by_band_or_zero_reason": kinds,
        "net_pence_total": net,
        "ledger_matches_rate_call": kinds == dict(expected_kinds) and net == expected_net,
    }


async def main(calls: int, rounds: int, db_calls: int, connections: int, batch: int) -> None:
    pure = pure_rounds(calls, rounds)
    async with postgres_server() as pg_url:
        url = await fresh_database(pg_url, "bench_rating")
        began = time.perf_counter()
        authority_id = await make_calls(url, db_calls)
        setup_s = time.perf_counter() - began
        database = await rate_in_database(url, authority_id, connections, batch)
        database["setup_seconds"] = round(setup_s, 1)
        settings = await database_settings(url)
    report(
        {
            "benchmark": "rating",
            "pure_rate_call": pure,
            "rate_ended_call_in_database": database,
            "database": settings,
            "machine": machine(),
        }
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--db-calls", type=int, default=100_000)
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument("--batch", type=int, default=1000)
    args = parser.parse_args()
    asyncio.run(main(args.calls, args.rounds, args.db_calls, args.connections, args.batch))
