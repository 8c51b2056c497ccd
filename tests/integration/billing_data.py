"""Calls with chosen times, for billing and report tests: each is written as
the routing engine writes one (a call row and its event log) and then rated
by the real rating code, so its ledger line is what production would write."""

from __future__ import annotations

import datetime as dt
import os
import uuid

import asyncpg

from signvideo import billing

UTC = dt.UTC


def at(text: str) -> dt.datetime:
    """A UTC time from 'YYYY-MM-DD HH:MM:SS'."""
    return dt.datetime.fromisoformat(text).replace(tzinfo=UTC)


async def ended_call(
    pool: asyncpg.Pool,
    authority: str,
    queued: dt.datetime,
    answered: dt.datetime | None,
    ended: dt.datetime,
    reason: str = "caller_hung_up",
    *,
    cost_centre: str | None = None,
    window_seconds: int = 60,
) -> uuid.UUID:
    """An ended call of `authority` (a slug), rated; returns its id."""
    async with pool.acquire() as con, con.transaction():
        call_id: uuid.UUID = await con.fetchval(
            """INSERT INTO calls (authority_id, token_sha256, state, queued_at, deadline_at,
                                  answered_at, ended_at, end_reason, cost_centre)
               SELECT id, $2, 'ended', $3::timestamptz,
                      $3::timestamptz + make_interval(secs => $7::integer), $4, $5, $6, $8
               FROM authorities WHERE slug = $1
               RETURNING id""",
            authority,
            os.urandom(32),
            queued,
            answered,
            ended,
            reason,
            window_seconds,
            cost_centre,
        )
        events = [(queued, "queued", "caller", {})]
        if answered is not None:
            events.append((answered, "answered", "interpreter", {}))
        events.append((ended, "ended", "caller", {"reason": reason}))
        await con.executemany(
            "INSERT INTO call_events (call_id, at, kind, actor, detail) "
            "VALUES ($1, $2, $3, $4, $5)",
            [(call_id, when, kind, actor, detail) for when, kind, actor, detail in events],
        )
        assert await billing.rate_ended_call(con, call_id)
    return call_id
