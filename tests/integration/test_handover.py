"""Warm handover: a second eligible interpreter joins a call with real aiortc
media, the first leaves, the caller's connection is never dropped, and the
call is charged once, unbroken; offers, declines, expiry, cancelling and
leaving early."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg
from aiohttp.test_utils import TestClient
from aiortc import RTCPeerConnection, RTCSessionDescription, VideoStreamTrack

from signvideo.config import Config
from tests.integration.conftest import Peer, interpreter_console
from tests.integration.media import frames_from, negotiate, remote_track

Opener = Callable[[], Awaitable[Peer]]
ConsoleOpener = Callable[[str], Awaitable[Peer]]


async def call_with_colleague_free(
    client: TestClient[Any, Any],
    pool: asyncpg.Pool,
    open_caller: Opener,
    open_console: ConsoleOpener,
    specialism: str | None = None,
    **colleague: Any,
) -> tuple[Peer, Peer, Peer, str, int, int]:
    """A call answered by Ann, with Bea available and nobody waiting:
    (Ann's console, Bea's console, the caller, call id, Ann's id, Bea's id)."""
    ann_id, ann = await interpreter_console(
        client, pool, open_console, "ann@example.org", name="Ann", specialisms=("mental-health",)
    )
    caller = await open_caller()
    await caller.send(
        type="join", authority="demo", **({"specialism": specialism} if specialism else {})
    )
    call_id: str = (await caller.expect("queued"))["call_id"]
    await ann.send(type="set_availability", available=True)
    await ann.expect("offer", call_id=call_id)
    await ann.send(type="accept", call_id=call_id)
    await ann.expect("connected")
    await caller.expect("connected")
    bea_id, bea = await interpreter_console(
        client, pool, open_console, "bea@example.org", name="Bea", **colleague
    )
    await bea.send(type="set_availability", available=True)
    await bea.expect("state", state="available")
    return ann, bea, caller, call_id, ann_id, bea_id


async def answer(peer: Peer, call_id: str, sender: str) -> RTCPeerConnection:
    """`peer` answers the offer `sender` makes it, sending video back."""
    relayed = await peer.expect("sdp", **{"from": sender})
    assert relayed["description"]["type"] == "offer"
    pc = RTCPeerConnection()
    pc.addTrack(VideoStreamTrack())
    pc.track_future = remote_track(pc)  # type: ignore[attr-defined]
    await pc.setRemoteDescription(RTCSessionDescription(**relayed["description"]))
    await pc.setLocalDescription(await pc.createAnswer())
    await peer.send(
        type="sdp",
        call_id=call_id,
        to=sender,
        description={"type": "answer", "sdp": pc.localDescription.sdp},
    )
    return pc


async def offer(peer: Peer, call_id: str, to: str) -> RTCPeerConnection:
    pc = RTCPeerConnection()
    pc.addTrack(VideoStreamTrack())
    pc.track_future = remote_track(pc)  # type: ignore[attr-defined]
    await pc.setLocalDescription(await pc.createOffer())
    await peer.send(
        type="sdp",
        call_id=call_id,
        to=to,
        description={"type": "offer", "sdp": pc.localDescription.sdp},
    )
    return pc


async def sees_video(pc: RTCPeerConnection, frames: int = 5) -> None:
    track = await asyncio.wait_for(pc.track_future, 10)  # type: ignore[attr-defined]
    sizes = await frames_from(track, frames)
    assert all(w >= 320 and h >= 240 for w, h in sizes), sizes


async def test_warm_handover_keeps_the_caller_and_one_unbroken_charge(
    loopback_ice: None,
    client: TestClient[Any, Any],
    pool: asyncpg.Pool,
    open_caller: Opener,
    open_console: ConsoleOpener,
) -> None:
    ann, bea, caller, call_id, ann_id, bea_id = await call_with_colleague_free(
        client, pool, open_caller, open_console
    )
    first = await negotiate(ann, caller, call_id)
    pcs = [first.caller_pc, first.interpreter_pc]
    try:
        await first.expect_video_both_ways(5)

        await ann.send(type="request_handover", call_id=call_id)
        assert (await ann.expect("handover"))["state"] == "requested"
        offered = await bea.expect("offer", call_id=call_id)
        assert offered["handover"] == {"from": "Ann"} and offered["expires_in"] > 0
        await bea.expect("state", state="offered")
        assert (await ann.expect("handover"))["state"] == "offered"

        await bea.send(type="accept", call_id=call_id)
        connected = await bea.expect("connected", handover=True)
        assert [p["party"] for p in connected["parties"]] == ["caller", f"interpreter:{ann_id}"]
        bea_party = f"interpreter:{bea_id}"
        for peer in (caller, ann):
            joined = await peer.expect("party_joined", party=bea_party)
            assert joined["role"] == "interpreter" and joined["name"] == "Bea"
        status = await ann.expect("handover", state="joined")
        assert status["colleague"]["name"] == "Bea"

        # The newcomer offers to the caller and to Ann; both answer.
        to_caller = await offer(bea, call_id, "caller")
        to_ann = await offer(bea, call_id, f"interpreter:{ann_id}")
        pcs += [to_caller, to_ann]
        caller_side = await answer(caller, call_id, bea_party)
        ann_side = await answer(ann, call_id, bea_party)
        pcs += [caller_side, ann_side]
        for pc, sender in ((to_caller, "caller"), (to_ann, f"interpreter:{ann_id}")):
            relayed = await bea.expect("sdp", **{"from": sender})
            await pc.setRemoteDescription(RTCSessionDescription(**relayed["description"]))
        for pc in (to_caller, to_ann, caller_side, ann_side):
            await sees_video(pc)

        # Ann leaves the call to Bea.
        await ann.send(type="complete_handover", call_id=call_id)
        assert (await ann.expect("ended"))["reason"] == "handed_over"
        await ann.expect("state", state="available")  # no wrap-up in these tests
        assert (await caller.expect("party_left", party=f"interpreter:{ann_id}"))[
            "reason"
        ] == "handed_over"
        assert (await bea.expect("handover", state="completed"))["colleague"]["name"] == "Ann"
        # No drop for the caller: the caller's connection with Bea carries on.
        await sees_video(caller_side, 10)
        await sees_video(to_caller, 10)
        assert caller_side.connectionState == "connected"
        assert (
            await pool.fetchval("SELECT interpreter_id FROM calls WHERE id = $1::uuid", call_id)
            == bea_id
        )
        # Ann is out of the call: nothing she sends is passed on.
        await ann.send(type="ice", call_id=call_id, candidate=None)
        assert (await ann.expect("error"))["code"] == "out_of_turn"

        await asyncio.sleep(1.1)  # so that the call lasts past a whole second
        await bea.send(type="hangup", call_id=call_id)
        assert (await caller.expect("ended"))["reason"] == "interpreter_hung_up"
        kinds = [
            r["kind"]
            for r in await pool.fetch(
                "SELECT kind FROM call_events WHERE call_id = $1::uuid ORDER BY id", call_id
            )
        ]
        assert kinds == [
            "queued",
            "offered",
            "answered",
            "handover_requested",
            "handover_offered",
            "handover_joined",
            "handed_over",
            "ended",
        ]
        # One charge, from Ann's answer to Bea's hang-up.
        line = await pool.fetchrow(
            "SELECT l.billable_seconds, c.ended_at - c.answered_at AS lasted "
            "FROM ledger l JOIN calls c ON c.id = l.call_id WHERE l.call_id = $1::uuid",
            call_id,
        )
        assert (
            await pool.fetchval("SELECT count(*) FROM ledger WHERE call_id = $1::uuid", call_id)
            == 1
        )
        assert line["billable_seconds"] == int(line["lasted"].total_seconds()) or (
            line["billable_seconds"] == int(line["lasted"].total_seconds()) + 1
        )
        assert line["billable_seconds"] >= 1
    finally:
        for pc in pcs:
            await pc.close()


async def test_declines_expiry_cancelling_leaving_early_and_bad_requests(
    client: TestClient[Any, Any],
    pool: asyncpg.Pool,
    open_caller: Opener,
    open_console: ConsoleOpener,
) -> None:
    ann, bea, caller, call_id, _, _ = await call_with_colleague_free(
        client, pool, open_caller, open_console
    )
    for message, words in [
        ({"type": "complete_handover", "call_id": call_id}, "once they have joined"),
        ({"type": "cancel_handover", "call_id": call_id}, "no handover of yours"),
    ]:
        await ann.send(**message)
        refused = await ann.expect("error")
        assert refused["code"] == "out_of_turn" and words in refused["message"]
    await bea.send(type="request_handover", call_id=call_id)
    assert "a call you are interpreting" in (await bea.expect("error"))["message"]

    # Bea declines; with nobody else free the request waits; Cal, free, is asked.
    await ann.send(type="request_handover", call_id=call_id)
    await bea.expect("offer", call_id=call_id)
    await ann.send(type="request_handover", call_id=call_id)
    assert "already under way" in (await ann.expect("error"))["message"]
    await bea.send(type="decline", call_id=call_id)
    await bea.expect("state", state="available")
    await ann.expect("handover", state="requested")
    _, cal = await interpreter_console(client, pool, open_console, "cal@example.org", name="Cal")
    await cal.send(type="set_availability", available=True)
    await cal.expect("offer", call_id=call_id)
    assert not [m for m in await drain(bea) if m["type"] == "offer"]

    # Cal misses it: it is withdrawn and nobody else is eligible.
    await pool.execute("UPDATE call_handovers SET offer_expires_at = now() WHERE state = 'offered'")
    assert (await cal.expect("offer_withdrawn", timeout=5))["reason"] == "expired"
    await ann.expect("handover", state="requested")

    # Ann cancels; then asks again, and Dee, who joins, leaves early.
    await ann.send(type="cancel_handover", call_id=call_id)
    assert (await ann.expect("handover", state="cancelled"))["reason"] == (
        "cancelled_by_interpreter"
    )
    for other in (bea, cal):
        await other.send(type="set_availability", available=False)
        await other.expect("state", state="offline")
    dee_id, dee = await interpreter_console(
        client, pool, open_console, "dee@example.org", name="Dee"
    )
    await ann.send(type="request_handover", call_id=call_id)
    await dee.send(type="set_availability", available=True)
    await dee.expect("offer", call_id=call_id)
    await dee.send(type="accept", call_id=call_id)
    await dee.expect("connected", handover=True)
    dee_party = f"interpreter:{dee_id}"
    await caller.expect("party_joined", party=dee_party)
    await dee.send(type="hangup", call_id=call_id)
    await dee.expect("ended", reason="incoming_left")
    await dee.expect("state", state="available")
    assert (await caller.expect("party_left", party=dee_party))["reason"] == "left"
    await ann.expect("handover", state="cancelled")
    # The call carries on with Ann.
    assert await pool.fetchval("SELECT state FROM calls WHERE id = $1::uuid", call_id) == (
        "answered"
    )
    await caller.send(type="ice", call_id=call_id, to=dee_party, candidate=None)
    assert (await caller.expect("error"))["code"] == "out_of_turn"

    # The call ends while a colleague is joined: they are told, and freed.
    await ann.send(type="request_handover", call_id=call_id)
    await dee.expect("offer", call_id=call_id)
    await dee.send(type="accept", call_id=call_id)
    await dee.expect("connected", handover=True)
    await caller.send(type="hangup", call_id=call_id)
    assert (await dee.expect("ended"))["reason"] == "caller_hung_up"
    await dee.expect("state", state="available")
    assert (await ann.expect("ended"))["reason"] == "caller_hung_up"
    assert (
        await pool.fetchval(
            "SELECT count(*) FROM call_handovers WHERE state NOT IN ('completed', 'cancelled')"
        )
        == 0
    )


async def drain(peer: Peer) -> list[dict[str, Any]]:
    """What has arrived for `peer` within a short while."""
    got = []
    while True:
        try:
            got.append(await peer.receive(0.3))
        except TimeoutError:
            return got


async def test_a_trainee_is_never_offered_a_mental_health_handover(
    client: TestClient[Any, Any],
    pool: asyncpg.Pool,
    open_caller: Opener,
    open_console: ConsoleOpener,
) -> None:
    ann, bea, _, call_id, _, _ = await call_with_colleague_free(
        client,
        pool,
        open_caller,
        open_console,
        specialism="mental-health",
        specialisms=("mental-health",),
        category="trainee",
    )
    await ann.send(type="request_handover", call_id=call_id)
    await ann.expect("handover", state="requested")
    assert not [m for m in await drain(bea) if m["type"] == "offer"]
    _, eve = await interpreter_console(
        client, pool, open_console, "eve@example.org", name="Eve", specialisms=("mental-health",)
    )
    await eve.send(type="set_availability", available=True)
    assert (await eve.expect("offer", call_id=call_id))["handover"] == {"from": "Ann"}


async def console_gone_past_lease(pool: asyncpg.Pool, user_id: int) -> None:
    """Wait until the console's drop is recorded, then age it past the lease."""
    for _ in range(100):
        if await pool.fetchval(
            "SELECT console_gone_at FROM interpreter_status WHERE user_id = $1", user_id
        ):
            break
        await asyncio.sleep(0.05)
    await pool.execute(
        "UPDATE interpreter_status SET console_gone_at = now() - interval '16 s' "
        "WHERE user_id = $1",
        user_id,
    )


