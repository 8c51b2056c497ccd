"""Warm handover: a second interpreter joins a call, then the first leaves.

The call's interpreter asks for a handover. The matcher offers it, before
any waiting call, to the eligible free interpreter idle longest (the same
rule as for calls), who accepts or declines within the offer time. Once
they accept, they join the call beside the first interpreter: they make
WebRTC offers to every other party, as any newcomer does, and the first can
brief them. The first then leaves the call to them: the call's interpreter
changes in one transaction, the first goes into wrap-up, and the caller's
call, and its charge, carry on throughout (billing reads the first
`answered` event). Each step is in the call's event log.
"""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg

from signvideo import routing
from signvideo.config import Config
from signvideo.db import Q
from signvideo.errors import OutOfTurn


def _status(
    call_id: uuid.UUID,
    state: str,
    colleague: dict[str, Any] | None = None,
    reason: str | None = None,
) -> dict[str, Any]:
    return {
        "type": "handover",
        "call_id": str(call_id),
        "state": state,
        "colleague": colleague,
        "reason": reason,
    }


async def _tell_asker(
    con: asyncpg.Connection, h: asyncpg.Record, state: str, **fields: Any
) -> None:
    """Tell the interpreter who asked for the handover how it stands."""
    await routing.post(
        con,
        routing.interpreter_key(h["from_interpreter"]),
        _status(h["call_id"], state, **fields),
    )


async def _name(con: asyncpg.Connection, user_id: int) -> str:
    name: str = await con.fetchval(Q["display_name"], user_id)
    return name


async def request(pool: asyncpg.Pool, user_id: int, call_id: uuid.UUID) -> None:
    """The call's interpreter asks for a colleague to take over."""
    async with pool.acquire() as con, con.transaction():
        call = await con.fetchrow(Q["call_for_update"], call_id)
        if call is None or call["state"] != "answered" or call["interpreter_id"] != user_id:
            raise OutOfTurn("You can ask for a handover only in a call you are interpreting.")
        if await con.fetchval(Q["handover_request"], call_id, user_id) is None:
            raise OutOfTurn("A handover is already under way for this call.")
        await routing.event(con, call_id, "handover_requested", "interpreter", user_id)
        await routing.post(con, routing.interpreter_key(user_id), _status(call_id, "requested"))


async def match(pool: asyncpg.Pool, config: Config) -> int:
    """Offer waiting handovers to free eligible interpreters; returns how many."""
    offered = 0
    # Every matching round comes here first: one cheap look when there is none.
    if not await pool.fetchval(Q["handovers_any_waiting"]):
        return 0
    async with pool.acquire() as con, con.transaction():
        for h in await con.fetch(Q["handovers_waiting"]):
            who = await con.fetchval(
                Q["handover_candidate"],
                h["language"],
                h["specialism"],
                h["from_interpreter"],
                h["declined"],
            )
            if who is None:
                continue
            await con.execute(Q["handover_offered"], h["id"], who, config.offer_timeout)
            await routing.event(con, h["call_id"], "handover_offered", "matcher", who)
            # The offer, then the new state, as for a call (match_round).
            offer = await con.fetchrow(Q["handover_incoming"], who, h["call_id"])
            await routing.post(con, routing.interpreter_key(who), offer["offer"])
            await routing.set_interpreter(con, who, "offered", h["call_id"])
            await _tell_asker(con, h, "offered")
            offered += 1
    return offered


async def _incoming(
    con: asyncpg.Connection, user_id: int, call_id: uuid.UUID
) -> asyncpg.Record | None:
    h = await con.fetchrow(Q["handover_of_incoming_for_update"], user_id)
    return h if h is not None and h["call_id"] == call_id else None


