"""The WebSocket endpoints for callers and interpreter consoles (see docs/protocol.md)."""

from __future__ import annotations

import asyncio
import json
import logging
import math
import re
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import asyncpg
from aiohttp import WSCloseCode, WSMsgType, web

from signvideo import (
    admission,
    csrf,
    guests,
    handover,
    limits,
    presence,
    privacy,
    quality,
    routing,
    turn,
)
from signvideo.access import CONSOLE
from signvideo.auth import current_user
from signvideo.config import Config
from signvideo.db import Q
from signvideo.errors import BadMessage, InvalidField, OutOfTurn, SignvideoError, TooManyJoins
from signvideo.keys import CONFIG, HUB, JOIN_LIMITS, MATCHER, METRICS, POOL, PROCESS_ID

log = logging.getLogger("signvideo.signaling")

MAX_MESSAGE_BYTES = 64 * 1024
MAX_SDP_CHARS = 32 * 1024


# Validation -----------------------------------------------------------------


def parse_message(text: str) -> dict[str, Any]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        raise BadMessage("bad_json", f"The message is not valid JSON: {err.msg}.") from err
    if not isinstance(data, dict):
        raise BadMessage("bad_json", 'A message must be a JSON object, like {"type": "ping"}.')
    if "\\u0000" in text:
        raise BadMessage(
            "bad_json", "The message contains a NUL character (\\u0000); leave it out."
        )
    request_id = data.get("id")
    if request_id is not None and not (
        (isinstance(request_id, str) and len(request_id) <= 64)
        or (isinstance(request_id, int) and not isinstance(request_id, bool))
    ):
        raise InvalidField('"id" must be a string of at most 64 characters or a whole number.')
    if not isinstance(data.get("type"), str):
        raise BadMessage("missing_type", 'The message has no "type" string.')
    return data


def pong(data: dict[str, Any]) -> dict[str, Any]:
    """The answer to a ping, naming the ping's "id" if it had one."""
    return {"type": "pong", **({"in_reply_to": data["id"]} if "id" in data else {})}


def call_id_field(data: dict[str, Any]) -> uuid.UUID:
    value = data.get("call_id")
    if not isinstance(value, str):
        raise InvalidField('"call_id" is required and must be a string.')
    try:
        return uuid.UUID(value)
    except ValueError as err:
        raise InvalidField(f'"call_id" {value[:64]!r} is not a call id.') from err


def own_call_field(data: dict[str, Any], mine: uuid.UUID | None, not_yet: str) -> uuid.UUID:
    """The message's "call_id", which must be this socket's call (``mine``)."""
    wanted = call_id_field(data)
    if mine is None:
        raise OutOfTurn(not_yet)
    if wanted != mine:
        raise OutOfTurn("That call id is not yours.")
    return mine


def description_field(data: dict[str, Any]) -> dict[str, str]:
    desc = data.get("description")
    if not isinstance(desc, dict):
        raise InvalidField('"description" must be an object with "type" and "sdp".')
    kind, sdp = desc.get("type"), desc.get("sdp")
    if kind not in ("offer", "answer"):
        raise InvalidField('"description.type" must be "offer" or "answer".')
    if not isinstance(sdp, str) or not sdp.startswith("v=0"):
        raise InvalidField('"description.sdp" must be an SDP text starting with "v=0".')
    if len(sdp) > MAX_SDP_CHARS:
        raise InvalidField(f'"description.sdp" is longer than {MAX_SDP_CHARS} characters.')
    return {"type": kind, "sdp": sdp}


def candidate_field(data: dict[str, Any]) -> dict[str, Any] | None:
    if "candidate" not in data:
        raise InvalidField('"candidate" is required (an ICE candidate object, or null).')
    cand = data["candidate"]
    if cand is None:
        return None
    if not isinstance(cand, dict) or not isinstance(cand.get("candidate"), str):
        raise InvalidField('"candidate" must be an object with a "candidate" string, or null.')
    mid = cand.get("sdpMid")
    index = cand.get("sdpMLineIndex")
    if mid is not None and not isinstance(mid, str):
        raise InvalidField('"candidate.sdpMid" must be a string or null.')
    if index is not None and (not isinstance(index, int) or isinstance(index, bool) or index < 0):
        raise InvalidField('"candidate.sdpMLineIndex" must be a whole number or null.')
    if len(cand["candidate"]) > 1024:
        raise InvalidField('"candidate.candidate" is too long.')
    return {"candidate": cand["candidate"], "sdpMid": mid, "sdpMLineIndex": index}


