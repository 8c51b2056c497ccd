"""The queue, the matcher and offers: every routing decision is one transaction.

Functions here change the database and, in the same transaction, post the
messages that the change owes to callers and interpreters (see mailbox.py),
so a message is sent if and only if the change it reports was committed.
"""

from __future__ import annotations

import hashlib
import secrets
import uuid
from dataclasses import dataclass
from typing import Any

import asyncpg

from signvideo.billing import RateRule, rate_call
from signvideo.db import Q
from signvideo.errors import NotFound, OutOfTurn


def caller_key(call_id: uuid.UUID | str) -> str:
    return f"caller:{call_id}"


def interpreter_key(user_id: int) -> str:
    return f"interpreter:{user_id}"


async def post(con: asyncpg.Connection, recipient: str, payload: dict[str, Any]) -> None:
    """Queue ``payload`` for ``recipient``; it is delivered once the transaction commits."""
    await con.execute(Q["mailbox_put"], recipient, payload)


async def _event(
    con: asyncpg.Connection,
    call_id: uuid.UUID,
    kind: str,
    actor: str,
    interpreter_id: int | None = None,
    **detail: Any,
) -> None:
    await con.execute(Q["append_event"], call_id, kind, actor, interpreter_id, detail)


async def _set_interpreter(
    con: asyncpg.Connection, user_id: int, state: str, call_id: uuid.UUID | None = None
) -> None:
    await con.execute(Q["set_interpreter_state"], user_id, state, call_id)
    await post(
        con,
        interpreter_key(user_id),
        {"type": "state", "state": state, "call_id": None if call_id is None else str(call_id)},
    )


@dataclass(frozen=True)
class Joined:
    call_id: uuid.UUID
    token: str
    authority_slug: str


async def join_queue(pool: asyncpg.Pool, slug: str) -> Joined:
    token = secrets.token_urlsafe(24)
    async with pool.acquire() as con, con.transaction():
        authority = await con.fetchrow(Q["authority_by_slug"], slug)
        if authority is None:
            raise NotFound(f"There is no service called {slug!r}. Check the link you were given.")
        row = await con.fetchrow(
            Q["enqueue_call"], authority["id"], hashlib.sha256(token.encode()).digest()
        )
        await _event(con, row["id"], "queued", "caller", authority=slug)
        await con.execute(Q["notify_queue_changed"])
    return Joined(row["id"], token, slug)


async def positions(pool: asyncpg.Pool, call_ids: list[uuid.UUID]) -> dict[uuid.UUID, int]:
    rows = await pool.fetch(Q["waiting_positions"], call_ids)
    return {r["id"]: r["position"] for r in rows}


async def match_waiting(pool: asyncpg.Pool, offer_timeout: float) -> int:
    """Offer waiting calls to free interpreters until no pair is left; returns offers made."""
    made = 0
    while True:
        async with pool.acquire() as con, con.transaction():
            await con.execute(Q["lock_matcher"])
            pair = await con.fetchrow(Q["next_match"])
            if pair is None:
                return made
            call_id, interpreter_id = pair["call_id"], pair["interpreter_id"]
            await con.execute(Q["offer_call"], call_id, interpreter_id, offer_timeout)
            await _event(con, call_id, "offered", "matcher", interpreter_id)
            await post(
                con,
                interpreter_key(interpreter_id),
                {
                    "type": "offer",
                    "call_id": str(call_id),
                    "authority": {"slug": pair["slug"], "name": pair["name"]},
                    "waited_seconds": pair["waited_seconds"],
                    "expires_in": offer_timeout,
                },
            )
            await _set_interpreter(con, interpreter_id, "offered", call_id)
        made += 1


async def interpreter_state(pool: asyncpg.Pool, user_id: int) -> tuple[str, uuid.UUID | None]:
    row = await pool.fetchrow(Q["interpreter_state"], user_id)
    if row is None:
        return "offline", None
    return row["state"], row["call_id"]


async def set_availability(pool: asyncpg.Pool, user_id: int, available: bool) -> None:
    async with pool.acquire() as con, con.transaction():
        row = await con.fetchrow(Q["interpreter_state_for_update"], user_id)
        state = row["state"] if row else "offline"
        if state in ("offered", "in_call"):
            raise OutOfTurn(
                "You cannot change availability while a call is offered to you or in progress."
            )
        wanted = "available" if available else "offline"
        if state != wanted:
            await _set_interpreter(con, user_id, wanted)
        else:
            await post(
                con, interpreter_key(user_id), {"type": "state", "state": state, "call_id": None}
            )


async def accept(
    pool: asyncpg.Pool,
    user_id: int,
    display_name: str,
    call_id: uuid.UUID,
    ice_servers: list[dict[str, Any]],
) -> None:
    async with pool.acquire() as con, con.transaction():
        answered = await con.fetchval(Q["answer_call"], call_id, user_id)
        if answered is None:
            brief = await con.fetchrow(Q["call_brief"], call_id)
            if brief is None:
                raise NotFound("There is no such call.")
            if brief["state"] == "offered" and brief["interpreter_id"] == user_id:
                raise OutOfTurn("This offer has expired; the call has gone to someone else.")
            raise OutOfTurn("You can only accept a call that is being offered to you.")
        await _set_interpreter(con, user_id, "in_call", call_id)
        await _event(con, call_id, "answered", "interpreter", user_id)
        authority = await con.fetchval(
            "SELECT a.slug FROM calls c JOIN authorities a ON a.id = c.authority_id "
            "WHERE c.id = $1",
            call_id,
        )
        await post(
            con,
            caller_key(call_id),
            {
                "type": "connected",
                "call_id": str(call_id),
                "role": "caller",
                "ice_servers": ice_servers,
                "peer": {"display_name": display_name},
            },
        )
        await post(
            con,
            interpreter_key(user_id),
            {
                "type": "connected",
                "call_id": str(call_id),
                "role": "interpreter",
                "ice_servers": ice_servers,
                "peer": {"authority": authority},
            },
        )
        await con.execute(Q["notify_queue_changed"])


