"""Routing as callers and interpreters meet it over WebSockets: opening hours,
full queues, honest waits, missed offers, wrap-up, breaks, resumes and leases."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import itertools
from collections.abc import Awaitable, Callable
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg
import pytest
from aiohttp.test_utils import TestClient
from prometheus_client.parser import text_string_to_metric_families

from signvideo import presence
from signvideo.config import Config
from signvideo.hours import ALWAYS_OPEN
from signvideo.keys import HUB
from tests.integration.conftest import (
    INTERPRETER_PASSWORD,
    Peer,
    add_authority,
    add_interpreter,
    add_staff,
    interpreter_console,
    sign_in,
)

Opener = Callable[[], Awaitable[Peer]]
ConsoleOpener = Callable[[str], Awaitable[Peer]]
CLOSED_ALL_WEEK: dict[str, list[list[str]]] = {day: [] for day in ALWAYS_OPEN}


async def test_closed_service_refuses_to_queue_and_says_when_it_opens(
    client: TestClient[Any, Any], pool: asyncpg.Pool, open_caller: Opener
) -> None:
    await add_authority(pool, "shut", opening_hours=CLOSED_ALL_WEEK)
    caller = await open_caller()
    await caller.send(type="join", authority="shut")
    error = await caller.expect("error")
    assert error["code"] == "closed"
    assert "outside opening hours" in error["message"]
    assert await pool.fetchval("SELECT count(*) FROM calls") == 0

    office = {d: ([["09:00", "17:00"]] if d == "mon" else []) for d in ALWAYS_OPEN}
    await add_authority(pool, "mondays", opening_hours=office)
    body = await (await client.get("/api/v1/authorities/mondays/availability")).json()
    now = dt.datetime.now(dt.UTC)
    if not body["open"]:
        assert body["next_open_text"].endswith("at 9am")
        assert dt.datetime.fromisoformat(body["next_open"]) > now
    page = await (await client.get("/call/shut")).text()
    assert "Monday: closed" in page or "closed" in page.lower()


async def test_a_closure_added_while_joins_are_kept_turns_callers_away(
    client: TestClient[Any, Any], pool: asyncpg.Pool, open_caller: Opener
) -> None:
    """A server process keeps what joins check about an authority; a closure
    added meanwhile reaches it through the database's notice, not a restart."""
    await add_authority(pool, "kept")
    kept = client.app[HUB].authorities
    first = await open_caller()
    await first.send(type="join", authority="kept")
    queued = await first.expect("queued")
    assert await kept.get("kept") is not None and "kept" in kept._kept
    await first.send(type="leave", call_id=queued["call_id"])

    await pool.execute(
        "INSERT INTO authority_closures (authority_id, first_day, last_day, reason) "
        "SELECT id, current_date - 1, current_date + 1, 'a flood' FROM authorities "
        "WHERE slug = 'kept'"
    )
    async with asyncio.timeout(10):
        while "kept" in kept._kept:
            await asyncio.sleep(0.01)
    second = await open_caller()
    await second.send(type="join", authority="kept")
    error = await second.expect("error")
    assert error["code"] == "closed" and "a flood" in error["message"]


async def test_bank_holiday_closure_is_named(
    pool: asyncpg.Pool, client: TestClient[Any, Any], open_caller: Opener
) -> None:
    await add_authority(pool, "closedtoday", closed_on_bank_holidays=True)
    await pool.execute(
        "INSERT INTO authority_closures (authority_id, first_day, last_day, reason) "
        "SELECT id, current_date - 1, current_date + 1, 'staff training' FROM authorities "
        "WHERE slug = 'closedtoday'"
    )
    caller = await open_caller()
    await caller.send(type="join", authority="closedtoday")
    error = await caller.expect("error")
    assert error["code"] == "closed"
    assert "staff training" in error["message"]
    # It opens again when the closure ends: at midnight after its last day, local time.
    reopens = dt.datetime.fromisoformat(error["next_open"]).astimezone(ZoneInfo("Europe/London"))
    last_day = await pool.fetchval("SELECT last_day FROM authority_closures")
    assert (reopens.date(), reopens.hour, reopens.minute) == (
        last_day + dt.timedelta(days=1),
        0,
        0,
    )


