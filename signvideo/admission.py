"""What a caller is told before and while they wait: open or closed, queue
full, interpreters on duty, and the expected wait."""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass
from typing import Any

import asyncpg

from signvideo.db import Q
from signvideo.errors import NotFound
from signvideo.hours import describe_opening, describe_weekly, open_state
from signvideo.routing import schedule_of

# Used until there are answered calls to learn from (DOMAIN.md: 10 to 15 minutes).
DEFAULT_HANDLE_SECONDS = 600.0


@dataclass(frozen=True)
class Staffing:
    handle_seconds: float
    on_duty: dict[str, int]
    idle: dict[str, int]

    def expected_wait(self, language: str, position: int, offered: bool = False) -> int | None:
        """Seconds until a caller at ``position`` (1 = next) is likely to be answered.

        With ``n`` interpreters on duty finishing calls of average length ``h``
        at random moments, one frees up every ``h / n`` on average; the callers
        ahead who are not served by an idle interpreter each take one of them.
        None when no interpreter who speaks the language is on duty. A call
        being `offered` to an interpreter is about to be answered: 0.
        """
        if offered:
            return 0
        on_duty = self.on_duty.get(language, 0)
        if on_duty == 0:
            return None
        waiting_for_someone = position - self.idle.get(language, 0)
        if waiting_for_someone <= 0:
            return 0
        return math.ceil(waiting_for_someone * self.handle_seconds / on_duty)


async def staffing(con: asyncpg.Connection | asyncpg.Pool) -> Staffing:
    rows = await con.fetch(Q["staffing"])
    handle = await con.fetchval(Q["recent_handle_seconds"])
    return Staffing(
        handle_seconds=float(handle) if handle else DEFAULT_HANDLE_SECONDS,
        on_duty={r["language"]: r["on_duty"] for r in rows},
        idle={r["language"]: r["idle"] for r in rows},
    )


async def availability(
    pool: asyncpg.Pool, slug: str, language: str | None = None, now: dt.datetime | None = None
) -> dict[str, Any]:
    """The answer to "can I call now, and how long will I wait?" for a caller's page."""
    async with pool.acquire() as con:
        authority = await con.fetchrow(Q["authority_by_slug"], slug)
        if authority is None:
            raise NotFound(f"There is no service called {slug!r}. Check the link you were given.")
        chosen = str(language if language in authority["languages"] else authority["languages"][0])
        now = now or await con.fetchval("SELECT now()")
        opening = open_state(await schedule_of(con, authority), now)
        waiting = await con.fetchval(Q["waiting_by_language"], chosen)
        queued_here = await con.fetchval(Q["queue_length"], authority["id"])
        staff = await staffing(con)
    return {
        "authority": authority["slug"],
        "name": authority["name"],
        "open": opening.is_open,
        "reason": None if opening.is_open else opening.reason,
        "next_open": None if opening.next_open is None else opening.next_open.isoformat(),
        "next_open_text": None
        if opening.next_open is None
        else describe_opening(opening.next_open, now, authority["time_zone"]),
        "languages": list(authority["languages"]),
        "language": chosen,
        "queue_full": queued_here >= authority["max_queue_length"],
        "waiting": waiting,
        "interpreters_on_duty": staff.on_duty.get(chosen, 0),
        "expected_wait_seconds": staff.expected_wait(chosen, waiting + 1),
        "opening_lines": describe_weekly(authority["opening_hours"]),
    }