def to_field(data: dict[str, Any]) -> str | None:
    """The party a message is for (docs/protocol.md), or None for the default."""
    to = data.get("to")
    if to is None:
        return None
    if not isinstance(to, str) or not PARTY.fullmatch(to):
        raise InvalidField(
            '"to" must name a party of the call: "caller", "interpreter:<id>" or "guest:<id>".'
        )
    return to


PARTY = re.compile(r"caller|interpreter:[0-9]{1,18}|guest:[0-9]{1,18}")


def relayed(data: dict[str, Any], call_id: uuid.UUID) -> dict[str, Any]:
    """The SDP or ICE of a message, checked, as it is passed on."""
    if data["type"] == "sdp":
        return {"type": "sdp", "call_id": str(call_id), "description": description_field(data)}
    return {"type": "ice", "call_id": str(call_id), "candidate": candidate_field(data)}


# The connection loop shared by the endpoints ----------------------------------

Handler = Callable[[dict[str, Any]], Awaitable[None]]


@dataclass
class Connection:
    request: web.Request
    ws: web.WebSocketResponse
    kind: str
    handlers: dict[str, Handler] = field(default_factory=dict)

    @property
    def pool(self) -> asyncpg.Pool:
        return self.request.app[POOL]

    async def send(self, payload: dict[str, Any]) -> None:
        if not self.ws.closed:
            await self.ws.send_json(payload)

    async def send_error(self, err: SignvideoError, data: dict[str, Any] | None) -> None:
        self.request.app[METRICS].protocol_errors.labels(err.code).inc()
        reply: dict[str, Any] = {
            "type": "error",
            "code": err.code,
            "message": err.message,
            **err.details(),
        }
        if data is not None:
            if "id" in data:
                reply["in_reply_to"] = data["id"]
            if isinstance(data.get("type"), str):
                reply["request_type"] = data["type"][:64]
        await self.send(reply)

    async def serve(self) -> None:
        try:
            async for msg in self.ws:
                if msg.type == WSMsgType.TEXT:
                    await self.handle_text(msg.data)
                elif msg.type == WSMsgType.BINARY:
                    await self.send_error(
                        BadMessage("too_big", "Binary frames are not accepted; send JSON text."),
                        None,
                    )
                elif msg.type == WSMsgType.ERROR:
                    log.info("%s socket error: %s", self.kind, self.ws.exception())
        finally:
            # The handlers refer to this connection: let go of them, so that a
            # closed socket's objects are freed at once rather than left in a
            # reference cycle for the garbage collector.
            self.handlers = {}

    async def handle_text(self, text: str) -> None:
        data: dict[str, Any] | None = None
        try:
            data = parse_message(text)
            handler = self.handlers.get(data["type"])
            if handler is None:
                known = ", ".join(sorted(self.handlers))
                raise BadMessage(
                    "unknown_type",
                    f"Unknown message type {data['type'][:64]!r}; this endpoint accepts {known}.",
                )
            await handler(data)
        except SignvideoError as err:
            await self.send_error(err, data)
        except (OSError, asyncpg.PostgresError):
            # The database or network failed under us; the transaction rolled
            # back, so nothing is half-changed. Say so and keep the socket.
            log.exception("%s message failed", self.kind)
            await self.send_error(
                BadMessage("unavailable", "The service could not do that just now; try again."),
                data,
            )


class _Socket(web.WebSocketResponse):
    """A WebSocket that says why, when it closes on a message too big."""

    async def close(
        self, *, code: int = WSCloseCode.OK, message: bytes = b"", drain: bool = True
    ) -> bool:
        if code == WSCloseCode.MESSAGE_TOO_BIG and not message:
            message = f"Message too big: send at most {MAX_MESSAGE_BYTES // 1024} KiB.".encode()
        return await super().close(code=code, message=message, drain=drain)