async def test_full_queue_and_bad_choices_are_refused(
    client: TestClient[Any, Any], pool: asyncpg.Pool, open_caller: Opener
) -> None:
    await add_authority(pool, "tiny", max_queue_length=1, languages=["BSL", "ISL"])
    first = await open_caller()
    await first.send(type="join", authority="tiny", language="ISL")
    first_call = (await first.expect("queued"))["call_id"]
    body = await (await client.get("/api/v1/authorities/tiny/availability?language=ISL")).json()
    assert body["queue_full"] is True
    assert body["waiting"] == 1
    second = await open_caller()
    await second.send(type="join", authority="tiny")
    assert (await second.expect("error"))["code"] == "queue_full"
    await second.send(type="join", authority="demo", language="Klingon")
    assert (await second.expect("error"))["code"] == "invalid_field"
    await second.send(type="join", authority="demo", specialism="astrology")
    assert (await second.expect("error"))["code"] == "invalid_field"
    await second.send(type="join", authority="demo", language=["BSL"])
    assert (await second.expect("error"))["code"] == "invalid_field"
    response = await client.get("/api/v1/authorities/nowhere/availability")
    assert response.status == 404
    # Once the first caller leaves there is room again.
    await first.send(type="leave", call_id=first_call)
    await first.expect("ended")
    body = await (await client.get("/api/v1/authorities/tiny/availability?language=ISL")).json()
    assert (body["queue_full"], body["waiting"]) == (False, 0)
    await second.send(type="join", authority="tiny")
    await second.expect("queued")


async def test_expected_wait_is_honest(
    client: TestClient[Any, Any],
    pool: asyncpg.Pool,
    open_caller: Opener,
    open_console: ConsoleOpener,
) -> None:
    body = await (await client.get("/api/v1/authorities/demo/availability")).json()
    assert body["interpreters_on_duty"] == 0
    assert body["expected_wait_seconds"] is None
    _, ann = await interpreter_console(client, pool, open_console, "ann@example.org")
    await ann.send(type="set_state", state="available")
    await ann.expect("state", state="available")
    body = await (await client.get("/api/v1/authorities/demo/availability")).json()
    assert body["interpreters_on_duty"] == 1
    assert body["expected_wait_seconds"] == 0
    # Ann is offered the first caller; the second waits about one handle time.
    first, second = await open_caller(), await open_caller()
    await first.send(type="join", authority="demo")
    queued = await first.expect("queued")
    # Offered with the join's own commit: next, and about to be answered.
    assert (queued["position"], queued["expected_wait_seconds"]) == (1, 0)
    await ann.expect("offer")
    # Before joining, the second caller is told what they will be told after.
    body = await (await client.get("/api/v1/authorities/demo/availability")).json()
    assert (body["waiting"], body["expected_wait_seconds"]) == (0, 600)
    await second.send(type="join", authority="demo")
    queued = await second.expect("queued")
    # Next, once Ann's call (about 600 s) is over: the call being offered to
    # her is not ahead of the second caller as well.
    assert (queued["position"], queued["expected_wait_seconds"]) == (1, 600)