async def accept(
    pool: asyncpg.Pool,
    user_id: int,
    display_name: str,
    call_id: uuid.UUID,
    ice_servers: list[dict[str, Any]],
    ice_transport_policy: str,
) -> bool:
    """Join the call as the incoming interpreter; False if no handover of
    that call is offered to them (it may be a call's offer instead)."""
    async with pool.acquire() as con, con.transaction():
        call = await con.fetchrow(Q["call_for_update"], call_id)
        h = await _incoming(con, user_id, call_id)
        if h is None or h["state"] != "offered":
            return False
        if h["offer_expired"] or call is None or call["state"] != "answered":
            raise OutOfTurn("This handover offer has expired.")
        await con.execute(Q["handover_joined"], h["id"])
        await con.execute(Q["set_missed_offers"], user_id, 0)
        await routing.set_interpreter(con, user_id, "in_call", call_id)
        await routing.event(con, call_id, "handover_joined", "interpreter", user_id)
        me = routing.interpreter_key(user_id)
        authority = await con.fetchrow(Q["authority_of_call"], call_id)
        connected = routing.connected_message(
            call_id,
            "interpreter",
            ice_servers,
            routing.interpreter_peer(authority),
            ice_transport_policy=ice_transport_policy,
            party=me,
            parties=await routing.parties_in_call(con, call_id, me),
        )
        await routing.post(con, me, {**connected, "handover": True})
        joined = {
            "type": "party_joined",
            "call_id": str(call_id),
            **routing.party_entry(me, "interpreter", display_name),
            "handover": True,
        }
        await routing.tell_parties(con, call_id, me, joined)
        await _tell_asker(
            con, h, "joined", colleague=routing.party_entry(me, "interpreter", display_name)
        )
    return True


async def decline(pool: asyncpg.Pool, user_id: int, call_id: uuid.UUID) -> bool:
    """Decline a handover offer; False if none of that call is offered to them."""
    async with pool.acquire() as con, con.transaction():
        # The call first, then its handover, as everywhere (end_call too):
        # the other order deadlocked with a call ending.
        await con.execute(Q["call_for_update"], call_id)
        h = await _incoming(con, user_id, call_id)
        if h is None or h["state"] != "offered":
            return False
        await con.execute(Q["handover_back_to_requested"], h["id"])
        await con.execute(Q["set_missed_offers"], user_id, 0)
        await routing.set_interpreter(con, user_id, "available")
        await routing.event(con, call_id, "handover_declined", "interpreter", user_id)
        await _tell_asker(con, h, "requested")
    return True


async def expire(pool: asyncpg.Pool, config: Config) -> int:
    """Handover offers nobody answered in time go to someone else; an
    interpreter who misses offers in a row is paused, as for calls."""
    count = 0
    for row in await pool.fetch(Q["handover_offers_expired"]):
        async with pool.acquire() as con, con.transaction():
            await con.execute(Q["call_for_update"], row["call_id"])  # the call first
            h = await con.fetchrow(Q["handover_open_for_update"], row["call_id"])
            if h is None or h["state"] != "offered" or not h["offer_expired"]:
                continue
            who = h["to_interpreter"]
            await con.execute(Q["handover_back_to_requested"], h["id"])
            await routing.event(con, h["call_id"], "handover_missed", "matcher", who)
            await routing.post(
                con,
                routing.interpreter_key(who),
                {"type": "offer_withdrawn", "call_id": str(h["call_id"]), "reason": "expired"},
            )
            await routing.missed_offer(con, who, config)
            await _tell_asker(con, h, "requested")
            count += 1
    return count


async def cancel(pool: asyncpg.Pool, user_id: int, call_id: uuid.UUID) -> None:
    """The interpreter who asked no longer wants the handover."""
    async with pool.acquire() as con, con.transaction():
        await con.execute(Q["call_for_update"], call_id)
        h = await con.fetchrow(Q["handover_open_for_update"], call_id)
        if h is None or h["from_interpreter"] != user_id:
            raise OutOfTurn("There is no handover of yours to cancel in this call.")
        await _stop(con, h, "cancelled_by_interpreter", config_wrap_up=0)
        await routing.event(con, call_id, "handover_cancelled", "interpreter", user_id)


