"""Who is still there: dropped sockets, resumes, leases, and dead server processes.

A caller whose socket drops keeps their place (or their call) for a grace
period; an interpreter whose console drops keeps their state for a lease.
A server process that dies cannot say its sockets dropped, so every process
beats a heartbeat into the database, and any process that sees a stale one
marks that process's sockets as dropped from its last beat.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import asyncpg

from signvideo import handover, routing
from signvideo.auth import token_digest
from signvideo.config import Config
from signvideo.db import Q
from signvideo.errors import NotFound

# A process that has not beaten for this long is taken for dead.
PROCESS_DEAD_AFTER = 10.0
HEARTBEAT_EVERY = 2.0


async def register_process(pool: asyncpg.Pool, process_id: uuid.UUID) -> None:
    await pool.execute(Q["process_register"], process_id)


async def heartbeat(pool: asyncpg.Pool, process_id: uuid.UUID) -> None:
    if await pool.fetchval(Q["process_heartbeat"], process_id) is None:
        # Another process took us for dead (a long pause); our sockets were
        # marked dropped, and their owners will resume. Carry on beating.
        await pool.execute(Q["process_register"], process_id)


async def retire_process(pool: asyncpg.Pool, process_id: uuid.UUID) -> None:
    """A clean stop: this process's sockets count as dropped from now."""
    async with pool.acquire() as con, con.transaction():
        await _mark_process_gone(con, process_id, await con.fetchval("SELECT now()"))
        await con.execute(Q["process_forget"], process_id)


async def _mark_process_gone(con: asyncpg.Connection, process_id: uuid.UUID, at: Any) -> None:
    for row in await con.fetch(Q["callers_of_process_gone"], process_id, at):
        if row["state"] == "offered":
            await _withdraw_for_absent_caller(con, row["id"])
    await con.fetch(Q["consoles_of_process_gone"], process_id, at)
    for row in await con.fetch(Q["guests_of_process_gone"], process_id, at):
        await guest_away(con, row["call_id"], row["id"], "disconnected")


async def guest_away(
    con: asyncpg.Connection, call_id: uuid.UUID, guest_id: int, reason: str
) -> None:
    """Tell the caller and the interpreter that the call's guest has gone
    (left, removed, or their connection dropped)."""
    message = {
        "type": "party_left",
        "call_id": str(call_id),
        "party": routing.guest_key(guest_id),
        "reason": reason,
    }
    await routing.tell_parties(con, call_id, routing.guest_key(guest_id), message)


async def _withdraw_for_absent_caller(con: asyncpg.Connection, call_id: uuid.UUID) -> None:
    call = await con.fetchrow(Q["call_for_update"], call_id)
    if call is not None and call["state"] == "offered":
        interpreter_id = call["interpreter_id"]
        await routing.withdraw_offer(con, call_id, interpreter_id, "caller_disconnected")
        await routing.set_interpreter(con, interpreter_id, "available")


async def caller_dropped(pool: asyncpg.Pool, call_id: uuid.UUID, process_id: uuid.UUID) -> None:
    """The caller's socket closed: their place is kept, but nobody is offered the call."""
    async with pool.acquire() as con, con.transaction():
        row = await con.fetchrow(Q["caller_gone"], call_id, process_id)
        if row is None:
            return
        await routing.event(con, call_id, "caller_dropped", "caller", row["interpreter_id"])
        if row["state"] == "offered":
            await _withdraw_for_absent_caller(con, call_id)


@dataclass(frozen=True)
class Resumed:
    call_id: uuid.UUID
    state: str
    authority_slug: str
    interpreter_id: int | None


