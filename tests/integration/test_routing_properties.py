"""Property-based tests of routing on a real database.

Hypothesis drives random sequences of joins, leaves, drops and resumes,
availability changes, accepts, declines and expiries, and after every step we
check the promises: no interpreter has two live calls; no call is offered to
an interpreter who is not eligible for it; every call ends once; and each
offer goes to the first call in dispatch order that the interpreter could
take, for the eligible interpreter idle longest.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import uuid
from dataclasses import dataclass, field
from typing import Any

import asyncpg
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from signvideo import presence, routing
from signvideo.config import Config
from signvideo.errors import SignvideoError
from signvideo.hours import ALWAYS_OPEN

RULES = Config(wrap_up=0, wait_ceiling=300, max_missed_offers=2)
PROCESS = uuid.UUID(int=1)
RESTRICTED = {"criminal-justice", "mental-health"}

# Interpreters: (languages, specialisms, category)
PROFILES = st.tuples(
    st.sampled_from([("BSL",), ("ISL",), ("BSL", "ISL")]),
    st.sampled_from([(), ("health",), ("health", "mental-health"), ("criminal-justice",)]),
    st.sampled_from(["registered", "trainee"]),
)
# Calls: authority, language, specialism, age in seconds, priority. Ages and
# windows (60, 120, 300) keep well clear of band boundaries.
CALLS = st.tuples(
    st.sampled_from(["fast", "slow", "scot"]),
    st.sampled_from(["BSL", "ISL"]),
    st.sampled_from([None, None, "health", "mental-health", "criminal-justice"]),
    st.sampled_from([0, 30, 90, 200, 400, 900]),
    st.sampled_from([0, 0, 0, 1]),
)
JOIN = st.tuples(st.just("join"), CALLS)
# An interpreter made free, then a join that is matched in its own
# transaction (as the service joins) before any round has run for the free
# interpreter: the join's own offer must follow the same order as a round.
FREE_AND_JOIN = st.tuples(st.just("free_and_join"), st.tuples(st.integers(0, 3), CALLS))
STEPS = st.lists(
    st.one_of(
        # Joins are weighted up so that queues build behind busy interpreters.
        JOIN,
        JOIN,
        JOIN,
        JOIN,
        FREE_AND_JOIN,
        FREE_AND_JOIN,
        st.tuples(st.just("available"), st.integers(0, 3)),
        st.tuples(st.just("available"), st.integers(0, 3)),
        st.tuples(st.just("offline"), st.integers(0, 3)),
        st.tuples(st.just("accept"), st.integers(0, 3)),
        st.tuples(st.just("decline"), st.integers(0, 3)),
        st.tuples(st.just("expire"), st.integers(0, 3)),
        st.tuples(st.just("hangup"), st.integers(0, 3)),
        st.tuples(st.just("leave"), st.integers(0, 20)),
        st.tuples(st.just("drop"), st.integers(0, 20)),
        st.tuples(st.just("resume"), st.integers(0, 20)),
    ),
    min_size=8,
    max_size=40,
)


@dataclass
class World:
    interpreters: list[int] = field(default_factory=list)
    profiles: dict[int, tuple[tuple[str, ...], tuple[str, ...], str]] = field(default_factory=dict)
    calls: list[uuid.UUID] = field(default_factory=list)
    tokens: dict[uuid.UUID, str] = field(default_factory=dict)


def eligible(profile: tuple[tuple[str, ...], tuple[str, ...], str], call: Any) -> bool:
    languages, specialisms, category = profile
    if call["language"] not in languages:
        return False
    if call["specialism"] is None:
        return True
    if call["specialism"] not in specialisms:
        return False
    return not (category == "trainee" and call["specialism"] in RESTRICTED)


def dispatch_key(call: Any, now: dt.datetime) -> tuple[Any, ...]:
    waited = (now - call["queued_at"]).total_seconds()
    if waited > RULES.wait_ceiling:
        band, at = 0, call["queued_at"]
    elif call["deadline_at"] >= now:
        band, at = 1, call["deadline_at"]
    else:
        band, at = 2, call["queued_at"]
    return (-call["priority"], band, at, call["queued_at"], call["id"])


async def setup_world(pool: asyncpg.Pool, profiles: list[Any]) -> World:
    await pool.execute(
        "TRUNCATE call_declines, call_events, ledger, invoices, rate_cards, mailbox, "
        "interpreter_events, interpreter_status, interpreters, calls, authority_closures, "
        "authorities, sessions, users RESTART IDENTITY CASCADE"
    )
    for slug, window in (("fast", 60), ("slow", 120), ("scot", 300)):
        await pool.execute(
            "INSERT INTO authorities (slug, name, answer_seconds, "
            "languages, opening_hours, closed_on_bank_holidays, max_queue_length) "
            "VALUES ($1, $1, $2, '{BSL,ISL}', $3, false, 1000)",
            slug,
            window,
            ALWAYS_OPEN,
        )
    world = World()
    for n, profile in enumerate(profiles):
        user_id = await pool.fetchval(
            "INSERT INTO users (email, display_name, role, password_hash) "
            "VALUES ($1, 'I', 'interpreter', 'x') RETURNING id",
            f"i{n}@example.org",
        )
        await pool.execute(
            "INSERT INTO interpreters (user_id, languages, specialisms, category) "
            "VALUES ($1, $2, $3, $4)",
            user_id,
            list(profile[0]),
            list(profile[1]),
            profile[2],
        )
        await presence.console_attached(pool, user_id, PROCESS)
        world.interpreters.append(user_id)
        world.profiles[user_id] = profile
    return world


async def check_invariants(pool: asyncpg.Pool, world: World, before: set[uuid.UUID]) -> None:
    # One live call per interpreter, and interpreter rows agree with calls.
    live = await pool.fetch(
        "SELECT id, interpreter_id, state FROM calls WHERE state IN ('offered', 'answered')"
    )
    owners = [r["interpreter_id"] for r in live]
    assert len(owners) == len(set(owners)), live
    for row in live:
        status = await pool.fetchrow(
            "SELECT state, call_id FROM interpreter_status WHERE user_id = $1",
            row["interpreter_id"],
        )
        expected = "offered" if row["state"] == "offered" else "in_call"
        assert (status["state"], status["call_id"]) == (expected, row["id"])

    calls = {
        r["id"]: r
        for r in await pool.fetch(
            "SELECT id, state, language, specialism, priority, queued_at, deadline_at, "
            "interpreter_id, caller_gone_at FROM calls"
        )
    }
    # Never offered to anyone ineligible (checked on every offer ever made).
    for offer in await pool.fetch(
        "SELECT call_id, interpreter_id FROM call_events WHERE kind = 'offered'"
    ):
        assert eligible(world.profiles[offer["interpreter_id"]], calls[offer["call_id"]])
    # Each ended call has exactly one end event.
    ends = await pool.fetch(
        "SELECT call_id, count(*) AS n FROM call_events WHERE kind = 'ended' GROUP BY call_id"
    )
    ended = {r["call_id"]: r["n"] for r in ends}
    assert all(n == 1 for n in ended.values()), ended
    assert set(ended) == {i for i, c in calls.items() if c["state"] == "ended"}
    # Each authority's kept queue length is its count of live calls.
    kept = await pool.fetch(
        "SELECT q.authority_id, q.live, (SELECT count(*) FROM calls c "
        "WHERE c.authority_id = q.authority_id AND c.state IN ('queued', 'offered')) AS counted "
        "FROM queue_lengths q"
    )
    assert len(kept) == 3, kept
    assert all(r["live"] == r["counted"] for r in kept), kept

    # Offers made in this step: the first eligible call, to the interpreter idle longest.
    now = await pool.fetchval("SELECT now()")
    declined = {
        (r["call_id"], r["interpreter_id"])
        for r in await pool.fetch("SELECT call_id, interpreter_id FROM call_declines")
    }
    status = {
        r["user_id"]: r
        for r in await pool.fetch(
            "SELECT user_id, state, state_since, console_gone_at FROM interpreter_status"
        )
    }
    waiting = [c for c in calls.values() if c["state"] == "queued" and c["caller_gone_at"] is None]
    for call_id, call in calls.items():
        if call["state"] != "offered" or call_id in before:
            continue
        chosen = call["interpreter_id"]
        for other in waiting:
            if (other["id"], chosen) in declined:
                continue
            if eligible(world.profiles[chosen], other):
                assert dispatch_key(other, now) > dispatch_key(call, now), (
                    "a call earlier in dispatch order was passed over",
                    other,
                    call,
                )
        chosen_since = await available_since(pool, chosen)
        for user_id, s in status.items():
            if s["state"] != "available" or s["console_gone_at"] is not None:
                continue
            if (call_id, user_id) in declined or not eligible(world.profiles[user_id], call):
                continue
            assert chosen_since <= await available_since(pool, user_id), (
                "an eligible interpreter idle longer was passed over",
                user_id,
                call,
            )


async def check_event_log(pool: asyncpg.Pool) -> None:
    """Every call's wait, offers, answer and end, rebuilt from call_events
    alone, agree with the calls table."""
    rebuilt: dict[uuid.UUID, dict[str, Any]] = {}
    for e in await pool.fetch(
        "SELECT call_id, kind, interpreter_id, detail, at FROM call_events ORDER BY id"
    ):
        call = rebuilt.setdefault(e["call_id"], {"state": None})
        kind, state = e["kind"], call["state"]
        if kind == "queued":
            assert state is None, (e, call)
            call.update(state="queued", queued_at=e["at"])
        elif kind == "offered":
            assert state == "queued", (e, call)
            call.update(state="offered", interpreter_id=e["interpreter_id"], offered_at=e["at"])
        elif kind in ("declined", "offer_withdrawn"):
            assert state == "offered" and call["interpreter_id"] == e["interpreter_id"], (e, call)
            call.update(state="queued", interpreter_id=None)
        elif kind == "answered":
            assert state == "offered" and call["interpreter_id"] == e["interpreter_id"], (e, call)
            call.update(state="answered", answered_at=e["at"])
        elif kind == "ended":
            assert state in ("queued", "offered", "answered") and e["detail"]["was"] == state
            call.update(state="ended", ended_at=e["at"], end_reason=e["detail"]["reason"])
        else:
            assert kind in ("caller_dropped", "caller_resumed"), e
    rows = await pool.fetch(
        "SELECT id, state, interpreter_id, queued_at, offered_at, answered_at, ended_at, "
        "end_reason FROM calls"
    )
    assert {r["id"] for r in rows} == set(rebuilt)
    for row in rows:
        call = rebuilt[row["id"]]
        assert call["state"] == row["state"], (row, call)
        assert call.get("end_reason") == row["end_reason"], (row, call)
        if row["state"] in ("offered", "answered"):
            assert call["interpreter_id"] == row["interpreter_id"], (row, call)
        # An event is stamped during the transaction that set the row's time
        # (queued_at aside: these tests age calls by moving it back).
        for name in ("offered_at", "answered_at", "ended_at"):
            if row["state"] == "queued" and name == "offered_at":
                continue  # an offer that went back leaves its time on the row
            if row[name] is not None and name in call:
                lag = (call[name] - row[name]).total_seconds()
                assert 0 <= lag < 2, (name, row, call)


async def available_since(pool: asyncpg.Pool, user_id: int) -> dt.datetime:
    """When the interpreter last became available, from their state log."""
    at: dt.datetime = await pool.fetchval(
        "SELECT at FROM interpreter_events WHERE interpreter_id = $1 AND state = 'available' "
        "ORDER BY id DESC LIMIT 1",
        user_id,
    )
    return at


async def run_step(pool: asyncpg.Pool, world: World, step: tuple[str, Any]) -> None:
    kind, arg = step
    interpreters = world.interpreters

    def pick_call() -> uuid.UUID | None:
        return world.calls[arg % len(world.calls)] if world.calls else None

    try:
        if kind == "join":
            slug, language, specialism, age, priority = arg
            joined = await routing.join_queue(
                pool, slug, language=language, specialism=specialism, process_id=PROCESS
            )
            await pool.execute(
                "UPDATE calls SET queued_at = queued_at - make_interval(secs => $2), "
                "deadline_at = deadline_at - make_interval(secs => $2), priority = $3 "
                "WHERE id = $1",
                joined.call_id,
                age,
                priority,
            )
            world.calls.append(joined.call_id)
            world.tokens[joined.call_id] = joined.token
        elif kind == "free_and_join":
            who, (slug, language, specialism, _age, _priority) = arg
            with contextlib.suppress(SignvideoError):  # busy: the join goes ahead all the same
                await routing.set_state(pool, interpreters[who % len(interpreters)], "available")
            joined = await routing.join_queue(
                pool,
                slug,
                language=language,
                specialism=specialism,
                process_id=PROCESS,
                match=RULES,
            )
            world.calls.append(joined.call_id)
            world.tokens[joined.call_id] = joined.token
            state = await pool.fetchval("SELECT state FROM calls WHERE id = $1", joined.call_id)
            assert joined.offered == (state == "offered"), (joined, state)
        elif kind in ("available", "offline"):
            await routing.set_state(pool, interpreters[arg % len(interpreters)], kind)
        elif kind in ("accept", "decline", "hangup", "expire"):
            user_id = interpreters[arg % len(interpreters)]
            status = await routing.interpreter_state(pool, user_id)
            if status is None or status["call_id"] is None:
                return
            if kind == "accept":
                await routing.accept(pool, user_id, "I", status["call_id"], [])
            elif kind == "decline":
                await routing.decline(pool, user_id, status["call_id"])
            elif kind == "hangup":
                await routing.end_call(
                    pool, status["call_id"], "interpreter_hung_up", "interpreter", RULES
                )
            else:
                await pool.execute(
                    "UPDATE calls SET offer_expires_at = now() - interval '1 s' "
                    "WHERE id = $1 AND state = 'offered'",
                    status["call_id"],
                )
                await routing.expire_offers(pool, RULES)
        elif kind == "leave":
            call_id = pick_call()
            if call_id is not None:
                await routing.end_call(pool, call_id, "caller_left", "caller", RULES)
        elif kind == "drop":
            call_id = pick_call()
            if call_id is not None:
                await presence.caller_dropped(pool, call_id, PROCESS)
        elif kind == "resume":
            call_id = pick_call()
            if call_id is not None:
                await presence.resume_caller(pool, world.tokens[call_id], PROCESS)
    except SignvideoError:
        pass  # refused as out of turn: the invariants must hold all the same


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(profiles=st.lists(PROFILES, min_size=1, max_size=4), steps=STEPS)
async def test_routing_keeps_its_promises(
    pool: asyncpg.Pool, profiles: list[Any], steps: list[tuple[str, Any]]
) -> None:
    world = await setup_world(pool, profiles)
    for step in steps:
        before = {r["id"] for r in await pool.fetch("SELECT id FROM calls WHERE state = 'offered'")}
        await run_step(pool, world, step)
        await routing.match_waiting(pool, RULES)
        await check_invariants(pool, world, before)
        await check_event_log(pool)


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    waiting=st.lists(
        st.tuples(
            st.sampled_from(["fast", "slow", "scot"]),
            st.sampled_from([0, 30, 90, 200, 400, 900]),
            st.sampled_from([0, 0, 0, 1]),
        ),
        min_size=2,
        max_size=8,
    )
)
async def test_a_free_interpreter_takes_calls_in_dispatch_order(
    pool: asyncpg.Pool, waiting: list[tuple[str, int, int]]
) -> None:
    """One interpreter serving a standing queue takes it in exactly the three-band order."""
    world = await setup_world(pool, [(("BSL",), (), "registered")])
    for slug, age, priority in waiting:
        await run_step(pool, world, ("join", (slug, "BSL", None, age, priority)))
    now = await pool.fetchval("SELECT now()")
    rows = await pool.fetch(
        "SELECT id, priority, queued_at, deadline_at FROM calls WHERE state = 'queued'"
    )
    expected = [r["id"] for r in sorted(rows, key=lambda r: dispatch_key(r, now))]
    (interpreter,) = world.interpreters
    served = []
    await routing.set_state(pool, interpreter, "available")
    for _ in expected:
        assert await routing.match_waiting(pool, RULES) == 1
        status = await routing.interpreter_state(pool, interpreter)
        served.append(status["call_id"])
        await routing.accept(pool, interpreter, "I", status["call_id"], [])
        await routing.end_call(pool, status["call_id"], "caller_hung_up", "caller", RULES)
    assert served == expected


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(profile=PROFILES, waiting=st.lists(CALLS, min_size=1, max_size=6), joiner=CALLS)
async def test_a_join_offered_at_once_never_passes_over_a_call_ahead(
    pool: asyncpg.Pool, profile: Any, waiting: list[Any], joiner: Any
) -> None:
    """Calls wait; an interpreter is freed, and before any round runs a caller
    joins with matching in the join's own transaction (migration 0021). The
    offer made is the one a round would make."""
    world = await setup_world(pool, [profile])
    for call in waiting:
        await run_step(pool, world, ("join", call))
    await run_step(pool, world, ("free_and_join", (0, joiner)))
    await check_invariants(pool, world, set())
    await check_event_log(pool)
