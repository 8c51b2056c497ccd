"""The queue, the matcher and offers: every routing decision is one transaction.

Functions here change the database and, in the same transaction, post the
messages that the change owes to callers and interpreters (see mailbox.py),
so a message is sent if and only if the change it reports was committed.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime as dt
import logging
import secrets
import time
import uuid
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any, NamedTuple, Protocol

import asyncpg

from signvideo import billing
from signvideo.auth import token_digest
from signvideo.config import Config
from signvideo.db import Q
from signvideo.errors import Closed, InvalidField, NotFound, OutOfTurn, QueueFull
from signvideo.hours import Closure, Schedule, describe_opening, open_state

BREAK_REASONS = ("comfort", "meal", "training", "admin", "other")
# Calls read per matching round beyond one per free interpreter, for calls
# that free interpreters have declined.
MATCH_SPARE_CALLS = 50
# join_queue's matching arguments for a join that only queues its call.
NO_MATCHING: tuple[Any, ...] = (False, 0.0, 0.0, 0, ())

log = logging.getLogger("signvideo.routing")


def caller_key(call_id: uuid.UUID | str) -> str:
    return f"caller:{call_id}"


def interpreter_key(user_id: int) -> str:
    return f"interpreter:{user_id}"


def guest_key(guest_id: int) -> str:
    return f"guest:{guest_id}"


# How messages name the parties of a call (docs/protocol.md): the caller is
# "caller"; an interpreter and a guest are named as their mailbox keys.
CALLER_PARTY = "caller"


def _iso(value: dt.datetime | None) -> str | None:
    return None if value is None else value.isoformat()


async def post(con: asyncpg.Connection, recipient: str, payload: dict[str, Any]) -> None:
    """Queue ``payload`` for ``recipient``; it is delivered once the transaction commits."""
    await con.execute(Q["mailbox_put"], recipient, payload)


async def event(
    con: asyncpg.Connection,
    call_id: uuid.UUID,
    kind: str,
    actor: str,
    interpreter_id: int | None = None,
    **detail: Any,
) -> None:
    await con.execute(Q["append_event"], call_id, kind, actor, interpreter_id, detail)


async def set_interpreter(
    con: asyncpg.Connection,
    user_id: int,
    state: str,
    call_id: uuid.UUID | None = None,
    *,
    reason: str | None = None,
    wrap_up: float = 0,
    tell: bool = True,
) -> None:
    """Change an interpreter's state, log it, and tell their console."""
    row = await con.fetchrow(Q["set_interpreter_state"], user_id, state, call_id, reason, wrap_up)
    await con.execute(Q["log_interpreter_state"], user_id, state, reason, call_id)
    if tell:
        await post(
            con,
            interpreter_key(user_id),
            state_message(state, call_id, reason, row["state_since"], row["wrap_up_until"]),
        )


def state_message(
    state: str,
    call_id: uuid.UUID | None,
    reason: str | None,
    since: dt.datetime | None,
    until: dt.datetime | None,
) -> dict[str, Any]:
    return {
        "type": "state",
        "state": state,
        "call_id": None if call_id is None else str(call_id),
        "reason": reason,
        "since": _iso(since),
        "until": _iso(until),
    }


# Joining --------------------------------------------------------------------


@dataclass(frozen=True)
class Joined:
    call_id: uuid.UUID
    token: str
    authority_slug: str
    language: str
    # What the join's own matching round did (see Round), and whether it
    # offered this call.
    matched: Round
    offered: bool
    # The join's own statement in the database, with the matching and the
    # commit (a retry or a look after a lost answer included), from when it
    # had a connection.
    database_seconds: float = 0.0


def _schedule(authority: asyncpg.Record, closures: tuple[Closure, ...]) -> Schedule:
    return Schedule(
        authority["time_zone"],
        authority["opening_hours"],
        authority["nation"],
        closures,
        authority["closed_on_bank_holidays"],
    )


