"""Routing and charging decisions on a real database, as several processes would make them."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest

from signvideo import billing, presence, routing
from signvideo.config import Config
from signvideo.db import Q, create_pool
from tests.integration.conftest import add_authority, add_interpreter

RULES = Config(wrap_up=0)


async def test_two_processes_never_give_an_interpreter_two_calls(
    database_url: str, pool: asyncpg.Pool, seeded: None
) -> None:
    """Two pools stand for two server processes matching the same queue at once."""
    other = await create_pool(database_url, min_size=1, max_size=10)
    try:
        interpreters = [await add_interpreter(pool, f"i{n}@example.org") for n in range(12)]
        calls = [await routing.join_queue(pool, "demo") for _ in range(20)]
        for user_id in interpreters:
            await routing.set_state(pool, user_id, "available")
        made = await asyncio.gather(
            *(routing.match_waiting(p, RULES) for p in (pool, other, pool, other))
        )
        assert sum(made) == 12
        rows = await pool.fetch(
            "SELECT interpreter_id, count(*) AS n FROM calls WHERE state = 'offered' "
            "GROUP BY interpreter_id"
        )
        assert sorted(r["interpreter_id"] for r in rows) == sorted(interpreters)
        assert all(r["n"] == 1 for r in rows)
        # First come, first served: the twelve oldest calls were offered.
        offered = {r["id"] for r in await pool.fetch("SELECT id FROM calls WHERE state='offered'")}
        assert offered == {c.call_id for c in calls[:12]}
        states = await pool.fetch("SELECT state, call_id FROM interpreter_status")
        assert all(r["state"] == "offered" and r["call_id"] is not None for r in states)
    finally:
        await other.close()


async def test_database_refuses_a_second_live_call(pool: asyncpg.Pool, seeded: None) -> None:
    user_id = await add_interpreter(pool, "ann@example.org")
    first = await routing.join_queue(pool, "demo")
    second = await routing.join_queue(pool, "demo")
    await routing.set_state(pool, user_id, "available")
    assert await routing.match_waiting(pool, RULES) == 1
    with pytest.raises(asyncpg.UniqueViolationError):
        await pool.execute(
            "UPDATE calls SET state='offered', interpreter_id=$1, "
            "offer_expires_at = now() + interval '20 s' WHERE id = $2",
            user_id,
            second.call_id,
        )
    assert first.call_id != second.call_id


async def answered_call(pool: asyncpg.Pool) -> routing.Joined:
    user_id = await add_interpreter(pool, "ann@example.org")
    joined = await routing.join_queue(pool, "demo")
    await routing.set_state(pool, user_id, "available")
    await routing.match_waiting(pool, RULES)
    await routing.accept(pool, user_id, "Ann", joined.call_id, [])
    # Pretend the call has been going for 61 s: two minutes started. The
    # charge is worked out from the event log's first answer.
    await pool.execute(
        "INSERT INTO call_events (call_id, kind, actor, at) "
        "VALUES ($1, 'answered', 'interpreter', now() - interval '61 seconds')",
        joined.call_id,
    )
    return joined


async def test_an_end_processed_twice_at_once_charges_once(
    database_url: str, pool: asyncpg.Pool, seeded: None
) -> None:
    joined = await answered_call(pool)
    other = await create_pool(database_url, min_size=1, max_size=2)
    try:
        results = await asyncio.gather(
            routing.end_call(pool, joined.call_id, "caller_hung_up", "caller", RULES),
            routing.end_call(other, joined.call_id, "interpreter_hung_up", "interpreter", RULES),
        )
    finally:
        await other.close()
    assert sorted(results) == [False, True]
    charges = await pool.fetch("SELECT * FROM ledger WHERE call_id = $1", joined.call_id)
    assert len(charges) == 1
    assert charges[0]["billable_seconds"] in (61, 62)
    assert charges[0]["net_pence"] == 300
    assert charges[0]["vat_pence"] == 60
    assert await routing.end_call(pool, joined.call_id, "caller_hung_up", "caller", RULES) is False
    assert await pool.fetchval("SELECT count(*) FROM ledger") == 1


async def test_charges_and_events_cannot_be_edited(pool: asyncpg.Pool, seeded: None) -> None:
    joined = await answered_call(pool)
    await routing.end_call(pool, joined.call_id, "caller_hung_up", "caller", RULES)
    for statement in (
        "UPDATE ledger SET net_pence = 1",
        "DELETE FROM ledger",
        "UPDATE call_events SET kind = 'x'",
        "DELETE FROM call_events",
    ):
        with pytest.raises(asyncpg.RestrictViolationError, match="append-only"):
            await pool.execute(statement)


async def test_a_free_interpreter_is_offered_a_call_beyond_many_they_declined(
    pool: asyncpg.Pool, seeded: None
) -> None:
    """The matcher reads the queue a page at a time; a free interpreter who has
    declined more than a page of calls at the front still gets the next one."""
    await pool.execute("UPDATE authorities SET max_queue_length = 1000")
    ann = await add_interpreter(pool, "ann@example.org")
    declined = routing.MATCH_SPARE_CALLS + 10
    calls = [await routing.join_queue(pool, "demo") for _ in range(declined + 2)]
    await pool.executemany(
        "INSERT INTO call_declines (call_id, interpreter_id) VALUES ($1, $2)",
        [(joined.call_id, ann) for joined in calls[:declined]],
    )
    await routing.set_state(pool, ann, "available")

    assert await routing.match_waiting(pool, RULES) == 1

    assert await pool.fetchval("SELECT id FROM calls WHERE state = 'offered'") == (
        calls[declined].call_id
    )


async def test_a_caller_who_starts_waiting_during_a_position_round_keeps_getting_updates(
    database_url: str, pool: asyncpg.Pool, seeded: None
) -> None:
    """A caller who joins while the hub is reading positions is not in that
    reading; they must stay watched (they used to be dropped for good)."""
    from aiohttp import web

    from signvideo.mailbox import Hub

    hub = Hub(pool, database_url)
    first = await routing.join_queue(pool, "demo")
    second = await routing.join_queue(pool, "demo")
    hub.watch_position(first.call_id, web.WebSocketResponse(), 1, None)
    round_ = asyncio.create_task(hub._send_positions())
    await asyncio.sleep(0)  # the round has read who is waiting and is at the database
    hub.watch_position(second.call_id, web.WebSocketResponse(), 2, None)
    await round_
    assert set(hub.waiting) == {first.call_id, second.call_id}


async def test_a_change_in_one_languages_queue_recomputes_only_its_callers(
    database_url: str, pool: asyncpg.Pool, seeded: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Processes are told which language's queue changed (migration 0019),
    and a round reads the places of that language's callers only; the
    periodic refresh ("") reads everyone's."""
    from aiohttp import web

    from signvideo.mailbox import Hub

    await pool.execute("UPDATE authorities SET languages = '{BSL,ISL}'")
    hub = Hub(pool, database_url)
    bsl = await routing.join_queue(pool, "demo", language="BSL")
    isl = await routing.join_queue(pool, "demo", language="ISL")
    asked: list[set[uuid.UUID]] = []
    real_positions = routing.positions

    async def counting(
        pool_: asyncpg.Pool, call_ids: list[uuid.UUID], ceiling: float
    ) -> dict[uuid.UUID, routing.Place]:
        asked.append(set(call_ids))
        return await real_positions(pool_, call_ids, ceiling)

    # Stale figures, so that a caller who is read is also sent an update.
    hub.watch_position(bsl.call_id, web.WebSocketResponse(), 9, None, "BSL")
    hub.watch_position(isl.call_id, web.WebSocketResponse(), 9, None, "ISL")
    monkeypatch.setattr(routing, "positions", counting)
    await hub._send_positions({"ISL"})
    await hub._send_positions(None)
    assert asked == [{isl.call_id}, {bsl.call_id, isl.call_id}]

    # The notice names the language of the call that changed.
    listener = await asyncpg.connect(database_url)
    heard: asyncio.Queue[str] = asyncio.Queue()
    try:
        await listener.add_listener("signvideo_queue", lambda *a: heard.put_nowait(a[-1]))
        await routing.join_queue(pool, "demo", language="ISL")
        assert await asyncio.wait_for(heard.get(), 5) == "ISL"
        await pool.execute(Q["notify_queue_changed"], bsl.call_id)
        assert await asyncio.wait_for(heard.get(), 5) == "BSL"
    finally:
        await listener.close()