async def test_missed_offers_pause_the_interpreter(
    client: TestClient[Any, Any],
    pool: asyncpg.Pool,
    open_caller: Opener,
    open_console: ConsoleOpener,
) -> None:
    _, ann = await interpreter_console(client, pool, open_console, "ann@example.org")
    await ann.send(type="set_state", state="available")
    caller = await open_caller()
    await caller.send(type="join", authority="demo")
    queued = await caller.expect("queued")
    for missed in (1, 2):
        offer = await ann.expect("offer")
        assert offer["call_id"] == queued["call_id"]
        await pool.execute(
            "UPDATE calls SET offer_expires_at = now() - interval '1 s' WHERE id = $1::uuid",
            queued["call_id"],
        )
        await ann.expect("offer_withdrawn", reason="expired")
        state = await ann.expect("state")
        if missed == 1:
            assert state["state"] == "available"
        else:
            assert (state["state"], state["reason"]) == ("break", "missed_offers")
        # The caller keeps their place.
        assert await pool.fetchval(
            "SELECT state FROM calls WHERE id = $1::uuid", queued["call_id"]
        ) in ("queued", "offered")
    assert (
        await pool.fetchval("SELECT missed_offers FROM interpreter_status WHERE state = 'break'")
        == 2
    )
    await ann.send(type="set_state", state="available")
    await ann.expect("state", state="available")
    offer = await ann.expect("offer")  # back at work: the waiting caller comes to them
    await ann.send(type="accept", call_id=offer["call_id"])
    await caller.expect("connected")
    assert await pool.fetchval("SELECT missed_offers FROM interpreter_status") == 0


async def test_wrap_up_then_available_and_breaks(
    aiohttp_client: Callable[..., Awaitable[TestClient[Any, Any]]],
    database_url: str,
    seeded: None,
    pool: asyncpg.Pool,
) -> None:
    client = await aiohttp_client(
        __import__("signvideo.app", fromlist=["create_app"]).create_app(
            Config(database_url=database_url, wrap_up=2, mailbox_poll_interval=0.5)
        )
    )
    await add_interpreter(pool, "ann@example.org")
    session = await sign_in(client, "ann@example.org", INTERPRETER_PASSWORD)
    ann = Peer(
        await client.ws_connect("/ws/console", headers={"Cookie": f"signvideo_session={session}"})
    )
    await ann.expect("state")
    await ann.send(type="set_state", state="break")
    assert (await ann.expect("error"))["code"] == "invalid_field"  # a break needs a reason
    await ann.send(type="set_state", state="break", reason="meal")
    state = await ann.expect("state", state="break")
    assert state["reason"] == "meal"
    await ann.send(type="end_wrap_up")
    assert (await ann.expect("error"))["code"] == "out_of_turn"
    await ann.send(type="set_state", state="available")
    caller = Peer(await client.ws_connect("/ws/caller"))
    await caller.send(type="join", authority="demo")
    queued = await caller.expect("queued")
    await ann.expect("offer")
    await ann.send(type="accept", call_id=queued["call_id"])
    await caller.expect("connected")
    await caller.send(type="hangup", call_id=queued["call_id"])
    await ann.expect("ended")
    wrap = await ann.expect("state", state="wrap_up")
    assert wrap["until"] is not None
    await ann.send(type="set_state", state="break", reason="comfort")
    await ann.expect("state", state="break")
    await ann.send(type="set_state", state="available")
    await ann.expect("state", state="available")
    # A second call: this time wrap-up runs out by itself.
    caller = Peer(await client.ws_connect("/ws/caller"))
    await caller.send(type="join", authority="demo")
    queued = await caller.expect("queued")
    await ann.expect("offer")
    await ann.send(type="accept", call_id=queued["call_id"])
    await ann.send(type="hangup", call_id=queued["call_id"])
    await ann.expect("state", state="wrap_up")
    await ann.expect("state", state="available", timeout=6)
    events = await pool.fetch("SELECT state, reason FROM interpreter_events ORDER BY id")
    assert ("break", "meal") in [(e["state"], e["reason"]) for e in events]