def _refuse_other_sites(request: web.Request) -> None:
    """A page of another site must not use a caller's place or a console's session."""
    if not csrf.same_origin(request):
        raise web.HTTPForbidden(
            text="This connection came from another website, so it was refused."
        )


async def _open(request: web.Request, kind: str) -> Connection:
    _refuse_other_sites(request)
    ws = _Socket(heartbeat=20, max_msg_size=MAX_MESSAGE_BYTES)
    await ws.prepare(request)
    return Connection(request, ws, kind)


# Callers ----------------------------------------------------------------------


def _optional_code(data: dict[str, Any], name: str) -> str | None:
    value = data.get(name)
    if value is None:
        return None
    if not isinstance(value, str) or not 1 <= len(value) <= 40:
        raise InvalidField(f'"{name}" must be a short text, like "BSL" or "health".')
    return value


def limit_joins(app: web.Application, request: web.Request, slug: str) -> None:
    """Refuse a join beyond the limits per address and per authority."""
    per_address, per_authority = app[JOIN_LIMITS]
    wait = per_address.take(limits.client_network(request.remote))
    if wait:
        raise TooManyJoins(
            "Too many people have tried to join from your connection just now. "
            f"Please wait {math.ceil(wait)} seconds and try again.",
            wait,
        )
    wait = per_authority.take(slug)
    if wait:
        raise TooManyJoins(
            "A great many people are joining this queue just now. "
            f"Please wait {math.ceil(wait)} seconds and try again.",
            wait,
        )