async def schedule_of(con: asyncpg.Connection, authority: asyncpg.Record) -> Schedule:
    closures = await con.fetch(Q["authority_closures"], authority["id"])
    return _schedule(
        authority, tuple(Closure(c["first_day"], c["last_day"], c["reason"]) for c in closures)
    )


async def join_queue(
    pool: asyncpg.Pool,
    slug: str,
    *,
    language: str | None = None,
    specialism: str | None = None,
    process_id: uuid.UUID | None = None,
    now: dt.datetime | None = None,
    match: Config | None = None,
    local_interpreters: Collection[int] = (),
    authorities: AuthorityCache | None = None,
) -> Joined:
    """Put a caller in the queue; with `match` (the settings), also run a
    matching round in the same transaction, so that a caller who can be
    answered at once is offered with the join's own commit (messages for the
    `local_interpreters`, whose consoles this process holds, come back in
    the round's mail). One round trip for the join itself (join_queue in
    migration 0005), and one for the checks unless `authorities` has them."""
    if authorities is None:
        authority = await pool.fetchrow(Q["authority_for_join"], slug)
    else:
        authority = await authorities.get(slug)
    if authority is None:
        raise NotFound(f"There is no service called {slug!r}. Check the link you were given.")
    language = language or authority["languages"][0]
    if language not in authority["languages"]:
        offered = ", ".join(authority["languages"])
        raise InvalidField(f'"language" {language!r} is not offered here; choose {offered}.')
    if specialism is not None and specialism not in authority["specialisms"]:
        raise InvalidField(f'"specialism" {specialism!r} is not a kind of call we know.')
    now = now or dt.datetime.now(dt.UTC)
    closures = tuple(
        Closure(first, last, reason)
        for first, last, reason in zip(
            authority["first_days"] or (),
            authority["last_days"] or (),
            authority["reasons"] or (),
            strict=True,
        )
    )
    opening = open_state(_schedule(authority, closures), now)
    if not opening.is_open:
        when = ""
        if opening.next_open:
            words = describe_opening(opening.next_open, now, authority["time_zone"])
            when = f" It opens again {words}."
        raise Closed(f"{authority['name']} is {opening.reason}.{when}", opening.next_open)
    token = secrets.token_urlsafe(24)
    args = (
        authority["id"],
        token_digest(token),
        language,
        specialism,
        process_id,
        {"authority": slug, "language": language, "specialism": specialism},
    )
    matching = (True, *_round_args(match, local_interpreters)) if match else NO_MATCHING
    retry = False
    lost: asyncpg.PostgresError | None = None
    async with pool.acquire() as con:
        # Timed from here: the statement, not a wait for a pooled connection.
        started = time.perf_counter()
        try:
            row = await con.fetchrow(Q["join_queue"], *args, *matching)
        except asyncpg.PostgresError as err:
            if not _rolled_back(err):
                lost = err  # looked into below, once this connection is let go
            elif match is None:
                raise
            else:
                # The join stands whatever went wrong with matching: it rolled
                # back whole, so join again without it, and the matcher tries.
                log.warning(
                    "a join with matching failed (%s: %s); joined again without, the "
                    "matcher will retry",
                    err.sqlstate,
                    err,
                )
                row = await con.fetchrow(Q["join_queue"], *args, *NO_MATCHING)
                retry = True
        took = time.perf_counter() - started
    if lost is not None:
        # Not while holding the lost connection: with every pooled one lost
        # at once (the database restarting), each join would wait for another.
        joined = await _joined_despite(lost, pool, token, slug, language, local_interpreters)
        return dataclasses.replace(joined, database_seconds=took)
    if row["call_id"] is None:
        raise QueueFull("The queue is full. Please try again in a few minutes.")
    matched = _round(row)
    if retry:
        matched = dataclasses.replace(matched, again=True)
    return Joined(row["call_id"], token, slug, language, matched, row["offered"], took)