async def decline(pool: asyncpg.Pool, user_id: int, call_id: uuid.UUID) -> None:
    async with pool.acquire() as con, con.transaction():
        call = await con.fetchrow(Q["call_for_update"], call_id)
        if call is None:
            raise NotFound("There is no such call.")
        if call["state"] != "offered" or call["interpreter_id"] != user_id:
            raise OutOfTurn("You can only decline a call that is being offered to you.")
        await con.execute(Q["requeue_call"], call_id)
        await con.execute(Q["record_decline"], call_id, user_id)
        await _set_interpreter(con, user_id, "available")
        await _event(con, call_id, "declined", "interpreter", user_id)


async def expire_offers(pool: asyncpg.Pool) -> int:
    """Return offers nobody answered in time to the queue; the caller keeps their place."""
    async with pool.acquire() as con, con.transaction():
        rows = await con.fetch(Q["expired_offers"])
        for row in rows:
            call_id, interpreter_id = row["id"], row["interpreter_id"]
            await con.execute(Q["requeue_call"], call_id)
            await con.execute(Q["record_decline"], call_id, interpreter_id)
            await _set_interpreter(con, interpreter_id, "available")
            await _event(con, call_id, "offer_expired", "matcher", interpreter_id)
            await post(
                con,
                interpreter_key(interpreter_id),
                {"type": "offer_withdrawn", "call_id": str(call_id), "reason": "expired"},
            )
    return len(rows)


async def end_call(
    pool: asyncpg.Pool,
    call_id: uuid.UUID,
    reason: str,
    actor: str,
    *,
    tell_caller: bool = True,
    tell_interpreter: bool = True,
) -> bool:
    """End a call in whatever state it is in; returns False if it had already ended.

    An answered call is charged here, in the same transaction that ends it, so
    a call is charged once however many times (or by whichever process) its
    end is processed.
    """
    async with pool.acquire() as con, con.transaction():
        call = await con.fetchrow(Q["call_for_update"], call_id)
        if call is None:
            raise NotFound("There is no such call.")
        if call["state"] == "ended":
            return False
        previous, interpreter_id = call["state"], call["interpreter_id"]
        finished = await con.fetchrow(Q["finish_call"], call_id, reason)
        if previous == "answered":
            authority = await con.fetchrow(
                "SELECT rate_pence_per_minute, billing_increment_seconds, minimum_charge_pence "
                "FROM authorities WHERE id = $1",
                call["authority_id"],
            )
            rule = RateRule(
                authority["rate_pence_per_minute"],
                authority["billing_increment_seconds"],
                authority["minimum_charge_pence"],
            )
            seconds = max(finished["billable_seconds"], 0)
            await con.execute(
                Q["insert_charge"],
                call_id,
                call["authority_id"],
                seconds,
                rule.rate_pence_per_minute,
                rule.billing_increment_seconds,
                rule.minimum_charge_pence,
                rate_call(seconds, rule),
            )
        await _event(con, call_id, "ended", actor, interpreter_id, reason=reason, was=previous)
        ended = {"type": "ended", "call_id": str(call_id), "reason": reason}
        if interpreter_id is not None and previous in ("offered", "answered"):
            if tell_interpreter:
                if previous == "offered":
                    await post(
                        con,
                        interpreter_key(interpreter_id),
                        {
                            "type": "offer_withdrawn",
                            "call_id": str(call_id),
                            "reason": "caller_left",
                        },
                    )
                else:
                    await post(con, interpreter_key(interpreter_id), ended)
                await _set_interpreter(con, interpreter_id, "available")
            else:
                await con.execute(Q["set_interpreter_state"], interpreter_id, "offline", None)
        if tell_caller:
            await post(con, caller_key(call_id), ended)
        await con.execute(Q["notify_queue_changed"])
    return True


async def interpreter_gone(pool: asyncpg.Pool, user_id: int) -> None:
    """The interpreter's console closed: an open offer goes back to the queue, a call ends."""
    state, call_id = await interpreter_state(pool, user_id)
    if state == "in_call" and call_id is not None:
        await end_call(
            pool, call_id, "interpreter_disconnected", "interpreter", tell_interpreter=False
        )
        return
    async with pool.acquire() as con, con.transaction():
        row = await con.fetchrow(Q["interpreter_state_for_update"], user_id)
        if row is None:
            return
        if row["state"] == "offered" and row["call_id"] is not None:
            await con.execute(Q["requeue_call"], row["call_id"])
            await con.execute(Q["record_decline"], row["call_id"], user_id)
            await _event(
                con,
                row["call_id"],
                "offer_withdrawn",
                "interpreter",
                user_id,
                reason="interpreter_disconnected",
            )
        if row["state"] != "in_call":
            await con.execute(Q["set_interpreter_state"], user_id, "offline", None)


async def relay_from_caller(
    pool: asyncpg.Pool, call_id: uuid.UUID, payload: dict[str, Any]
) -> None:
    sent = await pool.fetch(Q["relay_from_caller"], call_id, payload)
    if not sent:
        raise OutOfTurn("Your call is not connected to an interpreter yet.")


async def relay_from_interpreter(
    pool: asyncpg.Pool, user_id: int, call_id: uuid.UUID, payload: dict[str, Any]
) -> None:
    sent = await pool.fetch(Q["relay_from_interpreter"], call_id, payload, user_id)
    if not sent:
        raise OutOfTurn("That call is not connected to you.")
