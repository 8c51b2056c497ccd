"""A hearing party in a call: the one-time invitation link an interpreter
makes, the guest who joins with it, and their leaving or removal.

The link's token is kept hashed (migration 0017). Opening the link's page
uses nothing; joining from it uses the link, once, in one transaction that
holds the call so that it cannot end meanwhile. A guest who joins gets a
token of their own, to come back after a dropped connection within the
callers' grace period. WebRTC runs as a mesh: the guest makes an offer to
each other party (docs/protocol.md).
"""

from __future__ import annotations

import datetime as dt
import secrets
import uuid
from dataclasses import dataclass
from typing import Any

import asyncpg
from aiohttp import web

from signvideo import routing
from signvideo.auth import token_digest
from signvideo.db import Q
from signvideo.errors import InvalidField, NotFound, OutOfTurn
from signvideo.keys import CONFIG, POOL
from signvideo.presence import guest_away
from signvideo.views import render

MAX_NAME_CHARS = 80
GUEST_PATH = "/guest/"


@dataclass(frozen=True)
class Invitation:
    token: str
    expires_at: dt.datetime


async def _own_call(
    con: asyncpg.Connection, user_id: int, call_id: uuid.UUID, what: str
) -> asyncpg.Record:
    """The interpreter's own answered call, locked; else refused, saying ``what``."""
    call = await con.fetchrow(Q["guest_call_for_update"], call_id)
    if call is None or call["state"] != "answered" or call["interpreter_id"] != user_id:
        raise OutOfTurn(f"You can {what} a hearing person only in a call you are interpreting.")
    return call


async def _take_out(
    con: asyncpg.Connection,
    call_id: uuid.UUID,
    guest_id: int,
    reason: str,
    *,
    by: int | None,
) -> bool:
    """The guest leaves the call (``reason``: left or removed, ``by`` the
    interpreter who removed them); False if they were not in it."""
    if await con.fetchval(Q["guest_leave"], guest_id, reason, call_id) is None:
        return False
    actor = "guest" if by is None else "interpreter"
    await routing.event(con, call_id, "guest_left", actor, by, reason=reason)
    await routing.post(
        con,
        routing.guest_key(guest_id),
        {
            "type": "ended",
            "call_id": str(call_id),
            "reason": "removed" if by is not None else "guest_left",
        },
    )
    await guest_away(con, call_id, guest_id, reason)
    return True


async def invite(pool: asyncpg.Pool, user_id: int, call_id: uuid.UUID, ttl: float) -> Invitation:
    """A new one-time link into the interpreter's call; an older unused one dies."""
    token = secrets.token_urlsafe(24)
    async with pool.acquire() as con, con.transaction():
        call = await _own_call(con, user_id, call_id, "invite")
        if call["guest_id"] is not None:
            raise OutOfTurn(
                "A hearing person is already in this call. Remove them before inviting another."
            )
        await con.execute(Q["guest_revoke_unused"], call_id)
        row = await con.fetchrow(Q["guest_invite"], call_id, user_id, ttl, token_digest(token))
        await routing.event(con, call_id, "guest_invited", "interpreter", user_id)
    return Invitation(token, row["expires_at"])


async def remove(pool: asyncpg.Pool, user_id: int, call_id: uuid.UUID, party: Any) -> None:
    """The interpreter takes the hearing party out of the call."""
    guest_id = guest_id_of(party)
    async with pool.acquire() as con, con.transaction():
        await _own_call(con, user_id, call_id, "remove")
        if not await _take_out(con, call_id, guest_id, "removed", by=user_id):
            raise OutOfTurn(f"{party!r} is not in your call now.")


def guest_id_of(party: Any) -> int:
    if not isinstance(party, str) or not party.startswith("guest:"):
        raise InvalidField('"party" must name the hearing person, like "guest:12".')
    try:
        return int(party.removeprefix("guest:"))
    except ValueError as err:
        raise InvalidField('"party" must name the hearing person, like "guest:12".') from err


def name_field(data: dict[str, Any]) -> str:
    name = data.get("name")
    if not isinstance(name, str) or not name.strip():
        raise InvalidField('"name" is required: your name and role, like "Sam Patel, housing".')
    name = " ".join(name.split())
    if len(name) > MAX_NAME_CHARS:
        raise InvalidField(f'"name" must be at most {MAX_NAME_CHARS} characters.')
    return name