async def test_consoles_lost_during_a_handover(
    client: TestClient[Any, Any],
    pool: asyncpg.Pool,
    open_caller: Opener,
    open_console: ConsoleOpener,
) -> None:
    ann, bea, caller, call_id, ann_id, bea_id = await call_with_colleague_free(
        client, pool, open_caller, open_console
    )
    # An incoming interpreter whose console is lost while offered: the
    # request goes back to wait for someone else, and they go offline.
    await ann.send(type="request_handover", call_id=call_id)
    await bea.expect("offer", call_id=call_id)
    await ann.expect("handover", state="offered")
    await bea.close()
    await console_gone_past_lease(pool, bea_id)
    await ann.expect("handover", state="requested", timeout=5)
    for _ in range(50):
        state = await pool.fetchval(
            "SELECT state FROM interpreter_status WHERE user_id = $1", bea_id
        )
        if state == "offline":
            break
        await asyncio.sleep(0.1)
    assert state == "offline"

    # The first interpreter's console is lost once a colleague has joined:
    # the colleague takes the call, and the caller stays in it.
    cal_id, cal = await interpreter_console(
        client, pool, open_console, "cal@example.org", name="Cal"
    )
    # The request still stands: Cal, once free, is asked.
    await cal.send(type="set_availability", available=True)
    await cal.expect("offer", call_id=call_id)
    await cal.send(type="accept", call_id=call_id)
    await cal.expect("connected", handover=True)
    await ann.close()
    await console_gone_past_lease(pool, ann_id)
    await cal.expect("handover", state="completed", timeout=5)
    left = await caller.expect("party_left", party=f"interpreter:{ann_id}")
    assert left["reason"] == "handed_over"
    row = await pool.fetchrow(
        "SELECT state, interpreter_id FROM calls WHERE id = $1::uuid", call_id
    )
    assert (row["state"], row["interpreter_id"]) == ("answered", cal_id)