async def _joined_despite(
    err: asyncpg.PostgresError,
    pool: asyncpg.Pool,
    token: str,
    slug: str,
    language: str,
    local_interpreters: Collection[int],
) -> Joined:
    """The connection went with the join's answer: the join may have
    committed. If it did, the caller has their place (telling them to try
    again would queue them twice, and leave a call nobody is watching); its
    interpreter, if this process holds their console, is sent the offer the
    lost answer carried. If it did not, `err` stands."""
    found = await pool.fetchrow(Q["joined_by_token"], token_digest(token))
    if found is None:
        raise err
    log.warning("a join committed though its answer was lost (%s); it stands", err)
    offered = found["state"] == "offered"
    mail: list[dict[str, Any]] = []
    if offered and found["interpreter_id"] in local_interpreters:
        to = interpreter_key(found["interpreter_id"])
        state = state_message("offered", found["id"], None, found["state_since"], None)
        mail = [{"recipient": to, "payload": found["offer"]}, {"recipient": to, "payload": state}]
    return Joined(found["id"], token, slug, language, Round(int(offered), mail, True), offered)


def _rolled_back(err: asyncpg.PostgresError) -> bool:
    """Whether the database certainly undid a statement that failed with
    `err`: it answered with an error. Not when the connection was lost (the
    statement may have committed without our hearing) or the server was
    shutting down."""
    if isinstance(err, asyncpg.exceptions.PostgresConnectionError):
        return False
    return not (err.sqlstate or "").startswith("57P")


# How long a process keeps what joins check about an authority, at most: the
# database says when it changes (AuthorityCache.forget), and closures are read
# from yesterday on, so a day's turn is caught within this.
AUTHORITY_KEEP_SECONDS = 60.0


class AuthorityCache:
    """What a join checks about its authority (authority_for_join), kept in
    this process from the first join, while `keeping` (the Hub keeps it only
    while it listens for changes): the Hub forgets it all when the database
    says that authorities, closures or specialisms changed."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool
        self.keeping = False
        self._kept: dict[str, tuple[float, asyncpg.Record]] = {}
        self._generation = 0

    async def get(self, slug: str) -> asyncpg.Record | None:
        now = time.monotonic()
        kept = self._kept.get(slug)
        if kept is not None and now - kept[0] < AUTHORITY_KEEP_SECONDS:
            return kept[1]
        generation = self._generation
        row: asyncpg.Record | None = await self.pool.fetchrow(Q["authority_for_join"], slug)
        # A change told while reading may be newer than what was read.
        if row is not None and self.keeping and generation == self._generation:
            self._kept[slug] = (now, row)
        return row

    def forget(self, *, keep: bool = True) -> None:
        """Forget what is kept; with keep=False, also stop keeping anything."""
        self.keeping = keep
        self._generation += 1
        self._kept.clear()


class Place(NamedTuple):
    """A waiting call's place among the waiting calls of its language, 1 being
    next; a call being `offered` to an interpreter is next, and ahead of no
    one (waiting_positions)."""

    position: int
    language: str
    offered: bool


def _place(row: asyncpg.Record) -> Place:
    return Place(row["position"], row["language"], row["offered"])


async def position_of(pool: asyncpg.Pool, call_id: uuid.UUID, wait_ceiling: float) -> Place | None:
    """One call's place in the queue of its language; None when it is not waiting."""
    row = await pool.fetchrow(Q["position_of"], call_id, wait_ceiling)
    return None if row is None else _place(row)


async def positions(
    pool: asyncpg.Pool, call_ids: list[uuid.UUID], wait_ceiling: float
) -> dict[uuid.UUID, Place]:
    """Each call's place in the queue of its language."""
    rows = await pool.fetch(Q["waiting_positions"], call_ids, wait_ceiling)
    return {r["id"]: _place(r) for r in rows}


# Matching and offers -----------------------------------------------------------