async def resume_caller(pool: asyncpg.Pool, token: str, process_id: uuid.UUID) -> Resumed:
    async with pool.acquire() as con, con.transaction():
        call = await con.fetchrow(Q["call_by_token"], token_digest(token))
        if call is None or call["state"] == "ended":
            raise NotFound("Your place has expired. You can join the queue again.")
        await con.execute(Q["caller_back"], call["id"], process_id)
        await routing.event(con, call["id"], "caller_resumed", "caller", call["interpreter_id"])
        if call["state"] == "answered":
            # The others make new WebRTC offers to the caller.
            back = {"type": "peer_resumed", "call_id": str(call["id"]), "party": "caller"}
            await routing.tell_parties(con, call["id"], routing.CALLER_PARTY, back)
        # No queue notice: a dropped caller kept their place, so no one's
        # place moves (routing.sql, waiting_positions); their own place is
        # sent with `queued`.
    return Resumed(call["id"], call["state"], call["slug"], call["interpreter_id"])


async def console_attached(
    pool: asyncpg.Pool, user_id: int, process_id: uuid.UUID
) -> asyncpg.Record:
    """A console connected: it takes over the interpreter's state as it stands."""
    async with pool.acquire() as con, con.transaction():
        await con.execute(Q["console_row"], user_id)
        row: asyncpg.Record = await con.fetchrow(Q["console_attach"], user_id, process_id)
        return row


async def console_dropped(pool: asyncpg.Pool, user_id: int, process_id: uuid.UUID) -> None:
    await pool.fetchval(Q["console_gone"], user_id, process_id)


async def sweep_due(db: asyncpg.Pool | asyncpg.Connection, config: Config) -> asyncpg.Record:
    """Which of the sweep's steps have something to do now (sweep_due):
    offers, handovers, wrap_ups, dead_processes, callers, guests, consoles."""
    row: asyncpg.Record = await db.fetchrow(
        Q["sweep_due"], PROCESS_DEAD_AFTER, config.caller_grace, config.console_lease
    )
    return row


async def sweep(pool: asyncpg.Pool, config: Config) -> None:
    """Apply leases and grace periods; run by every process, safe to run at once."""
    async with pool.acquire() as con, con.transaction():
        for dead in await con.fetch(Q["dead_processes"], PROCESS_DEAD_AFTER):
            await _mark_process_gone(con, dead["id"], dead["heartbeat_at"])
    for row in await pool.fetch(Q["callers_past_grace"], config.caller_grace):
        await routing.end_call(
            pool, row["id"], "caller_disconnected", "caller", config, tell_caller=False
        )
    await pool.execute(Q["guests_past_grace"], config.caller_grace)
    for row in await pool.fetch(Q["consoles_past_lease"], config.console_lease):
        await interpreter_gone(pool, row["user_id"], config)


async def interpreter_gone(pool: asyncpg.Pool, user_id: int, config: Config) -> None:
    """The console has been gone past its lease: an offer goes back, a call ends.

    In a warm handover (signvideo.handover), an incoming interpreter who goes
    leaves the call to the first; a first interpreter who goes once their
    colleague has joined leaves the call to them, so the caller stays.
    """
    status = await routing.interpreter_state(pool, user_id)
    if status is None:
        return
    call_id = status["call_id"]  # set only while offered or in a call
    left_handover = call_id is not None and await handover.leave_incoming(
        pool, user_id, call_id, "interpreter_disconnected"
    )
    if status["state"] == "in_call" and not left_handover:
        if not await handover.complete_if_joined(pool, user_id, call_id, config):
            await routing.end_call(
                pool,
                call_id,
                "interpreter_disconnected",
                "interpreter",
                config,
                tell_interpreter=False,
            )
        return
    async with pool.acquire() as con, con.transaction():
        row = await con.fetchrow(Q["interpreter_state_for_update"], user_id)
        if row is None or row["console_gone_at"] is None or row["state"] == "in_call":
            return  # came back, or the call is being ended by someone else
        if row["state"] == "offered" and row["call_id"] is not None:
            await routing.withdraw_offer(con, row["call_id"], user_id, "interpreter_disconnected")
        if row["state"] != "offline":
            await routing.set_interpreter(
                con, user_id, "offline", reason="console_closed", tell=False
            )