async def test_a_hearing_party_follows_the_handover(
    client: TestClient[Any, Any],
    pool: asyncpg.Pool,
    open_caller: Opener,
    open_console: ConsoleOpener,
) -> None:
    ann, bea, caller, call_id, ann_id, bea_id = await call_with_colleague_free(
        client, pool, open_caller, open_console
    )
    await ann.send(type="invite_guest", call_id=call_id)
    token = (await ann.expect("guest_invitation"))["url"].rsplit("/", 1)[1]
    guest = Peer(await client.ws_connect("/ws/guest"))
    await guest.send(type="join", token=token, name="Sam Patel")
    connected = await guest.expect("connected")
    me, resume_token = connected["party"], connected["token"]

    await ann.send(type="request_handover", call_id=call_id)
    await bea.expect("offer", call_id=call_id)
    await bea.send(type="accept", call_id=call_id)
    parties = (await bea.expect("connected", handover=True))["parties"]
    assert [p["party"] for p in parties] == ["caller", f"interpreter:{ann_id}", me]
    bea_party = f"interpreter:{bea_id}"
    joined = await guest.expect("party_joined", party=bea_party)
    assert joined["handover"] is True and joined["name"] == "Bea"
    # The newcomer's offer reaches the guest, and the guest's answer comes back.
    sdp = {"type": "offer", "sdp": "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n"}
    await bea.send(type="sdp", call_id=call_id, to=me, description=sdp)
    assert (await guest.expect("sdp", **{"from": bea_party}))["description"] == sdp
    await guest.send(
        type="sdp", call_id=call_id, to=bea_party, description={**sdp, "type": "answer"}
    )
    assert (await bea.expect("sdp", **{"from": me}))["description"]["type"] == "answer"

    # The incoming interpreter hears of the guest's comings and goings too.
    await guest.close()
    assert (await bea.expect("party_left", party=me))["reason"] == "disconnected"
    guest = Peer(await client.ws_connect("/ws/guest"))
    await guest.send(type="resume", token=resume_token)
    await guest.expect("connected", resumed=True)
    await bea.expect("party_joined", party=me)

    await ann.send(type="complete_handover", call_id=call_id)
    left = await guest.expect("party_left", party=f"interpreter:{ann_id}")
    assert left["reason"] == "handed_over"
    # Bea, now the call's interpreter, can remove the guest.
    await bea.send(type="remove_guest", call_id=call_id, party=me)
    assert (await guest.expect("ended"))["reason"] == "removed"
    await caller.expect("party_left", party=me)