async def caller_socket(request: web.Request) -> web.WebSocketResponse:
    app = request.app
    conn = await _open(request, "caller")
    pool, hub, config, process = app[POOL], app[HUB], app[CONFIG], app[PROCESS_ID]
    matcher, metrics = app[MATCHER], app[METRICS]
    gauge = metrics.websockets_open.labels("caller")
    gauge.inc()
    call_id: uuid.UUID | None = None
    ended = False

    def own_call(data: dict[str, Any]) -> uuid.UUID:
        return own_call_field(data, call_id, "You have not joined the queue yet.")

    async def queued_reply(
        token: str, slug: str, resumed: bool, known: routing.Place | None = None
    ) -> None:
        """`known`: the place when the caller has it without reading the queue
        (a join offered at once is next, and an interpreter has it)."""
        assert call_id is not None
        found = known or await routing.position_of(pool, call_id, config.wait_ceiling)
        place = found or routing.Place(1, "BSL", False)
        position = place.position
        wait = (
            0  # about to be answered (Staffing.expected_wait), without reading the staff
            if place.offered
            else (await admission.staffing(pool)).expected_wait(place.language, position)
        )
        watched = found.language if found else None
        hub.watch_position(call_id, conn.ws, position, wait, watched)
        await conn.send(
            {
                "type": "queued",
                "call_id": str(call_id),
                "authority": slug,
                "position": position,
                "expected_wait_seconds": wait,
                "token": token,
                "resumed": resumed,
            }
        )

    async def on_join(data: dict[str, Any]) -> None:
        nonlocal call_id
        started = time.perf_counter()
        if call_id is not None:
            raise OutOfTurn("You have already joined the queue.")
        slug = data.get("authority")
        if not isinstance(slug, str) or not slug or len(slug) > 63:
            raise InvalidField('"authority" is required: the short name from your link.')
        contact = data.get("contact")
        if contact is not None and (
            not isinstance(contact, str) or len(contact.strip()) > privacy.MAX_CONTACT_CHARS
        ):
            raise InvalidField(
                f'"contact" must be a phone number or email address of at most '
                f"{privacy.MAX_CONTACT_CHARS} characters, or left out."
            )
        cost_centre = _optional_code(data, "cost_centre")
        if cost_centre is not None and not await pool.fetchval(
            Q["cost_centre_offered"], slug, cost_centre
        ):
            raise InvalidField(
                f'"cost_centre" {cost_centre[:40]!r} is not one of this authority\'s departments; '
                "choose one from the list, or leave it out."
            )
        limit_joins(app, request, slug)
        joined = await routing.join_queue(
            pool,
            slug,
            language=_optional_code(data, "language"),
            specialism=_optional_code(data, "specialism"),
            process_id=process,
            match=config,  # offered, if an interpreter is free, with the join's commit
            local_interpreters=hub.local_interpreters(),
            authorities=hub.authorities,
        )
        call_id = joined.call_id
        try:
            await hub.send_taken(joined.matched.mail)
            if joined.matched.again:
                matcher.kick()
            if contact and contact.strip():
                await privacy.remember_contact(pool, call_id, contact.strip())
            if cost_centre is not None:
                await pool.execute(Q["set_cost_centre"], call_id, cost_centre)
            await queued_reply(
                joined.token,
                joined.authority_slug,
                resumed=False,
                known=routing.Place(1, joined.language, True) if joined.offered else None,
            )
            outcome = "offered" if joined.offered else "queued"
            metrics.join_database_seconds.labels(outcome).observe(joined.database_seconds)
            metrics.join_seconds.labels(outcome).observe(time.perf_counter() - started)
        finally:
            # The socket takes its mail only after `queued`, so that nothing
            # about the call reaches the caller before it; but it takes it
            # whatever happens, so that the call is never left without its
            # socket (and a drop is noticed).
            hub.register(routing.caller_key(call_id), conn.ws)

    async def on_resume(data: dict[str, Any]) -> None:
        nonlocal call_id
        if call_id is not None:
            raise OutOfTurn("This connection already has a call.")
        token = data.get("token")
        if not isinstance(token, str) or not 10 <= len(token) <= 100:
            raise InvalidField('"token" must be the token you were given when you joined.')
        resumed = await presence.resume_caller(pool, token, process)
        call_id = resumed.call_id
        if resumed.state != "answered":
            hub.register(routing.caller_key(call_id), conn.ws)
            await queued_reply(token, resumed.authority_slug, resumed=True)
            matcher.kick()
            return
        # `connected` goes before any mail: the others make new WebRTC offers
        # as soon as the resume commits, and an offer that came first would
        # reach a page not yet back in its call.
        try:
            parties = await routing.parties_in_call(pool, call_id, routing.CALLER_PARTY)
            # The interpreter in charge (not one taking over), named in `parties`.
            name = next(
                (p["name"] for p in parties if p["role"] == "interpreter" and "handover" not in p),
                None,
            )
            connected = routing.connected_message(
                call_id,
                "caller",
                turn.ice_servers_for_call(config, call_id),
                {"display_name": name},
                resumed=True,
                ice_transport_policy=config.ice_transport_policy,
                party=routing.CALLER_PARTY,
                parties=parties,
            )
            await conn.send(connected)
        finally:
            # Whatever happens, so that a drop from here on is noticed.
            hub.register(routing.caller_key(call_id), conn.ws)

    async def finish(data: dict[str, Any], reason: str, allowed: tuple[str, ...]) -> None:
        nonlocal ended
        mine = own_call(data)
        if await routing.end_call(pool, mine, reason, "caller", config, only_from=allowed):
            metrics.calls_ended.labels(reason).inc()
        ended = True
        hub.unwatch_position(mine)
        matcher.kick()

    async def on_leave(data: dict[str, Any]) -> None:
        await finish(data, "caller_left", ("queued", "offered"))

    async def on_hangup(data: dict[str, Any]) -> None:
        await finish(data, "caller_hung_up", ("answered",))

    async def on_relay(data: dict[str, Any]) -> None:
        mine = own_call(data)
        await routing.relay(pool, mine, routing.CALLER_PARTY, to_field(data), relayed(data, mine))

    async def on_ping(data: dict[str, Any]) -> None:
        await conn.send(pong(data))

    async def on_quality(data: dict[str, Any]) -> None:
        await quality.record(pool, own_call(data), "caller", None, data)

    conn.handlers = {
        "quality": on_quality,
        "join": on_join,
        "resume": on_resume,
        "leave": on_leave,
        "hangup": on_hangup,
        "sdp": on_relay,
        "ice": on_relay,
        "ping": on_ping,
    }
    try:
        await conn.serve()
    finally:
        gauge.dec()
        if call_id is not None:
            hub.unwatch_position(call_id)
            if hub.unregister(routing.caller_key(call_id), conn.ws) and not ended:
                # The caller keeps their place for the grace period. Shielded:
                # the handler may be cancelled when the client vanishes.
                await asyncio.shield(_caller_dropped(app, call_id))
    return conn.ws