async def test_callers_being_offered_are_told_they_are_next_and_about_to_be_answered(
    database_url: str, pool: asyncpg.Pool, seeded: None
) -> None:
    """However many calls are being offered, each of their callers is next,
    with no wait to speak of; the callers still waiting count only each other."""
    from aiohttp import web

    from signvideo.mailbox import Hub

    for email in ("ann@example.org", "bob@example.org"):
        await routing.set_state(pool, await add_interpreter(pool, email), "available")
    joined = [await routing.join_queue(pool, "demo", match=RULES) for _ in range(4)]
    assert [j.offered for j in joined] == [True, True, False, False]
    hub = Hub(pool, database_url)
    for j in joined:
        hub.watch_position(j.call_id, web.WebSocketResponse(), 0, None, "BSL")
    await hub._send_positions(None)
    told = [
        (hub.waiting[j.call_id].last_position, hub.waiting[j.call_id].last_wait) for j in joined
    ]
    # The calls being offered are ahead of no one. Two interpreters, both
    # taken, 600 s a call by default: the first waiting caller 1 * 600 / 2.
    assert told == [(1, 0), (1, 0), (1, 300), (2, 600)]


async def test_one_callers_place_is_the_same_as_in_the_whole_queue(
    pool: asyncpg.Pool, seeded: None
) -> None:
    """position_of counts the calls ahead; positions ranks the whole queue.
    They agree across languages, priorities, offered calls and all three
    dispatch bands."""
    await pool.execute("UPDATE authorities SET languages = '{BSL,ISL}', max_queue_length = 100")
    interpreter = await add_interpreter(pool, "ann@example.org", languages=("ISL",))
    calls = []
    for n in range(24):
        joined = await routing.join_queue(pool, "demo", language=("BSL", "ISL")[n % 2])
        calls.append(joined.call_id)
        # Spread arrivals over the bands: past the ceiling, inside the window,
        # past the window but under the ceiling; some lifted by priority.
        waited = (400, 10, 90, 30, 200, 5)[(n // 2) % 6] + n
        await pool.execute(
            "UPDATE calls SET queued_at = now() - make_interval(secs => $2), "
            "deadline_at = now() - make_interval(secs => $2) + interval '60 s', "
            "priority = $3 WHERE id = $1",
            joined.call_id,
            float(waited),
            1 if n % 7 == 0 else 0,
        )
    await routing.set_state(pool, interpreter, "available")
    assert await routing.match_waiting(pool, RULES) == 1  # one ISL call is offered

    whole = await routing.positions(pool, calls, 300)
    assert sorted(p for p, language, _ in whole.values() if language == "BSL") == list(range(1, 13))
    # The call being offered is next, and ahead of none of the ISL calls waiting.
    isl = sorted((p.position, p.offered) for p in whole.values() if p.language == "ISL")
    assert isl == [(1, False), (1, True), *((n, False) for n in range(2, 12))]
    for call_id in calls:
        assert await routing.position_of(pool, call_id, 300) == whole[call_id], call_id
    await routing.end_call(pool, calls[0], "caller_left", "caller", RULES)
    assert await routing.position_of(pool, calls[0], 300) is None


async def test_a_round_hands_back_the_messages_of_local_consoles_in_order(
    pool: asyncpg.Pool, seeded: None
) -> None:
    """A matching round stores the messages for consoles held elsewhere (for
    the mailbox to deliver) and hands back, for the process that ran it to
    send, those for consoles it holds: anything older still stored for them
    first, then each offer and the state it brings, never stored."""
    here = await add_interpreter(pool, "here@example.org")
    there = await add_interpreter(pool, "there@example.org")
    first = await routing.join_queue(pool, "demo")
    second = await routing.join_queue(pool, "demo")
    await routing.set_state(pool, here, "available")
    await routing.set_state(pool, there, "available")
    older = await pool.fetch("SELECT id, recipient, payload FROM mailbox ORDER BY id")
    assert [r["payload"]["state"] for r in older] == ["available", "available"]

    done = await routing.match_round(pool, RULES, local_interpreters=[here])

    assert done.offers == 2 and not done.again
    mine = f"interpreter:{here}"
    assert [m["recipient"] for m in done.mail] == [mine] * 3
    assert [m["payload"]["type"] for m in done.mail] == ["state", "offer", "state"]
    assert done.mail[0]["payload"] == next(r["payload"] for r in older if r["recipient"] == mine)
    offer, state = done.mail[1]["payload"], done.mail[2]["payload"]
    # Idle longest: `here` became available first, so takes the first call.
    assert offer["call_id"] == state["call_id"] == str(first.call_id)
    assert offer["authority"]["slug"] == "demo" and offer["expires_in"] == RULES.offer_timeout
    assert state["state"] == "offered"
    stored = await pool.fetch("SELECT recipient, payload FROM mailbox ORDER BY id")
    theirs = f"interpreter:{there}"
    assert [r["recipient"] for r in stored] == [theirs] * 3
    assert [r["payload"]["type"] for r in stored] == ["state", "offer", "state"]
    assert stored[1]["payload"]["call_id"] == str(second.call_id)
    # Should the console have gone meanwhile, what was handed back is stored
    # again, in order, for whichever process holds it now.
    from signvideo.mailbox import Hub

    await Hub(pool, "unused").send_taken(done.mail)
    again = await pool.fetch("SELECT payload FROM mailbox WHERE recipient = $1 ORDER BY id", mine)
    assert [r["payload"] for r in again] == [m["payload"] for m in done.mail]
    # The offer a reconnected console is sent again is the same message.
    resent = await pool.fetchrow(routing.Q["call_resend"], second.call_id)
    assert resent["offer"] == {**stored[1]["payload"], "expires_in": resent["offer"]["expires_in"]}
    assert 0 < resent["offer"]["expires_in"] <= RULES.offer_timeout


async def test_a_join_stands_when_its_matching_round_fails(
    database_url: str, pool: asyncpg.Pool, seeded: None
) -> None:
    """If the join's matching fails, the caller is queued all the same (the
    failed attempt rolled back whole, and the join is made again without
    matching), and the join says to run matching again. Here the matching
    gives up waiting for the matcher lock, which another holds."""
    user_id = await add_interpreter(pool, "ann@example.org")
    await routing.set_state(pool, user_id, "available")
    impatient = await create_pool(
        database_url, min_size=1, max_size=1, server_settings={"lock_timeout": "100ms"}
    )
    try:
        async with pool.acquire() as holder, holder.transaction():
            await holder.execute("SELECT pg_advisory_xact_lock(7428311)")
            joined = await routing.join_queue(impatient, "demo", match=RULES)
    finally:
        await impatient.close()
    assert joined.matched == routing.Round(0, [], again=True)
    assert not joined.offered
    assert await pool.fetchval("SELECT state FROM calls WHERE id = $1", joined.call_id) == "queued"
    # One call, with one `queued` event: nothing of the failed attempt is left.
    assert await pool.fetchval("SELECT count(*) FROM calls") == 1
    events = await pool.fetch("SELECT call_id, kind FROM call_events")
    assert [(r["call_id"], r["kind"]) for r in events] == [(joined.call_id, "queued")]
    assert await routing.match_waiting(pool, RULES) == 1


async def test_a_failed_rating_never_stops_a_call_ending_and_is_tried_again(
    pool: asyncpg.Pool, seeded: None, monkeypatch: pytest.MonkeyPatch, caplog: Any
) -> None:
    joined = await answered_call(pool)

    def broken(*_args: Any) -> None:
        raise ZeroDivisionError("a bug in rating")

    monkeypatch.setattr(billing, "rate_call", broken)
    assert await routing.end_call(pool, joined.call_id, "caller_hung_up", "caller", RULES)
    assert await pool.fetchval("SELECT state FROM calls WHERE id = $1", joined.call_id) == "ended"
    assert await pool.fetchval("SELECT count(*) FROM ledger") == 0
    assert "could not rate call" in caplog.text
    assert await billing.rate_unrated(pool) == 0  # still broken: still unrated, logged
    monkeypatch.undo()
    assert await billing.rate_unrated(pool) == 1
    assert await pool.fetchval(
        "SELECT net_pence FROM ledger WHERE call_id = $1", joined.call_id
    ) == (300)
    assert await billing.rate_unrated(pool) == 0
    async with pool.acquire() as con, con.transaction():
        assert await billing.rate_ended_call(con, joined.call_id) is False  # once only


async def test_a_failure_matching_handovers_never_stops_calls_being_matched(
    pool: asyncpg.Pool, seeded: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    from signvideo import handover

    async def broken(*_args: Any) -> int:
        raise RuntimeError("handover matching is broken")

    class Outbox:
        def local_interpreters(self) -> list[int]:
            return []

        async def send_taken(self, mail: list[dict[str, Any]]) -> None:
            pass

    monkeypatch.setattr(handover, "match", broken)
    joined = await routing.join_queue(pool, "demo")
    ann = await add_interpreter(pool, "ann@example.org")
    await routing.set_state(pool, ann, "available")
    matcher = routing.Matcher(pool, RULES, Outbox())
    matcher.start()
    try:
        matcher.kick()
        for _ in range(100):
            if await pool.fetchval("SELECT state FROM calls WHERE id = $1", joined.call_id) == (
                "offered"
            ):
                break
            await asyncio.sleep(0.05)
    finally:
        await matcher.stop()
    assert await pool.fetchval(
        "SELECT interpreter_id FROM calls WHERE id = $1", joined.call_id
    ) == (ann)


async def _call_state(pool: asyncpg.Pool, call_id: uuid.UUID) -> tuple[str, int | None]:
    row = await pool.fetchrow("SELECT state, interpreter_id FROM calls WHERE id = $1", call_id)
    return row["state"], row["interpreter_id"]


async def test_a_join_is_offered_at_once_only_when_no_call_ahead_could_take_its_interpreter(
    pool: asyncpg.Pool, seeded: None
) -> None:
    """A join offers its own call straight away (migrations 0021, 0023) only when a
    whole round would: never past a waiting call, ahead in dispatch order,
    that the free interpreter may take. Here the interpreter became free with
    no round run since (as when another process has not yet run it)."""
    await pool.execute("UPDATE authorities SET languages = '{BSL,ISL}'")
    ann = await add_interpreter(pool, "ann@example.org", specialisms=("health",))
    bob = await add_interpreter(pool, "bob@example.org", languages=("ISL",))
    earlier = await routing.join_queue(pool, "demo", specialism="health")
    irish = await routing.join_queue(pool, "demo", language="ISL")
    await routing.set_state(pool, ann, "available")
    await routing.set_state(pool, bob, "available")

    # A call ahead that Ann may take: the join runs a whole round, which
    # offers that call to Ann, and the Irish call (ahead too) to Bob.
    first = await routing.join_queue(pool, "demo", match=RULES)
    assert (first.offered, first.matched.offers) == (False, 2)
    assert await _call_state(pool, earlier.call_id) == ("offered", ann)
    assert await _call_state(pool, irish.call_id) == ("offered", bob)
    assert await _call_state(pool, first.call_id) == ("queued", None)
    await routing.end_call(pool, earlier.call_id, "caller_left", "caller", RULES)
    await routing.end_call(pool, irish.call_id, "caller_left", "caller", RULES)
    await routing.end_call(pool, first.call_id, "caller_left", "caller", RULES)

    # Calls ahead that she declined, or may not take, or that are past their
    # window (after a caller still inside theirs), or whose caller has
    # dropped, do not hold the join back.
    declined = await routing.join_queue(pool, "demo")
    await pool.execute(
        "INSERT INTO call_declines (call_id, interpreter_id) VALUES ($1, $2)",
        declined.call_id,
        ann,
    )
    legal = await routing.join_queue(pool, "demo", specialism="legal")
    late = await routing.join_queue(pool, "demo")
    await pool.execute(
        "UPDATE calls SET queued_at = now() - interval '90 s', "
        "deadline_at = now() - interval '30 s' WHERE id = $1",
        late.call_id,
    )
    gone = await routing.join_queue(pool, "demo")
    await pool.execute("UPDATE calls SET caller_gone_at = now() WHERE id = $1", gone.call_id)
    # Bob is free again too, with an Irish call waiting that no round has
    # offered him yet: the join's offer is its own alone, so that call is
    # left for the matcher (which each process runs when someone is freed).
    assert (await routing.interpreter_state(pool, bob))["state"] == "available"
    irish_again = await routing.join_queue(pool, "demo", language="ISL")
    await routing.set_state(pool, ann, "available")
    now = await routing.join_queue(pool, "demo", match=RULES)
    assert (now.offered, now.matched.offers) == (True, 1)
    assert await _call_state(pool, now.call_id) == ("offered", ann)
    assert now.matched.mail == []  # her console is not this process's: stored
    for waiting in (declined, legal, late, gone, irish_again):
        assert await _call_state(pool, waiting.call_id) == ("queued", None)
    assert await routing.match_waiting(pool, RULES) == 1
    assert await _call_state(pool, irish_again.call_id) == ("offered", bob)
    stored = await pool.fetch(
        "SELECT payload FROM mailbox WHERE recipient = $1 ORDER BY id", f"interpreter:{ann}"
    )
    assert [m["payload"]["type"] for m in stored][-2:] == ["offer", "state"]
    assert stored[-2]["payload"]["call_id"] == str(now.call_id)
    events = await pool.fetch(
        "SELECT kind, interpreter_id FROM call_events WHERE call_id = $1 ORDER BY id",
        now.call_id,
    )
    assert [(e["kind"], e["interpreter_id"]) for e in events] == [
        ("queued", None),
        ("offered", ann),
    ]
    status = await routing.interpreter_state(pool, ann)
    assert (status["state"], status["call_id"]) == ("offered", now.call_id)
    # Written once, already offered (migration 0023), as a round would offer it.
    row = await pool.fetchrow(
        "SELECT queued_at, offered_at, offer_expires_at FROM calls WHERE id = $1", now.call_id
    )
    assert row["offered_at"] == row["queued_at"]
    assert (row["offer_expires_at"] - row["offered_at"]).total_seconds() == RULES.offer_timeout
    logged = await pool.fetchrow(
        "SELECT state, call_id FROM interpreter_events WHERE interpreter_id = $1 "
        "ORDER BY id DESC LIMIT 1",
        ann,
    )
    assert (logged["state"], logged["call_id"]) == ("offered", now.call_id)

    # With no one free, the join just waits.
    alone = await routing.join_queue(pool, "demo", match=RULES)
    assert (alone.offered, alone.matched) == (False, routing.Round(0, [], again=False))


async def test_processes_are_told_of_queue_changes_exactly_when_calls_start_or_stop_waiting(
    database_url: str, pool: asyncpg.Pool, seeded: None
) -> None:
    """Places count waiting calls only (waiting_positions), so the queue
    notice that makes every process read its callers' places again is sent
    when a call starts or stops waiting, and not for a call offered with its
    join's commit, answered, or ended once it was being offered."""
    from signvideo.mailbox import Hub

    await pool.execute("UPDATE authorities SET languages = '{BSL,ISL}'")
    ann = await add_interpreter(pool, "ann@example.org")
    await routing.set_state(pool, ann, "available")
    listener = await asyncpg.connect(database_url)
    heard: asyncio.Queue[str] = asyncio.Queue()

    async def notices() -> list[str]:
        """What was heard, up to a marker sent now (notices come in commit order)."""
        await pool.execute("SELECT pg_notify('signvideo_queue', 'marker')")
        got = []
        while (payload := await asyncio.wait_for(heard.get(), 5)) != "marker":
            got.append(payload)
        return got

    try:
        await listener.add_listener("signvideo_queue", lambda *a: heard.put_nowait(a[-1]))
        first = await routing.join_queue(pool, "demo", match=RULES)
        assert first.offered
        assert await notices() == []  # offered at once: no one's place moved
        assert not (await routing.join_queue(pool, "demo", language="ISL", match=RULES)).offered
        assert await notices() == ["ISL"]  # left waiting
        await routing.decline(pool, ann, first.call_id)
        assert await notices() == ["BSL"]  # back in the queue, in its place
        await routing.end_call(pool, first.call_id, "caller_left", "caller", RULES)
        assert await notices() == ["BSL"]  # stopped waiting
        second = await routing.join_queue(pool, "demo", match=RULES)
        assert second.offered
        await routing.accept(pool, ann, "Ann", second.call_id, [])
        await routing.end_call(pool, second.call_id, "caller_hung_up", "caller", RULES)
        assert await notices() == []  # offered, answered, ended: never waiting
        await routing.set_state(pool, ann, "available")
        third = await routing.join_queue(pool, "demo")  # no matching in the join
        assert await notices() == ["BSL"]
        # A waiting caller who drops and comes back keeps their place: no one moves.
        process = uuid.UUID(int=7)
        await presence.caller_dropped(pool, third.call_id, process)
        await presence.resume_caller(pool, third.token, process)
        assert await notices() == []
        # A round that offers calls (the matcher of a process) says so.
        hub = Hub(pool, database_url)
        matcher = routing.Matcher(pool, RULES, hub)
        matcher.start()
        try:
            matcher.kick()
            assert await asyncio.wait_for(heard.get(), 5) == ""
        finally:
            await matcher.stop()
        assert await _call_state(pool, third.call_id) == ("offered", ann)
        # A round that offers nothing says nothing.
        assert await routing.match_waiting(pool, RULES) == 0
        assert await notices() == []
    finally:
        await listener.close()


async def test_a_join_offered_at_once_to_a_local_console_hands_back_its_mail_in_order(
    pool: asyncpg.Pool, seeded: None
) -> None:
    """Messages already stored for that console come first, then the offer
    and the new state, none of them left in the mailbox."""
    ann = await add_interpreter(pool, "ann@example.org")
    await routing.set_state(pool, ann, "available")
    await pool.execute(
        'INSERT INTO mailbox (recipient, payload) VALUES ($1, \'{"type": "older"}\')',
        f"interpreter:{ann}",
    )
    stored = [
        r["payload"]["type"]
        for r in await pool.fetch(
            "SELECT payload FROM mailbox WHERE recipient = $1 ORDER BY id", f"interpreter:{ann}"
        )
    ]
    assert stored[-1] == "older"
    joined = await routing.join_queue(pool, "demo", match=RULES, local_interpreters=[ann])
    assert joined.offered
    assert [(m["recipient"], m["payload"]["type"]) for m in joined.matched.mail] == [
        (f"interpreter:{ann}", kind) for kind in [*stored, "offer", "state"]
    ]
    assert joined.matched.mail[-2]["payload"]["call_id"] == str(joined.call_id)
    assert await pool.fetchval("SELECT count(*) FROM mailbox") == 0


async def test_a_join_waiting_on_its_authoritys_queue_length_holds_up_no_other_matching(
    pool: asyncpg.Pool, seeded: None
) -> None:
    """A join takes every row lock its insert needs before the matcher lock:
    while it waits for an answer or an end of its own authority's calls to
    commit (here, for the authority's queue-length row), other authorities'
    calls are still matched, and the free interpreter is not held."""
    await add_authority(pool, "other")
    ann = await add_interpreter(pool, "ann@example.org")
    elsewhere = await routing.join_queue(pool, "other")
    await routing.set_state(pool, ann, "available")  # no round since
    demo = await pool.fetchval("SELECT id FROM authorities WHERE slug = 'demo'")
    async with pool.acquire() as holder, holder.transaction():
        await holder.execute("SELECT 1 FROM queue_lengths WHERE authority_id = $1 FOR UPDATE", demo)
        joining = asyncio.create_task(routing.join_queue(pool, "demo", match=RULES))
        await asyncio.sleep(0.3)
        assert not joining.done()  # waiting for the row
        assert await asyncio.wait_for(routing.match_waiting(pool, RULES), 5) == 1
    joined = await asyncio.wait_for(joining, 5)
    assert await _call_state(pool, elsewhere.call_id) == ("offered", ann)
    assert (joined.offered, await _call_state(pool, joined.call_id)) == (False, ("queued", None))


async def test_a_joins_wait_counts_from_when_it_was_admitted_not_from_the_matcher_lock(
    pool: asyncpg.Pool, seeded: None
) -> None:
    """Billing and service levels count a caller's wait from the `queued`
    event: a join that waits for the matcher lock was already waiting."""
    async with pool.acquire() as holder, holder.transaction():
        await holder.execute("SELECT pg_advisory_xact_lock(7428311)")
        joining = asyncio.create_task(routing.join_queue(pool, "demo", match=RULES))
        await asyncio.sleep(0.5)
        assert not joining.done()
    joined = await asyncio.wait_for(joining, 5)
    waited = await pool.fetchval(
        "SELECT e.at - c.queued_at FROM call_events e JOIN calls c ON c.id = e.call_id "
        "WHERE e.call_id = $1 AND e.kind = 'queued'",
        joined.call_id,
    )
    assert waited.total_seconds() < 0.25, waited


async def test_the_join_function_answers_the_previous_versions_question(
    pool: asyncpg.Pool, seeded: None
) -> None:
    """During a rolling restart, processes of the previous version still ask
    for `match_error`: it is there, and always empty."""
    demo = await pool.fetchval("SELECT id FROM authorities WHERE slug = 'demo'")
    row = await pool.fetchrow(
        "SELECT call_id, offers, again, mail, match_error, offered "
        "FROM join_queue($1, $2, 'BSL', NULL, NULL, '{}', true, 300, 20, 10, '{}')",
        demo,
        b"\x01" * 32,
    )
    assert row["call_id"] is not None and row["match_error"] is None


async def test_an_authority_without_a_queue_length_says_so_rather_than_full(
    pool: asyncpg.Pool, seeded: None
) -> None:
    await pool.execute(
        "DELETE FROM queue_lengths WHERE authority_id = "
        "(SELECT id FROM authorities WHERE slug = 'demo')"
    )
    with pytest.raises(asyncpg.RaiseError, match="has no row in queue_lengths"):
        await routing.join_queue(pool, "demo", match=RULES)


class _LosesTheJoinsConnection:
    """A pool whose next join loses its connection with its answer: after
    the statement committed (`ran`), or before it reached the database. The
    join runs on a connection of the real pool; the rest goes to the pool."""

    def __init__(self, pool: asyncpg.Pool, ran: bool) -> None:
        self.pool, self.ran, self.lost = pool, ran, False

    async def fetchrow(self, query: str, *args: Any) -> Any:
        return await self.pool.fetchrow(query, *args)

    @contextlib.asynccontextmanager
    async def acquire(self) -> AsyncIterator[Any]:
        async with self.pool.acquire() as con:
            yield _LosingConnection(self, con)


class _LosingConnection:
    def __init__(self, losing: _LosesTheJoinsConnection, con: asyncpg.Connection) -> None:
        self.losing, self.con = losing, con

    async def fetchrow(self, query: str, *args: Any) -> Any:
        if query == Q["join_queue"] and not self.losing.lost:
            self.losing.lost = True
            if self.losing.ran:
                await self.con.fetchrow(query, *args)
            raise asyncpg.exceptions.ConnectionDoesNotExistError("connection was closed")
        return await self.con.fetchrow(query, *args)


async def test_a_join_whose_answer_was_lost_with_its_connection_stands_once(
    database_url: str, pool: asyncpg.Pool, seeded: None
) -> None:
    """The join committed, offered to a console this process holds: the
    caller has their one place, and the console is sent the offer the lost
    answer carried."""
    ann = await add_interpreter(pool, "ann@example.org")
    await routing.set_state(pool, ann, "available")
    # One connection: the look after the lost answer needs it back (a join
    # that kept it while asking for another would wait for ever).
    single = await create_pool(database_url, min_size=1, max_size=1)
    try:
        losing: Any = _LosesTheJoinsConnection(single, ran=True)
        async with asyncio.timeout(10):
            joined = await routing.join_queue(losing, "demo", match=RULES, local_interpreters=[ann])
    finally:
        await single.close()
    assert await pool.fetchval("SELECT count(*) FROM calls") == 1
    assert await _call_state(pool, joined.call_id) == ("offered", ann)
    assert joined.offered and joined.matched.again
    sent = [(m["recipient"], m["payload"]["type"]) for m in joined.matched.mail]
    assert sent == [(f"interpreter:{ann}", "offer"), (f"interpreter:{ann}", "state")]
    assert joined.matched.mail[0]["payload"]["call_id"] == str(joined.call_id)
    assert joined.matched.mail[1]["payload"]["state"] == "offered"


async def test_a_join_lost_before_it_reached_the_database_is_refused_not_made(
    pool: asyncpg.Pool, seeded: None
) -> None:
    losing: Any = _LosesTheJoinsConnection(pool, ran=False)
    with pytest.raises(asyncpg.exceptions.ConnectionDoesNotExistError):
        await routing.join_queue(losing, "demo", match=RULES)
    assert await pool.fetchval("SELECT count(*) FROM calls") == 0


class _Undo(Exception):
    """Raised to roll a test's transaction back."""


async def test_the_sweeps_one_look_names_the_steps_with_work_to_do_and_only_those(
    pool: asyncpg.Pool, seeded: None
) -> None:
    """sweep_due, which decides which of the once-a-second sweep's steps run,
    says yes for each step exactly when that step's own query finds
    something, and no to the others. Each case in a transaction undone after."""
    joined = await answered_call(pool)
    ann = await pool.fetchval("SELECT interpreter_id FROM calls WHERE id = $1", joined.call_id)
    bea = await add_interpreter(pool, "bea@example.org")
    config = Config()
    hour_ago = "now() - interval '1 hour'"
    cases: dict[str, tuple[str, str, tuple[Any, ...]]] = {
        # flag: (what makes it due, the step's own query, its arguments)
        "offers": (
            f"UPDATE calls SET state = 'offered', offer_expires_at = {hour_ago} WHERE id = $1",
            "expired_offers",
            (),
        ),
        "handovers": (
            "INSERT INTO call_handovers (call_id, from_interpreter, state, to_interpreter, "
            f"offered_at, offer_expires_at) VALUES ($1, {ann}, 'offered', {bea}, "
            f"{hour_ago}, {hour_ago})",
            "handover_offers_expired",
            (),
        ),
        "wrap_ups": (
            "INSERT INTO interpreter_status (user_id, state, wrap_up_until) "
            f"SELECT {bea}, 'wrap_up', {hour_ago} WHERE $1::uuid IS NOT NULL",
            "finished_wrap_ups",
            (),
        ),
        "dead_processes": (
            "INSERT INTO server_processes (id, heartbeat_at) "
            f"VALUES (gen_random_uuid(), {hour_ago}) RETURNING $1::uuid",
            "dead_processes",
            (presence.PROCESS_DEAD_AFTER,),
        ),
        "callers": (
            f"UPDATE calls SET caller_gone_at = {hour_ago} WHERE id = $1",
            "callers_past_grace",
            (config.caller_grace,),
        ),
        "guests": (
            "INSERT INTO call_guests (call_id, invited_by, expires_at, invitation_sha256, "
            f"joined_at, name, token_sha256, gone_at) VALUES ($1, {ann}, now(), '\\x01', "
            f"{hour_ago}, 'Officer', '\\x02', {hour_ago})",
            "guests_past_grace",
            (config.caller_grace,),
        ),
        "consoles": (
            f"UPDATE interpreter_status SET console_gone_at = {hour_ago} "
            f"WHERE user_id = {ann} AND $1::uuid IS NOT NULL",
            "consoles_past_lease",
            (config.console_lease,),
        ),
    }
    async with pool.acquire() as con:
        idle = await presence.sweep_due(con, config)
        assert not any(idle.values()), dict(idle)
        for flag, (make_due, step, step_args) in cases.items():
            with pytest.raises(_Undo):
                async with con.transaction():
                    assert not await con.fetch(Q[step], *step_args), step
                    made = await con.execute(make_due, joined.call_id)
                    assert not made.endswith(" 0"), (flag, made)
                    due = await presence.sweep_due(con, config)
                    assert {k for k, v in due.items() if v} == {flag}
                    # The step finds what the look said it would.
                    found = await con.execute(Q[step], *step_args)
                    assert not found.endswith(" 0"), (step, found)
                    raise _Undo
    assert not any((await presence.sweep_due(pool, config)).values())