async def handover_requested(pool: asyncpg.Pool, config: Config) -> tuple[Any, int, int]:
    """A call Ann answered and asked to hand over, and Bea free, with no
    round run since she became free: (the joined call, Ann, Bea)."""
    from signvideo import handover, routing
    from tests.integration.conftest import add_interpreter

    ann = await add_interpreter(pool, "ann@example.org", "Ann")
    bea = await add_interpreter(pool, "bea@example.org", "Bea")
    joined = await routing.join_queue(pool, "demo")
    await routing.set_state(pool, ann, "available")
    assert await routing.match_waiting(pool, config) == 1
    await routing.accept(pool, ann, "Ann", joined.call_id, [])
    await handover.request(pool, ann, joined.call_id)
    await routing.set_state(pool, bea, "available")
    return joined, ann, bea


async def test_handover_steps_lock_the_call_before_the_handover(
    pool: asyncpg.Pool, seeded: None
) -> None:
    """Ending a call locks the call, then its handover (close_with_call). A
    decline that locked the handover first and then needed the call (for its
    event) deadlocked with it; now it waits for the call, holding nothing."""
    from signvideo import handover

    config = Config(wrap_up=0)
    joined, _ann, bea = await handover_requested(pool, config)
    assert await handover.match(pool, config) == 1

    holder = await pool.acquire()
    try:
        ending = holder.transaction()
        await ending.start()
        await holder.execute("SELECT 1 FROM calls WHERE id = $1 FOR UPDATE", joined.call_id)
        declining = asyncio.create_task(handover.decline(pool, bea, joined.call_id))
        for _ in range(200):
            if await pool.fetchval(
                "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
            ):
                break
            await asyncio.sleep(0.01)
        # The end's next step: the handover is not held by the waiting decline.
        await holder.execute(
            "SELECT 1 FROM call_handovers WHERE call_id = $1 FOR UPDATE NOWAIT", joined.call_id
        )
        await ending.rollback()
    finally:
        await pool.release(holder)
    assert await asyncio.wait_for(declining, 10) is True


async def test_a_waiting_handover_comes_before_a_joining_caller(
    pool: asyncpg.Pool, seeded: None
) -> None:
    """A caller joining while a handover waits does not take the free
    interpreter from it: the join leaves matching to the matcher, which
    offers handovers first."""
    from signvideo import handover, routing

    config = Config(wrap_up=0)
    first, _ann, bea = await handover_requested(pool, config)  # no round since

    joined = await routing.join_queue(pool, "demo", match=config)
    assert (joined.offered, joined.matched.again) == (False, True)
    assert await handover.match(pool, config) == 1
    status = await routing.interpreter_state(pool, bea)
    assert (status["state"], status["call_id"]) == ("offered", first.call_id)