async def _caller_dropped(app: web.Application, call_id: uuid.UUID) -> None:
    try:
        await presence.caller_dropped(app[POOL], call_id, app[PROCESS_ID])
        app[MATCHER].kick()
    except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
        # The process is stopping or the database is away: the heartbeat
        # lapse will mark the caller dropped instead.
        log.warning("could not record that the caller of %s dropped", call_id)


# Hearing parties ---------------------------------------------------------------


async def guest_socket(request: web.Request) -> web.WebSocketResponse:
    """A hearing person invited into a call by its interpreter (signvideo.guests)."""
    app = request.app
    conn = await _open(request, "guest")
    pool, hub, config, process = app[POOL], app[HUB], app[CONFIG], app[PROCESS_ID]
    gauge = app[METRICS].websockets_open.labels("guest")
    gauge.inc()
    me: guests.Guest | None = None
    done = False

    def own_call(data: dict[str, Any]) -> uuid.UUID:
        return own_call_field(
            data, None if me is None else me.call_id, "You have not joined the call yet."
        )

    def token_of(data: dict[str, Any], what: str) -> str:
        token = data.get("token")
        if not isinstance(token, str) or not 10 <= len(token) <= 100:
            raise InvalidField(f'"token" must be {what}.')
        return token

    async def arrived(guest: guests.Guest, resumed: bool) -> None:
        nonlocal me
        me = guest
        key = routing.guest_key(guest.guest_id)
        # Mail (answers to its offers) only after `connected`; but the socket
        # is registered whatever happens, so that a drop is noticed.
        try:
            message = routing.connected_message(
                guest.call_id,
                "guest",
                turn.ice_servers_for_call(config, guest.call_id),
                {},
                resumed=resumed,
                ice_transport_policy=config.ice_transport_policy,
                party=key,
                parties=await routing.parties_in_call(pool, guest.call_id, key),
            )
            if guest.token is not None:
                message["token"] = guest.token
            await conn.send(message)
        finally:
            replaced = hub.register(key, conn.ws)
        if replaced is not None:
            await replaced.close(code=4000, message=b"You joined the call in another window.")

    async def on_join(data: dict[str, Any]) -> None:
        if me is not None:
            raise OutOfTurn("You have already joined the call.")
        invitation = token_of(data, "the code from the end of your link")
        name = guests.name_field(data)
        await arrived(await guests.join(pool, invitation, name, process), resumed=False)

    async def on_resume(data: dict[str, Any]) -> None:
        if me is not None:
            raise OutOfTurn("This connection is already in the call.")
        token = token_of(data, "the token you were given when you joined")
        await arrived(await guests.resume(pool, token, process, config.caller_grace), resumed=True)

    async def on_relay(data: dict[str, Any]) -> None:
        mine = own_call(data)
        to = to_field(data)
        if to is None:
            raise InvalidField('"to" is required: the party this is for, from "parties".')
        assert me is not None
        await routing.relay(pool, mine, routing.guest_key(me.guest_id), to, relayed(data, mine))

    async def on_leave(data: dict[str, Any]) -> None:
        nonlocal done
        mine = own_call(data)
        assert me is not None
        await guests.leave(pool, me.guest_id, mine)
        done = True

    async def on_ping(data: dict[str, Any]) -> None:
        await conn.send(pong(data))

    conn.handlers = {
        "join": on_join,
        "resume": on_resume,
        "sdp": on_relay,
        "ice": on_relay,
        "leave": on_leave,
        "ping": on_ping,
    }
    try:
        await conn.serve()
    finally:
        gauge.dec()
        if me is not None and hub.unregister(routing.guest_key(me.guest_id), conn.ws) and not done:
            await asyncio.shield(_guest_dropped(app, me.guest_id))
    return conn.ws