@dataclass(frozen=True)
class Round:
    """What a matching round did: the offers it made; the messages for
    consoles this process holds, taken from the mailbox (or never stored) for
    this process to send, in order (Hub.send_taken); and whether matching
    should run again because the round left out a pair whose call or
    interpreter was changing, or failed."""

    offers: int
    mail: list[dict[str, Any]]
    again: bool


def _round(row: asyncpg.Record) -> Round:
    mail = row["mail"]
    return Round(row["offers"], mail if isinstance(mail, list) else [], row["again"])


async def match_waiting(pool: asyncpg.Pool, config: Config) -> int:
    """Offer waiting calls to free interpreters until no pair is left; returns
    offers made (all their messages stored for the mailbox)."""
    return (await match_round(pool, config)).offers


async def match_round(
    pool: asyncpg.Pool, config: Config, local_interpreters: Collection[int] = ()
) -> Round:
    """One matching round, one statement (match_round in migrations 0005 and
    0016)."""
    row = await pool.fetchrow(Q["match_round"], *_round_args(config, local_interpreters))
    return _round(row)


def _round_args(config: Config, local_interpreters: Collection[int]) -> tuple[Any, ...]:
    """What a matching round is given, in a round or in a join: the wait
    ceiling, the offer timeout, the spare calls and the local consoles."""
    return (
        config.wait_ceiling,
        config.offer_timeout,
        MATCH_SPARE_CALLS,
        list(local_interpreters),
    )


class Outbox(Protocol):
    """The sockets of this process, as the matcher sees them (mailbox.Hub)."""

    def local_interpreters(self) -> Collection[int]: ...

    async def send_taken(self, mail: list[dict[str, Any]]) -> None: ...


class Matcher:
    """Runs matching in this process whenever something may have made a pair
    possible. Kicks while a round runs are folded into one more round, so a
    burst of joins costs a few rounds, not one blocked connection each."""

    def __init__(self, pool: asyncpg.Pool, config: Config, outbox: Outbox) -> None:
        self.pool, self.config, self.outbox = pool, config, outbox
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def kick(self) -> None:
        self._wake.set()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="matcher")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            # Handovers first: a call in progress needs its fresh interpreter.
            # In a try of its own, so that a failure there never stops calls
            # being matched.
            from signvideo import handover

            try:
                await handover.match(self.pool, self.config)
            except Exception:
                # Tried again at the next kick (the sweeper kicks every second).
                log.exception("matching handovers failed")
            try:
                done = await match_round(self.pool, self.config, self.outbox.local_interpreters())
                await self.outbox.send_taken(done.mail)
                if done.again:
                    self._wake.set()
            except Exception:
                # Whatever it was, matching must not stop in this process.
                log.exception("matching failed; retrying")
                await asyncio.sleep(0.5)
                self._wake.set()


async def interpreter_state(pool: asyncpg.Pool, user_id: int) -> asyncpg.Record | None:
    return await pool.fetchrow(Q["interpreter_state"], user_id)


async def set_state(
    pool: asyncpg.Pool, user_id: int, wanted: str, reason: str | None = None
) -> None:
    """An interpreter chooses to be available, on a break, or offline."""
    if wanted not in ("available", "break", "offline"):
        raise InvalidField('"state" must be "available", "break" or "offline".')
    if wanted == "break" and reason not in BREAK_REASONS:
        raise InvalidField(f'A break needs a "reason": one of {", ".join(BREAK_REASONS)}.')
    async with pool.acquire() as con, con.transaction():
        row = await con.fetchrow(Q["interpreter_state_for_update"], user_id)
        state = row["state"] if row else "offline"
        if state in ("offered", "in_call"):
            raise OutOfTurn(
                "You cannot change your status while a call is offered to you or in progress."
            )
        if wanted == "available":
            await con.execute(Q["set_missed_offers"], user_id, 0)
        await set_interpreter(con, user_id, wanted, reason=reason if wanted == "break" else None)