async def test_caller_resumes_place_and_call(
    client: TestClient[Any, Any],
    pool: asyncpg.Pool,
    open_caller: Opener,
    open_console: ConsoleOpener,
) -> None:
    first, second = await open_caller(), await open_caller()
    await first.send(type="join", authority="demo")
    one = await first.expect("queued")
    await second.send(type="join", authority="demo")
    two = await second.expect("queued")
    assert two["position"] == 2

    await second.close()
    await asyncio.sleep(0.2)
    again = await open_caller()
    await again.send(type="resume", token=two["token"])
    back = await again.expect("queued")
    assert (back["call_id"], back["position"], back["resumed"]) == (two["call_id"], 2, True)

    _, ann = await interpreter_console(client, pool, open_console, "ann@example.org")
    await ann.send(type="set_state", state="available")
    offer = await ann.expect("offer")
    assert offer["call_id"] == one["call_id"]
    await ann.send(type="accept", call_id=offer["call_id"])
    await first.expect("connected")
    # A dropped connection during the call: the call carries on after resume.
    await first.close()
    await asyncio.sleep(0.2)
    returned = await open_caller()
    await returned.send(type="resume", token=one["token"])
    connected = await returned.expect("connected")
    assert connected["resumed"] is True
    await ann.expect("peer_resumed", call_id=one["call_id"])
    assert (
        await pool.fetchval("SELECT state FROM calls WHERE id = $1::uuid", one["call_id"])
        == "answered"
    )

    stranger = await open_caller()
    await stranger.send(type="resume", token="not-a-real-token-at-all")
    assert (await stranger.expect("error"))["code"] == "not_found"


async def test_a_dropped_caller_is_not_offered_and_keeps_their_place(
    client: TestClient[Any, Any],
    pool: asyncpg.Pool,
    open_caller: Opener,
    open_console: ConsoleOpener,
) -> None:
    away, present = await open_caller(), await open_caller()
    await away.send(type="join", authority="demo")
    gone = await away.expect("queued")
    await present.send(type="join", authority="demo")
    here = await present.expect("queued")
    await away.close()
    await asyncio.sleep(0.3)
    _, ann = await interpreter_console(client, pool, open_console, "ann@example.org")
    await ann.send(type="set_state", state="available")
    assert (await ann.expect("offer"))["call_id"] == here["call_id"]
    assert (
        await pool.fetchval("SELECT state FROM calls WHERE id = $1::uuid", gone["call_id"])
        == "queued"
    )


async def test_console_blink_keeps_offer_and_call(
    client: TestClient[Any, Any],
    pool: asyncpg.Pool,
    open_caller: Opener,
    open_console: ConsoleOpener,
) -> None:
    ann_id = await add_interpreter(pool, "ann@example.org")
    session = await sign_in(client, "ann@example.org", INTERPRETER_PASSWORD)
    ann = await open_console(session)
    await ann.send(type="set_state", state="available")
    caller = await open_caller()
    await caller.send(type="join", authority="demo")
    queued = await caller.expect("queued")
    await ann.expect("offer")
    await ann.close()
    await asyncio.sleep(0.3)
    assert await pool.fetchval(
        "SELECT console_gone_at IS NOT NULL FROM interpreter_status WHERE user_id = $1", ann_id
    )
    ann = Peer(
        await client.ws_connect("/ws/console", headers={"Cookie": f"signvideo_session={session}"})
    )
    assert (await ann.expect("state"))["state"] == "offered"
    again = await ann.expect("offer")
    assert again["call_id"] == queued["call_id"]
    assert 0 < again["expires_in"] <= 20
    await ann.send(type="accept", call_id=queued["call_id"])
    await caller.expect("connected")
    await ann.close()
    await asyncio.sleep(0.3)
    ann = Peer(
        await client.ws_connect("/ws/console", headers={"Cookie": f"signvideo_session={session}"})
    )
    assert (await ann.expect("state"))["state"] == "in_call"
    resumed = await ann.expect("connected")
    assert resumed["resumed"] is True