async def _stop(
    con: asyncpg.Connection, h: asyncpg.Record, reason: str, *, config_wrap_up: float
) -> None:
    """End a handover under way: an offer is withdrawn; an incoming
    interpreter who has joined leaves the call (into wrap-up if
    ``config_wrap_up``); the interpreter who asked is told."""
    call_id = h["call_id"]
    await con.execute(Q["handover_finish"], h["id"], "cancelled", reason)
    who = h["to_interpreter"]
    if h["state"] == "offered":
        await routing.post(
            con,
            routing.interpreter_key(who),
            {"type": "offer_withdrawn", "call_id": str(call_id), "reason": "handover_cancelled"},
        )
        await routing.set_interpreter(con, who, "available")
    elif h["state"] == "joined":
        await routing.post(
            con,
            routing.interpreter_key(who),
            {"type": "ended", "call_id": str(call_id), "reason": reason},
        )
        await routing.after_call(con, who, config_wrap_up)
        await routing.tell_parties(
            con,
            call_id,
            routing.interpreter_key(who),
            {
                "type": "party_left",
                "call_id": str(call_id),
                "party": routing.interpreter_key(who),
                "reason": "left",
            },
        )
    await _tell_asker(con, h, "cancelled", reason=reason)


async def leave_incoming(
    pool: asyncpg.Pool, user_id: int, call_id: uuid.UUID, reason: str = "incoming_left"
) -> bool:
    """The incoming interpreter leaves before the handover is complete (hangs
    up, or their console is gone); the call carries on with the first.
    False if they are not the incoming interpreter of that call."""
    async with pool.acquire() as con, con.transaction():
        await con.execute(Q["call_for_update"], call_id)
        h = await _incoming(con, user_id, call_id)
        if h is None:
            return False
        if h["state"] == "offered":
            # Not joined yet: someone else is asked instead.
            await con.execute(Q["handover_back_to_requested"], h["id"])
            await routing.set_interpreter(con, user_id, "available", tell=False)
            await _tell_asker(con, h, "requested")
            await routing.event(con, call_id, "handover_missed", "interpreter", user_id)
            return True
        await _stop(con, h, reason, config_wrap_up=0)
        await routing.event(
            con, call_id, "handover_cancelled", "interpreter", user_id, reason=reason
        )
    return True


async def complete(pool: asyncpg.Pool, user_id: int, call_id: uuid.UUID, config: Config) -> None:
    """The first interpreter leaves the call to the incoming one."""
    async with pool.acquire() as con, con.transaction():
        call = await con.fetchrow(Q["call_for_update"], call_id)
        h = await con.fetchrow(Q["handover_open_for_update"], call_id)
        if (
            call is None
            or call["state"] != "answered"
            or call["interpreter_id"] != user_id
            or h is None
            or h["state"] != "joined"
        ):
            raise OutOfTurn("You can leave the call to a colleague once they have joined it.")
        incoming = h["to_interpreter"]
        await con.execute(Q["handover_pass_call"], call_id, incoming)
        await con.execute(Q["handover_finish"], h["id"], "completed", "handed_over")
        await routing.event(
            con, call_id, "handed_over", "interpreter", incoming, from_interpreter=user_id
        )
        me = routing.interpreter_key(user_id)
        await routing.post(
            con, me, {"type": "ended", "call_id": str(call_id), "reason": "handed_over"}
        )
        await routing.after_call(con, user_id, config.wrap_up)
        left = {
            "type": "party_left",
            "call_id": str(call_id),
            "party": me,
            "reason": "handed_over",
        }
        await routing.tell_parties(con, call_id, me, left)
        name = await _name(con, user_id)
        await routing.post(
            con,
            routing.interpreter_key(incoming),
            _status(call_id, "completed", routing.party_entry(me, "interpreter", name)),
        )


async def complete_if_joined(
    pool: asyncpg.Pool, user_id: int, call_id: uuid.UUID, config: Config
) -> bool:
    """Leave the call to the incoming interpreter if one has joined it."""
    try:
        await complete(pool, user_id, call_id, config)
    except OutOfTurn:
        return False
    return True


async def close_with_call(
    con: asyncpg.Connection, call_id: uuid.UUID, reason: str, wrap_up: float
) -> None:
    """The call is ending (for ``reason``): a handover under way ends with it
    (called by routing.end_call, in its transaction)."""
    h = await con.fetchrow(Q["handover_open_for_update"], call_id)
    if h is not None:
        await _stop(con, h, reason, config_wrap_up=wrap_up)
