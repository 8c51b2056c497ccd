"""Sustained matches per second on one server process.

2,000 callers wait; 200 interpreters on WebSockets are available and decline
every offer at once, so each interpreter is free again straight away and the
matcher always has work: a waiting call for every free interpreter (each call
is never offered again to someone who declined it, and there are far more
calls than any interpreter declines in the run). A match is one offer made:
the pairing decision, the call and interpreter changed, both logged, and the
offer delivered to the console. Counted from the `offered` events the server
committed in a measured window after a warm-up.

    python -m bench.matches_per_second [--seconds 20]
"""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path
from tempfile import TemporaryDirectory

import asyncpg

from bench.harness import (
    Client,
    add_interpreters,
    client_session,
    database_settings,
    fill_queue,
    fresh_database,
    machine,
    one_server,
    open_console,
    postgres_server,
    raise_file_limit,
    report,
)

WAITING = 2000
INTERPRETERS = 200
WARM_UP_S = 5.0
GOAL = 500


async def main(seconds: float) -> None:
    raise_file_limit()
    async with postgres_server() as pg_url:
        url = await fresh_database(pg_url, "bench_matches")
        interpreters = await add_interpreters(url, INTERPRETERS, ("BSL",), "m")
        with TemporaryDirectory(prefix="signvideo-bench-") as tmp:
            async with (
                one_server(url, Path(tmp)) as server,
                client_session() as http,
            ):
                sent_declines = 0
                sending: set[asyncio.Task[float]] = set()

                def decline_offers(client: Client, _at: float, data: dict[str, object]) -> None:
                    nonlocal sent_declines
                    if data["type"] == "offer":
                        sent_declines += 1
                        task = asyncio.create_task(
                            client.send(type="decline", call_id=data["call_id"])
                        )
                        sending.add(task)
                        task.add_done_callback(sending.discard)

                callers = await fill_queue(http, server, url, WAITING, "BSL")
                db = await asyncpg.connect(url)

                consoles = []
                for _user_id, session in interpreters:
                    console = await open_console(http, server, session)
                    console.keep = False
                    console.on_message = decline_offers
                    consoles.append(console)
                # All become available together; from here on the matcher is busy.
                await asyncio.gather(
                    *(c.send(type="set_state", state="available") for c in consoles)
                )
                await asyncio.sleep(WARM_UP_S)
                count_sql = "SELECT count(*), now() FROM call_events WHERE kind = 'offered'"
                first_count, first_at = await db.fetchrow(count_sql)
                await asyncio.sleep(seconds)
                last_count, last_at = await db.fetchrow(count_sql)
                declined = await db.fetchval("SELECT count(*) FROM call_declines")
                doubled = await db.fetchval(
                    "SELECT count(*) FROM (SELECT interpreter_id FROM calls "
                    "WHERE state IN ('offered', 'answered') GROUP BY 1 HAVING count(*) > 1) x"
                )
                await db.close()
                for client in [*callers, *consoles]:
                    await client.close()
        settings = await database_settings(url)
    window = (last_at - first_at).total_seconds()
    rate = (last_count - first_count) / window
    report(
        {
            "benchmark": "matches_per_second",
            "waiting_callers": WAITING,
            "interpreters_on_websockets": INTERPRETERS,
            "window_seconds": round(window, 2),
            "matches": last_count - first_count,
            "matches_per_second": round(rate, 1),
            "declines_recorded": declined,
            "declines_sent": sent_declines,
            "interpreters_with_two_live_calls": doubled,
            "goal_at_least_500_per_second": rate >= GOAL,
            "database": settings,
            "machine": machine(),
        }
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20.0)
    asyncio.run(main(parser.parse_args().seconds))