async def test_a_dead_process_drops_its_sockets(
    client: TestClient[Any, Any], pool: asyncpg.Pool, config: Config
) -> None:
    """A process that stops beating: its callers keep their places through the grace."""
    import uuid

    from signvideo import routing

    dead = uuid.uuid4()
    await presence.register_process(pool, dead)
    joined = await routing.join_queue(pool, "demo", process_id=dead)
    await pool.execute(
        "UPDATE server_processes SET heartbeat_at = now() - interval '30 s' WHERE id = $1", dead
    )
    await presence.sweep(pool, config)
    row = await pool.fetchrow(
        "SELECT state, caller_gone_at FROM calls WHERE id = $1", joined.call_id
    )
    assert row["state"] == "queued"
    assert row["caller_gone_at"] is not None
    assert await pool.fetchval("SELECT count(*) FROM server_processes WHERE id = $1", dead) == 0
    # Resuming through a live process takes the place back.
    resumed = await presence.resume_caller(pool, joined.token, uuid.uuid4())
    assert resumed.call_id == joined.call_id


async def test_queues_api_for_the_wallboard(
    client: TestClient[Any, Any],
    pool: asyncpg.Pool,
    open_caller: Opener,
    open_console: ConsoleOpener,
) -> None:
    await add_authority(pool, "isl-only", languages=["ISL"])
    caller = await open_caller()
    await caller.send(type="join", authority="demo")
    await caller.expect("queued")
    _, ann = await interpreter_console(client, pool, open_console, "ann@example.org")
    await ann.send(type="set_state", state="break", reason="meal")
    await ann.expect("state", state="break")
    await add_staff(pool, "sue@example.org", "supervisor")
    sue = await sign_in(client, "sue@example.org", INTERPRETER_PASSWORD)
    answer = await client.get("/api/v1/queues", headers={"Cookie": f"signvideo_session={sue}"})
    by_slug = {a["slug"]: a for a in (await answer.json())["authorities"]}
    assert by_slug["demo"]["waiting"] == 1
    assert by_slug["demo"]["eligible_interpreters_signed_in"] == 1
    assert by_slug["demo"]["eligible_interpreters_available"] == 0
    assert by_slug["demo"]["oldest_deadline"] is not None
    assert by_slug["isl-only"]["waiting"] == 0
    assert by_slug["isl-only"]["eligible_interpreters_signed_in"] == 0


async def test_position_updates_are_coalesced(
    client: TestClient[Any, Any],
    pool: asyncpg.Pool,
    open_caller: Opener,
    open_console: ConsoleOpener,
) -> None:
    """Many queue changes in a moment reach a waiting caller as at most one update a second."""
    watcher_peers = []
    for _ in range(3):
        peer = await open_caller()
        await peer.send(type="join", authority="demo")
        await peer.expect("queued")
        watcher_peers.append(peer)
    last = watcher_peers[-1]
    churn = []
    for _ in range(12):
        peer = await open_caller()
        await peer.send(type="join", authority="demo")
        churn.append((peer, await peer.expect("queued")))
    for peer, queued in churn:
        await peer.send(type="leave", call_id=queued["call_id"])
    first = watcher_peers[0]
    await first.close()  # dropped, but keeps the place: no change for the others
    loop = asyncio.get_running_loop()
    started, updates = loop.time(), []
    while loop.time() - started < 2.5:
        try:
            message = await last.receive(timeout=0.2)
        except TimeoutError:
            continue
        if message["type"] == "position":
            updates.append((loop.time() - started, message))
    # 25 queue changes in under a second, yet at most one update per second.
    assert len(updates) <= 3
    times = [t for t, _ in updates]
    assert all(b - a >= 0.9 for a, b in itertools.pairwise(times))