async def _guest_dropped(app: web.Application, guest_id: int) -> None:
    try:
        await guests.dropped(app[POOL], guest_id, app[PROCESS_ID])
    except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
        log.warning("could not record that guest %s dropped", guest_id)


# Interpreter consoles --------------------------------------------------------


async def console_socket(request: web.Request) -> web.WebSocketResponse:
    _refuse_other_sites(request)
    user = await current_user(request)
    if user is None:
        raise web.HTTPUnauthorized(text="Sign in as an interpreter first, at /login.")
    if user.role not in CONSOLE:
        raise web.HTTPForbidden(text="Only interpreters can open the console.")
    app = request.app
    pool, hub, config, process = app[POOL], app[HUB], app[CONFIG], app[PROCESS_ID]
    matcher = app[MATCHER]
    conn = await _open(request, "console")
    gauge = app[METRICS].websockets_open.labels("console")
    gauge.inc()
    key = routing.interpreter_key(user.id)
    replaced = hub.register(key, conn.ws)
    if replaced is not None:
        await replaced.close(code=4000, message=b"The console was opened in another window.")

    async def on_state(data: dict[str, Any]) -> None:
        wanted = data.get("state")
        if not isinstance(wanted, str):
            raise InvalidField('"state" must be "available", "break" or "offline".')
        reason = data.get("reason")
        if reason is not None and not isinstance(reason, str):
            raise InvalidField('"reason" must be a text.')
        await routing.set_state(pool, user.id, wanted, reason)
        if wanted == "available":
            matcher.kick()

    async def on_availability(data: dict[str, Any]) -> None:
        available = data.get("available")
        if not isinstance(available, bool):
            raise InvalidField('"available" must be true or false.')
        await on_state({"state": "available" if available else "offline"})

    async def on_end_wrap_up(_data: dict[str, Any]) -> None:
        await routing.end_wrap_up(pool, user.id)
        matcher.kick()

    async def on_accept(data: dict[str, Any]) -> None:
        call_id = call_id_field(data)
        ice = turn.ice_servers_for_call(config, call_id)
        if await handover.accept(
            pool, user.id, user.display_name, call_id, ice, config.ice_transport_policy
        ):
            return
        await routing.accept(
            pool, user.id, user.display_name, call_id, ice, config.ice_transport_policy
        )

    async def on_decline(data: dict[str, Any]) -> None:
        call_id = call_id_field(data)
        if not await handover.decline(pool, user.id, call_id):
            await routing.decline(pool, user.id, call_id)
        matcher.kick()

    async def on_hangup(data: dict[str, Any]) -> None:
        call_id = call_id_field(data)
        status = await routing.interpreter_state(pool, user.id)
        if status is None or status["state"] != "in_call" or status["call_id"] != call_id:
            raise OutOfTurn("You can only hang up a call you are in.")
        # An incoming interpreter who has not taken the call over yet leaves
        # it to the first; the call carries on.
        if await handover.leave_incoming(pool, user.id, call_id):
            matcher.kick()
            return
        if await routing.end_call(pool, call_id, "interpreter_hung_up", "interpreter", config):
            app[METRICS].calls_ended.labels("interpreter_hung_up").inc()
        matcher.kick()

    async def on_relay(data: dict[str, Any]) -> None:
        call_id = call_id_field(data)
        await routing.relay(pool, call_id, key, to_field(data), relayed(data, call_id))

    async def on_invite_guest(data: dict[str, Any]) -> None:
        call_id = call_id_field(data)
        made = await guests.invite(pool, user.id, call_id, config.guest_link_ttl)
        await conn.send(
            {
                "type": "guest_invitation",
                "call_id": str(call_id),
                "url": str(request.url.origin()) + guests.GUEST_PATH + made.token,
                "expires_at": made.expires_at.isoformat(),
                "expires_in": config.guest_link_ttl,
            }
        )

    async def on_request_handover(data: dict[str, Any]) -> None:
        await handover.request(pool, user.id, call_id_field(data))
        matcher.kick()

    async def on_cancel_handover(data: dict[str, Any]) -> None:
        await handover.cancel(pool, user.id, call_id_field(data))
        matcher.kick()

    async def on_complete_handover(data: dict[str, Any]) -> None:
        await handover.complete(pool, user.id, call_id_field(data), config)

    async def on_remove_guest(data: dict[str, Any]) -> None:
        await guests.remove(pool, user.id, call_id_field(data), data.get("party"))

    async def on_ping(data: dict[str, Any]) -> None:
        await conn.send(pong(data))

    async def on_cost_centre(data: dict[str, Any]) -> None:
        call_id = call_id_field(data)
        code = data.get("cost_centre")
        if code is not None and (not isinstance(code, str) or not 1 <= len(code) <= 32):
            raise InvalidField('"cost_centre" must be a department code from the list, or null.')
        async with pool.acquire() as con, con.transaction():
            await con.execute(Q["authority_of_call_for_share"], call_id)
            saved = await con.fetchrow(Q["set_cost_centre_by_interpreter"], call_id, user.id, code)
        if saved is None:
            raise OutOfTurn(
                "You can set the department of your own call, during it or within 15 minutes "
                "of its end, to one the authority offers."
            )
        await conn.send({"type": "cost_centre_saved", "call_id": str(call_id), "cost_centre": code})

    async def on_console_quality(data: dict[str, Any]) -> None:
        await quality.record(pool, call_id_field(data), "interpreter", user.id, data)

    conn.handlers = {
        "quality": on_console_quality,
        "set_cost_centre": on_cost_centre,
        "set_state": on_state,
        "set_availability": on_availability,
        "end_wrap_up": on_end_wrap_up,
        "accept": on_accept,
        "decline": on_decline,
        "hangup": on_hangup,
        "sdp": on_relay,
        "ice": on_relay,
        "invite_guest": on_invite_guest,
        "remove_guest": on_remove_guest,
        "request_handover": on_request_handover,
        "cancel_handover": on_cancel_handover,
        "complete_handover": on_complete_handover,
        "ping": on_ping,
    }
    await presence.console_attached(pool, user.id, process)
    await _greet_console(conn, user.id, config)
    try:
        await conn.serve()
    finally:
        gauge.dec()
        if hub.unregister(key, conn.ws):
            await asyncio.shield(_console_dropped(app, user.id))
    return conn.ws