async def end_wrap_up(pool: asyncpg.Pool, user_id: int) -> None:
    async with pool.acquire() as con, con.transaction():
        row = await con.fetchrow(Q["interpreter_state_for_update"], user_id)
        if row is None or row["state"] != "wrap_up":
            raise OutOfTurn("You are not in wrap-up.")
        await set_interpreter(con, user_id, "available")


async def finish_wrap_ups(pool: asyncpg.Pool) -> int:
    async with pool.acquire() as con, con.transaction():
        rows = await con.fetch(Q["finished_wrap_ups"])
        for row in rows:
            await set_interpreter(con, row["user_id"], "available")
    return len(rows)


async def accept(
    pool: asyncpg.Pool,
    user_id: int,
    display_name: str,
    call_id: uuid.UUID,
    ice_servers: list[dict[str, Any]],
    ice_transport_policy: str = "all",
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
        await con.execute(Q["set_missed_offers"], user_id, 0)
        await set_interpreter(con, user_id, "in_call", call_id)
        await event(con, call_id, "answered", "interpreter", user_id)
        authority = await con.fetchrow(Q["authority_of_call"], call_id)
        await post(
            con,
            caller_key(call_id),
            connected_message(
                call_id,
                "caller",
                ice_servers,
                {"display_name": display_name},
                ice_transport_policy=ice_transport_policy,
                party=CALLER_PARTY,
                parties=[party_entry(interpreter_key(user_id), "interpreter", display_name)],
            ),
        )
        await post(
            con,
            interpreter_key(user_id),
            connected_message(
                call_id,
                "interpreter",
                ice_servers,
                interpreter_peer(authority),
                ice_transport_policy=ice_transport_policy,
                party=interpreter_key(user_id),
                parties=[party_entry(CALLER_PARTY, "caller", None)],
            ),
        )


def interpreter_peer(call: asyncpg.Record) -> dict[str, Any]:
    """What the interpreter is told of the other side: the authority, how to
    reach the caller if the call is cut off (if they said), and the call's
    cost centre with those the authority offers."""
    return {
        "authority": call["slug"],
        "contact": call["caller_contact"],
        "cost_centre": call["cost_centre"],
        "cost_centres": call["cost_centres"],
        "answered_at": None if call["answered_at"] is None else call["answered_at"].isoformat(),
    }


def connected_message(
    call_id: uuid.UUID,
    role: str,
    ice_servers: list[dict[str, Any]],
    peer: dict[str, Any],
    resumed: bool = False,
    ice_transport_policy: str = "all",
    *,
    party: str,
    parties: list[dict[str, Any]],
) -> dict[str, Any]:
    """``party``: how messages name the recipient; ``parties``: the others in
    the call now, each {party, role, name}."""
    return {
        "type": "connected",
        "call_id": str(call_id),
        "role": role,
        "party": party,
        "parties": parties,
        "ice_servers": ice_servers,
        "ice_transport_policy": ice_transport_policy,
        "peer": peer,
        "resumed": resumed,
    }


def party_entry(party: str, role: str, name: str | None) -> dict[str, Any]:
    return {"party": party, "role": role, "name": name}


async def parties_in_call(
    con: asyncpg.Connection | asyncpg.Pool, call_id: uuid.UUID, leave_out: str
) -> list[dict[str, Any]]:
    """Everyone in the answered call now but ``leave_out``: the caller, the
    interpreter, an interpreter taking over who has joined, and a hearing
    party who is connected (one query)."""
    parties = []
    for p in await con.fetch(Q["call_parties"], call_id):
        entry = party_entry(p["party"], p["role"], p["name"])
        parties.append({**entry, "handover": True} if p["handover"] else entry)
    return [p for p in parties if p["party"] != leave_out]


async def tell_parties(
    con: asyncpg.Connection, call_id: uuid.UUID, leave_out: str, payload: dict[str, Any]
) -> None:
    """Post ``payload`` to everyone in the call now but ``leave_out``."""
    for p in await parties_in_call(con, call_id, leave_out):
        await post(con, caller_key(call_id) if p["party"] == CALLER_PARTY else p["party"], payload)


async def decline(pool: asyncpg.Pool, user_id: int, call_id: uuid.UUID) -> None:
    async with pool.acquire() as con, con.transaction():
        call = await con.fetchrow(Q["call_for_update"], call_id)
        if call is None:
            raise NotFound("There is no such call.")
        if call["state"] != "offered" or call["interpreter_id"] != user_id:
            raise OutOfTurn("You can only decline a call that is being offered to you.")
        await con.execute(Q["requeue_call"], call_id)
        await con.execute(Q["record_decline"], call_id, user_id)
        await con.execute(Q["set_missed_offers"], user_id, 0)
        await set_interpreter(con, user_id, "available")
        await event(con, call_id, "declined", "interpreter", user_id)


async def withdraw_offer(
    con: asyncpg.Connection, call_id: uuid.UUID, interpreter_id: int, reason: str
) -> None:
    """Take an offer back from an interpreter; the call keeps its place in the queue."""
    await con.execute(Q["requeue_call"], call_id)
    await event(con, call_id, "offer_withdrawn", "matcher", interpreter_id, reason=reason)
    await post(
        con,
        interpreter_key(interpreter_id),
        {"type": "offer_withdrawn", "call_id": str(call_id), "reason": reason},
    )


async def expire_offers(pool: asyncpg.Pool, config: Config) -> int:
    """Offers nobody answered in time go back to the queue; the caller keeps their place.

    An interpreter who misses ``max_missed_offers`` in a row is paused.
    """
    async with pool.acquire() as con, con.transaction():
        rows = await con.fetch(Q["expired_offers"])
        for row in rows:
            call_id, interpreter_id = row["id"], row["interpreter_id"]
            # Not a decline: an interpreter who was away may be offered the
            # call again once they are back, though an idler colleague will
            # be asked first (their idle time starts again now).
            await withdraw_offer(con, call_id, interpreter_id, "expired")
            await missed_offer(con, interpreter_id, config)
    return len(rows)


async def missed_offer(con: asyncpg.Connection, interpreter_id: int, config: Config) -> None:
    """An offer (of a call or of a handover) ran out: the interpreter is free
    again, or paused after ``max_missed_offers`` in a row."""
    status = await con.fetchrow(Q["interpreter_state_for_update"], interpreter_id)
    missed = await con.fetchval(Q["set_missed_offers"], interpreter_id, status["missed_offers"] + 1)
    if missed >= config.max_missed_offers:
        await set_interpreter(con, interpreter_id, "break", reason="missed_offers")
    else:
        await set_interpreter(con, interpreter_id, "available")


async def after_call(con: asyncpg.Connection, interpreter_id: int, wrap_up: float) -> None:
    """An interpreter's part in a call is over: wrap-up, if there is any."""
    if wrap_up > 0:
        await set_interpreter(con, interpreter_id, "wrap_up", wrap_up=wrap_up)
    else:
        await set_interpreter(con, interpreter_id, "available")


async def end_call(
    pool: asyncpg.Pool,
    call_id: uuid.UUID,
    reason: str,
    actor: str,
    config: Config,
    *,
    tell_caller: bool = True,
    tell_interpreter: bool = True,
    only_from: tuple[str, ...] | None = None,
) -> bool:
    """End a call; returns False if it had already ended.

    With ``only_from``, the call is ended only from those states, checked under
    the row lock: a caller's "leave" racing an interpreter's "accept" cannot end
    (and charge) a call that was answered a moment before.

    An answered call is charged here, in the same transaction that ends it, so
    a call is charged once however many times (or by whichever process) its
    end is processed.
    """
    async with pool.acquire() as con, con.transaction():
        call = await con.fetchrow(Q["call_for_update"], call_id)
        if call is None:
            raise NotFound("There is no such call.")
        if call["state"] == "ended":
            if only_from is not None:
                raise OutOfTurn("This call has already ended.")
            return False
        if only_from is not None and call["state"] not in only_from:
            raise OutOfTurn(
                "You can leave the queue only while waiting, and hang up only when connected."
            )
        previous, interpreter_id = call["state"], call["interpreter_id"]
        await con.execute(Q["finish_call"], call_id, reason)
        lost_at = await _connection_lost_at(con, call, reason)
        await event(
            con,
            call_id,
            "ended",
            actor,
            interpreter_id,
            reason=reason,
            was=previous,
            lost_at=None if lost_at is None else lost_at.isoformat(),
        )
        try:
            # In a savepoint: a failure to rate never stops a call ending;
            # billing.rate_forever tries again.
            async with con.transaction():
                await billing.rate_ended_call(con, call_id)
        except Exception:  # any failure: the end must stand, rating is retried
            log.exception("could not rate call %s as it ended; will try again", call_id)
        ended = {"type": "ended", "call_id": str(call_id), "reason": reason}
        if interpreter_id is not None and previous == "offered":
            await post(
                con,
                interpreter_key(interpreter_id),
                {"type": "offer_withdrawn", "call_id": str(call_id), "reason": "caller_left"},
            )
            await set_interpreter(con, interpreter_id, "available")
        elif interpreter_id is not None and previous == "answered":
            if tell_interpreter:
                await post(con, interpreter_key(interpreter_id), ended)
                await after_call(con, interpreter_id, config.wrap_up)
            else:
                await set_interpreter(con, interpreter_id, "offline", tell=False)
        if tell_caller:
            to_caller = ended
            if previous == "answered":
                # A key to rate the call afterwards, once (views.call_rating).
                rating_key = secrets.token_urlsafe(16)
                await con.execute(Q["set_rating_key"], call_id, token_digest(rating_key))
                to_caller = {**ended, "rating_key": rating_key}
            await post(con, caller_key(call_id), to_caller)
        # A handover under way ends with the call (signvideo.handover).
        from signvideo import handover

        await handover.close_with_call(con, call_id, reason, config.wrap_up)
        for guest in await con.fetch(Q["guests_end_with_call"], call_id):
            if guest["joined"]:
                await post(con, guest_key(guest["id"]), ended)
        if previous == "queued":
            # Those behind it move up. (A call being offered or answered is
            # ahead of no one: waiting_positions.)
            await con.execute(Q["notify_queue_changed"], call_id)
    return True


async def _connection_lost_at(
    con: asyncpg.Connection, call: asyncpg.Record, reason: str
) -> dt.datetime | None:
    """For a call ended because a side's connection was lost and did not come
    back in time: when it was lost. The wait for it to come back is neither
    charged nor counted as waiting."""
    lost: dt.datetime | None = None
    if reason == "caller_disconnected":
        lost = call["caller_gone_at"]
    elif reason == "interpreter_disconnected" and call["interpreter_id"] is not None:
        lost = await con.fetchval(Q["console_gone_at"], call["interpreter_id"])
    return lost


async def relay(
    pool: asyncpg.Pool,
    call_id: uuid.UUID,
    sender: str,
    to: str | None,
    payload: dict[str, Any],
) -> None:
    """Pass SDP or ICE from ``sender`` to the party ``to`` of the same answered
    call (by default the caller's interpreter, or the interpreter's caller),
    if both are in it now; the recipient is told whom it is from."""
    sent = await pool.fetch(Q["relay_in_call"], call_id, {**payload, "from": sender}, to, sender)
    if sent:
        return
    if sender == CALLER_PARTY and to is None:
        raise OutOfTurn("Your call is not connected to an interpreter (not yet, or no longer).")
    if to is None:
        raise OutOfTurn("That call is not connected to you.")
    raise OutOfTurn(f"{to[:64]!r} is not in your call now (not yet, or no longer).")