async def test_an_offer_made_by_a_join_reaches_the_console_once(
    client: TestClient[Any, Any],
    pool: asyncpg.Pool,
    open_caller: Opener,
    open_console: ConsoleOpener,
) -> None:
    """The joining process sends the offer straight after its commit, and the
    notification of the same message arrives too: the console gets it once,
    and the mailbox row is gone."""
    _, ann = await interpreter_console(client, pool, open_console, "ann@example.org")
    received: list[dict[str, Any]] = []
    receive = ann.receive

    async def recording(timeout: float = 5.0) -> dict[str, Any]:
        received.append(await receive(timeout))
        return received[-1]

    ann.receive = recording  # type: ignore[method-assign]
    await ann.send(type="set_state", state="available")
    await ann.expect("state", state="available")
    calls = []
    for _ in range(3):
        caller = await open_caller()
        await caller.send(type="join", authority="demo")
        calls.append((await caller.expect("queued"))["call_id"])
        await ann.expect("offer", call_id=calls[-1])
        await caller.send(type="leave", call_id=calls[-1])
        await ann.expect("state", state="available")
        await caller.close()
    # Longer than the mailbox poll (0.5 s here), for anything still to come.
    with pytest.raises(TimeoutError):
        while True:
            await ann.receive(timeout=1.5)
    offers = [m["call_id"] for m in received if m["type"] == "offer"]
    assert offers == calls, received
    assert await pool.fetchval("SELECT count(*) FROM mailbox") == 0


async def _join_metrics(client: TestClient[Any, Any]) -> dict[tuple[str, str], float]:
    """(sample name, outcome label or "") to value, for the two join histograms."""
    text = await (await client.get("/metrics")).text()
    return {
        (sample.name, sample.labels.get("outcome", "")): sample.value
        for family in text_string_to_metric_families(text)
        if family.name in ("signvideo_join_seconds", "signvideo_join_database_seconds")
        for sample in family.samples
        if sample.name.endswith(("_count", "_sum"))
    }


async def test_each_join_is_timed_whole_and_in_the_database_for_the_metrics(
    client: TestClient[Any, Any],
    pool: asyncpg.Pool,
    open_caller: Opener,
    open_console: ConsoleOpener,
) -> None:
    """/metrics has how long joins take, by whether they were offered at
    once, and the database's part of it; a refused join is not counted."""
    before = await _join_metrics(client)
    assert before[("signvideo_join_seconds_count", "offered")] == 0
    assert before[("signvideo_join_seconds_count", "queued")] == 0
    assert before[("signvideo_join_database_seconds_count", "offered")] == 0
    _, ann = await interpreter_console(client, pool, open_console, "ann@example.org")
    await ann.send(type="set_state", state="available")
    await ann.expect("state", state="available")
    first, second = await open_caller(), await open_caller()
    await first.send(type="join", authority="demo")
    await first.expect("queued")
    await ann.expect("offer")
    await second.send(type="join", authority="demo")  # Ann has an offer: it waits
    await second.expect("queued")
    await second.send(type="join", authority="nowhere")
    assert (await second.expect("error"))["code"] == "out_of_turn"
    refused = await open_caller()
    await refused.send(type="join", authority="nowhere")
    assert (await refused.expect("error"))["code"] == "not_found"

    after = await _join_metrics(client)
    assert after[("signvideo_join_seconds_count", "offered")] == 1
    assert after[("signvideo_join_seconds_count", "queued")] == 1
    for outcome in ("offered", "queued"):
        assert after[("signvideo_join_database_seconds_count", outcome)] == 1
        whole = after[("signvideo_join_seconds_sum", outcome)]
        in_database = after[("signvideo_join_database_seconds_sum", outcome)]
        # The database's part is part of the whole, and takes time.
        assert 0 < in_database < whole


async def _mail_test_app(
    aiohttp_client: Callable[..., Awaitable[TestClient[Any, Any]]],
    database_url: str,
    poll_interval: float,
) -> TestClient[Any, Any]:
    """The service with the mailbox poll every `poll_interval` s, listening,
    its first look for everyone's mail (on listening) done."""
    client = await aiohttp_client(
        __import__("signvideo.app", fromlist=["create_app"]).create_app(
            Config(database_url=database_url, mailbox_poll_interval=poll_interval)
        )
    )
    await asyncio.wait_for(client.app[HUB].listening.wait(), 10)
    await asyncio.sleep(0.3)
    return client