@dataclass(frozen=True)
class Guest:
    guest_id: int
    call_id: uuid.UUID
    token: str | None  # only when they first join


async def join(pool: asyncpg.Pool, invitation: str, name: str, process: uuid.UUID) -> Guest:
    """Use the link, once: the person becomes the call's guest, and the
    others are told to expect their offers."""
    digest = token_digest(invitation)
    token = secrets.token_urlsafe(24)
    async with pool.acquire() as con, con.transaction():
        call = await con.fetchrow(Q["guest_invitation_call_for_share"], digest)
        if call is None:
            raise NotFound("This link is not known. Ask the interpreter for a new link.")
        if call["state"] != "answered":
            raise OutOfTurn("The call this link was for has ended.")
        try:
            row = await con.fetchrow(Q["guest_join"], digest, name, token_digest(token), process)
        except asyncpg.UniqueViolationError as err:
            raise OutOfTurn(
                "Someone else has joined this call as the hearing person already."
            ) from err
        if row is None:
            raise OutOfTurn(
                "This link can no longer be used: it has been used already, or it has expired. "
                "Ask the interpreter for a new link."
            )
        await routing.event(con, row["call_id"], "guest_joined", "guest", None)
        await _announce(con, row["call_id"], row["id"], name)
    return Guest(row["id"], row["call_id"], token)


async def resume(pool: asyncpg.Pool, token: str, process: uuid.UUID, grace: float) -> Guest:
    async with pool.acquire() as con, con.transaction():
        row = await con.fetchrow(Q["guest_by_token"], token_digest(token), grace)
        if row is None or row["left_at"] is not None or row["past_grace"]:
            raise NotFound("You are no longer in the call. Ask the interpreter for a new link.")
        if row["call_state"] != "answered":
            raise NotFound("The call has ended.")
        await con.execute(Q["guest_back"], row["id"], process)
        await _announce(con, row["call_id"], row["id"], row["name"])
    return Guest(row["id"], row["call_id"], None)


async def _announce(con: asyncpg.Connection, call_id: uuid.UUID, guest_id: int, name: str) -> None:
    """The caller and the interpreter drop any old connection to the guest and
    wait for the guest's new WebRTC offer."""
    message = {
        "type": "party_joined",
        "call_id": str(call_id),
        **routing.party_entry(routing.guest_key(guest_id), "guest", name),
    }
    await routing.tell_parties(con, call_id, routing.guest_key(guest_id), message)


async def leave(pool: asyncpg.Pool, guest_id: int, call_id: uuid.UUID) -> None:
    async with pool.acquire() as con, con.transaction():
        if not await _take_out(con, call_id, guest_id, "left", by=None):
            raise OutOfTurn("You are not in this call now.")


async def dropped(pool: asyncpg.Pool, guest_id: int, process: uuid.UUID) -> None:
    """The guest's socket closed: they may come back within the grace period."""
    async with pool.acquire() as con, con.transaction():
        call_id = await con.fetchval(Q["guest_gone"], guest_id, process)
        if call_id is not None:
            await guest_away(con, call_id, guest_id, "disconnected")


# The link's page ----------------------------------------------------------------


async def guest_page(request: web.Request) -> web.Response:
    """What the link opens: who is inviting, and a way to join; using the
    link takes the page's own WebSocket, so opening it (or a preview of it)
    uses nothing."""
    token = request.match_info["token"]
    row = None
    if 10 <= len(token) <= 100:
        row = await request.app[POOL].fetchrow(Q["guest_invitation"], token_digest(token))
    if row is None:
        return await render(request, "guest.html", {"problem": "unknown"}, status=404)
    problem = None
    if row["call_state"] == "ended":
        problem = "ended"
    elif row["joined_at"] is not None or row["revoked_at"] is not None:
        problem = "used"
    elif row["expired"]:
        problem = "expired"
    return await render(
        request,
        "guest.html",
        {
            "problem": problem,
            "authority_name": row["authority_name"],
            "expires_at": row["expires_at"],
            "ice_servers": request.app[CONFIG].ice_servers,
        },
        status=410 if problem else 200,
    )