async def _greet_console(conn: Connection, user_id: int, config: Config) -> None:
    """Tell a (re)connected console where it stands, re-sending an open offer or call."""
    status = await routing.interpreter_state(conn.pool, user_id)
    if status is None:
        await conn.send(routing.state_message("offline", None, None, None, None))
        return
    await conn.send(
        routing.state_message(
            status["state"],
            status["call_id"],
            status["reason"],
            status["state_since"],
            status["wrap_up_until"],
        )
    )
    if status["call_id"] is None:
        return
    call = await conn.pool.fetchrow(Q["call_resend"], status["call_id"])
    incoming = await conn.pool.fetchrow(Q["handover_incoming"], user_id, status["call_id"])
    if status["state"] == "offered" and incoming is not None and incoming["state"] == "offered":
        await conn.send(incoming["offer"])
    elif status["state"] == "offered" and call["state"] == "offered":
        await conn.send(call["offer"])
    elif status["state"] == "in_call" and call["state"] == "answered":
        await conn.send(
            routing.connected_message(
                status["call_id"],
                "interpreter",
                turn.ice_servers_for_call(config, status["call_id"]),
                routing.interpreter_peer(call),
                resumed=True,
                ice_transport_policy=config.ice_transport_policy,
                party=routing.interpreter_key(user_id),
                parties=await routing.parties_in_call(
                    conn.pool, status["call_id"], routing.interpreter_key(user_id)
                ),
            )
            | ({"handover": True} if incoming is not None else {})
        )


async def _console_dropped(app: web.Application, user_id: int) -> None:
    try:
        await presence.console_dropped(app[POOL], user_id, app[PROCESS_ID])
    except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
        log.warning("could not record that the console of interpreter %s dropped", user_id)