async def _console(client: TestClient[Any, Any], session: str) -> Peer:
    peer = Peer(
        await client.ws_connect("/ws/console", headers={"Cookie": f"signvideo_session={session}"})
    )
    await peer.expect("state")
    return peer


async def _missed_note(pool: asyncpg.Pool, user_id: int, text: str) -> None:
    """A mailbox row with no notification: as if this process had missed it."""
    await pool.execute(
        "INSERT INTO mailbox (recipient, payload) VALUES ($1, $2)",
        f"interpreter:{user_id}",
        {"type": "note", "text": text},
    )


async def test_a_socket_that_connects_gets_its_own_waiting_mail_at_once_and_only_its_own(
    aiohttp_client: Callable[..., Awaitable[TestClient[Any, Any]]],
    database_url: str,
    seeded: None,
    pool: asyncpg.Pool,
) -> None:
    """Mail posted while a console was away is sent as soon as it connects,
    not at the next poll (a minute away here). Its connection looks for its
    own mail only: Bea's, whose notification this process missed, waits for
    the poll, which looks for everyone's (the next test)."""
    client = await _mail_test_app(aiohttp_client, database_url, poll_interval=60)
    bea_id = await add_interpreter(pool, "bea@example.org")
    bea = await _console(client, await sign_in(client, "bea@example.org", INTERPRETER_PASSWORD))
    ann_id = await add_interpreter(pool, "ann@example.org")
    ann_session = await sign_in(client, "ann@example.org", INTERPRETER_PASSWORD)
    await asyncio.sleep(0.3)  # Bea's own look, on connecting, is over
    await _missed_note(pool, bea_id, "for Bea")
    await _missed_note(pool, ann_id, "for Ann")
    # Not _console: the note may come before or after the console's state.
    ann = Peer(
        await client.ws_connect(
            "/ws/console", headers={"Cookie": f"signvideo_session={ann_session}"}
        )
    )
    assert (await ann.expect("note", timeout=5))["text"] == "for Ann"
    with pytest.raises(TimeoutError):
        await bea.receive(timeout=1.0)
    assert await pool.fetchval("SELECT array_agg(recipient) FROM mailbox") == [
        f"interpreter:{bea_id}"
    ]


async def test_the_poll_looks_for_everyones_mail_however_busy_the_mailbox(
    aiohttp_client: Callable[..., Awaitable[TestClient[Any, Any]]],
    database_url: str,
    seeded: None,
    pool: asyncpg.Pool,
) -> None:
    """The poll (every 0.5 s here) comes by the clock: Ann's console
    reconnecting every 0.1 s, each time with a look for her own mail, does
    not put off the look for everyone's, which finds the note for Bea whose
    notification was missed."""
    client = await _mail_test_app(aiohttp_client, database_url, poll_interval=0.5)
    bea_id = await add_interpreter(pool, "bea@example.org")
    bea = await _console(client, await sign_in(client, "bea@example.org", INTERPRETER_PASSWORD))
    await add_interpreter(pool, "ann@example.org")
    ann_session = await sign_in(client, "ann@example.org", INTERPRETER_PASSWORD)
    busy = asyncio.Event()

    async def ann_keeps_reconnecting() -> None:
        while True:
            ann = await _console(client, ann_session)
            busy.set()
            await asyncio.sleep(0.1)
            await ann.close()

    reconnecting = asyncio.create_task(ann_keeps_reconnecting())
    try:
        await asyncio.wait_for(busy.wait(), 5)
        await _missed_note(pool, bea_id, "for Bea")
        assert (await bea.expect("note", timeout=3))["text"] == "for Bea"
        assert not reconnecting.done()  # still busy when Bea's note came
    finally:
        reconnecting.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await reconnecting
