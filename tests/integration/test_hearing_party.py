"""A hearing party brought into a call: the one-time link, a three-party call
with real aiortc media between every pair, removal, leaving, dropped
connections and bad input."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg
from aiohttp.test_utils import TestClient
from aiortc import AudioStreamTrack, RTCPeerConnection, RTCSessionDescription, VideoStreamTrack
from aiortc.mediastreams import MediaStreamTrack

from tests.integration.conftest import INTERPRETER_PASSWORD, Peer, add_interpreter, sign_in
from tests.integration.media import answered_call, frames_from, negotiate

Opener = Callable[[], Awaitable[Peer]]
ConsoleOpener = Callable[[str], Awaitable[Peer]]


def tracks(pc: RTCPeerConnection) -> dict[str, asyncio.Future[MediaStreamTrack]]:
    """The remote video and audio tracks of a peer connection, as they arrive."""
    loop = asyncio.get_running_loop()
    found: dict[str, asyncio.Future[MediaStreamTrack]] = {
        "video": loop.create_future(),
        "audio": loop.create_future(),
    }

    @pc.on("track")
    def on_track(track: MediaStreamTrack) -> None:
        if not found[track.kind].done():
            found[track.kind].set_result(track)

    return found


async def decodes(found: dict[str, asyncio.Future[MediaStreamTrack]], kinds: str) -> None:
    """Frames of each kind in ``kinds`` ("video", "audio" or both) are decoded."""
    if "video" in kinds:
        sizes = await frames_from(await asyncio.wait_for(found["video"], 10), 5)
        assert all(w >= 320 and h >= 240 for w, h in sizes), sizes
    if "audio" in kinds:
        track = await asyncio.wait_for(found["audio"], 10)
        for _ in range(5):
            frame = await asyncio.wait_for(track.recv(), 10)
            assert frame.sample_rate > 0 and frame.samples > 0


async def invitation(console: Peer, call_id: str) -> str:
    """The token of a new invitation link made from the console."""
    await console.send(type="invite_guest", call_id=call_id)
    made = await console.expect("guest_invitation", call_id=call_id)
    assert "/guest/" in made["url"] and made["expires_in"] == 900
    return str(made["url"].rsplit("/", 1)[1])


async def open_guest(client: TestClient[Any, Any]) -> Peer:
    return Peer(await client.ws_connect("/ws/guest"))


async def guest_joins(client: TestClient[Any, Any], token: str) -> tuple[Peer, dict[str, Any]]:
    guest = await open_guest(client)
    await guest.send(type="join", token=token, name="  Sam   Patel, housing officer ")
    return guest, await guest.expect("connected", role="guest")


async def answer_offer(peer: Peer, call_id: str, sender: str) -> tuple[RTCPeerConnection, Any]:
    """`peer` answers the offer `sender` makes it, sending video and audio back."""
    relayed = await peer.expect("sdp", **{"from": sender})
    assert relayed["description"]["type"] == "offer"
    pc = RTCPeerConnection()
    found = tracks(pc)
    pc.addTrack(VideoStreamTrack())
    pc.addTrack(AudioStreamTrack())
    await pc.setRemoteDescription(RTCSessionDescription(**relayed["description"]))
    await pc.setLocalDescription(await pc.createAnswer())
    answer = pc.localDescription
    await peer.send(
        type="sdp",
        call_id=call_id,
        to=sender,
        description={"type": answer.type, "sdp": answer.sdp},
    )
    return pc, found


async def test_three_party_call_every_party_decodes_the_others_and_removal(
    loopback_ice: None,
    client: TestClient[Any, Any],
    pool: asyncpg.Pool,
    open_caller: Opener,
    open_console: ConsoleOpener,
) -> None:
    console, caller, call_id, at_console, _ = await answered_call(
        client, pool, open_caller, open_console
    )
    interpreter = at_console["party"]
    assert interpreter.startswith("interpreter:")
    assert at_console["parties"] == [{"party": "caller", "role": "caller", "name": None}]
    media = await negotiate(console, caller, call_id)
    pcs: list[RTCPeerConnection] = [media.caller_pc, media.interpreter_pc]
    try:
        token = await invitation(console, call_id)
        page = await client.get(f"/guest/{token}")
        assert page.status == 200
        assert "Demo Borough Council" in await page.text()

        guest, connected = await guest_joins(client, token)
        me = connected["party"]
        assert me.startswith("guest:") and connected["token"]
        assert connected["parties"] == [
            {"party": "caller", "role": "caller", "name": None},
            {"party": interpreter, "role": "interpreter", "name": "Interpreter"},
        ]
        for other in (caller, console):
            joined = await other.expect("party_joined", party=me)
            assert joined["role"] == "guest" and joined["name"] == "Sam Patel, housing officer"

        # The newcomer offers to each party: audio, and video too here.
        guest_pcs: dict[str, RTCPeerConnection] = {}
        at_guest: dict[str, dict[str, asyncio.Future[MediaStreamTrack]]] = {}
        for party in ("caller", interpreter):
            pc = RTCPeerConnection()
            pcs.append(pc)
            at_guest[party] = tracks(pc)
            pc.addTrack(VideoStreamTrack())
            pc.addTrack(AudioStreamTrack())
            await pc.setLocalDescription(await pc.createOffer())
            await guest.send(
                type="sdp",
                call_id=call_id,
                to=party,
                description={"type": "offer", "sdp": pc.localDescription.sdp},
            )
            guest_pcs[party] = pc
        caller_pc, at_caller = await answer_offer(caller, call_id, me)
        console_pc, at_console_from_guest = await answer_offer(console, call_id, me)
        pcs += [caller_pc, console_pc]
        for party in ("caller", interpreter):
            answer = await guest.expect("sdp", **{"from": party})
            assert answer["description"]["type"] == "answer"
            await guest_pcs[party].setRemoteDescription(
                RTCSessionDescription(**answer["description"])
            )

        # Every party decodes every other's media.
        await media.expect_video_both_ways(5)
        await decodes(at_caller, "video audio")
        await decodes(at_console_from_guest, "video audio")
        await decodes(at_guest["caller"], "video")
        await decodes(at_guest[interpreter], "video audio")

        # The interpreter removes the hearing party.
        await console.send(type="remove_guest", call_id=call_id, party=me)
        assert (await guest.expect("ended"))["reason"] == "removed"
        for other in (caller, console):
            assert (await other.expect("party_left", party=me))["reason"] == "removed"
        await guest.send(
            type="ice", call_id=call_id, to="caller", candidate=None, id="after-removal"
        )
        refused = await guest.expect("error")
        assert refused["code"] == "out_of_turn" and refused["in_reply_to"] == "after-removal"
        await caller.send(type="ice", call_id=call_id, to=me, candidate=None)
        assert (await caller.expect("error"))["code"] == "out_of_turn"

        # The link is dead once used.
        again = await open_guest(client)
        await again.send(type="join", token=token, name="Someone else")
        used = await again.expect("error")
        assert used["code"] == "out_of_turn" and "can no longer be used" in used["message"]
        assert (await client.get(f"/guest/{token}")).status == 410

        # The call carries on between the caller and the interpreter.
        await console.send(type="hangup", call_id=call_id)
        assert (await caller.expect("ended"))["reason"] == "interpreter_hung_up"
        kinds = await pool.fetch(
            "SELECT kind, detail FROM call_events WHERE call_id = $1::uuid ORDER BY id", call_id
        )
        assert [k["kind"] for k in kinds if k["kind"].startswith("guest")] == [
            "guest_invited",
            "guest_joined",
            "guest_left",
        ]
    finally:
        for pc in pcs:
            await pc.close()


async def test_links_expire_are_replaced_and_bad_input_is_refused(
    client: TestClient[Any, Any],
    pool: asyncpg.Pool,
    open_caller: Opener,
    open_console: ConsoleOpener,
) -> None:
    console, caller, call_id, _, _ = await answered_call(client, pool, open_caller, open_console)
    assert (await client.get("/guest/not-a-known-link-at-all")).status == 404

    old = await invitation(console, call_id)
    newer = await invitation(console, call_id)
    # A newer link kills the older, unused one.
    guest = await open_guest(client)
    await guest.send(type="join", token=old, name="Sam")
    assert "can no longer be used" in (await guest.expect("error"))["message"]
    assert (await client.get(f"/guest/{old}")).status == 410

    # A link past its time is dead.
    await pool.execute("UPDATE call_guests SET expires_at = now() - interval '1 second'")
    assert (await client.get(f"/guest/{newer}")).status == 410
    await guest.send(type="join", token=newer, name="Sam")
    assert "expired" in (await guest.expect("error"))["message"]

    fresh = await invitation(console, call_id)
    cases: list[tuple[dict[str, Any], str, str]] = [
        ({"type": "join", "token": fresh}, "invalid_field", '"name"'),
        ({"type": "join", "token": fresh, "name": "x" * 81}, "invalid_field", "80"),
        ({"type": "join", "name": "Sam"}, "invalid_field", '"token"'),
        ({"type": "join", "token": "x" * 20, "name": "Sam"}, "not_found", "not known"),
        ({"type": "sdp", "call_id": call_id, "to": "caller"}, "out_of_turn", "not joined"),
        ({"type": "resume", "token": "x" * 20}, "not_found", "no longer in the call"),
        ({"type": "invite_guest", "call_id": call_id}, "unknown_type", "invite_guest"),
    ]
    for message, code, words in cases:
        await guest.send(**message)
        refused = await guest.expect("error")
        assert refused["code"] == code and words in refused["message"], (message, refused)

    await guest.send(type="join", token=fresh, name="Sam Patel")
    connected = await guest.expect("connected")
    me = connected["party"]
    for message, code, words in [
        (
            {"type": "sdp", "call_id": call_id, "description": {"type": "offer", "sdp": "v=0"}},
            "invalid_field",
            '"to"',
        ),
        (
            {"type": "ice", "call_id": call_id, "to": "everyone", "candidate": None},
            "invalid_field",
            '"to"',
        ),
        (
            {"type": "ice", "call_id": call_id, "to": "guest:999999", "candidate": None},
            "out_of_turn",
            "not in your call",
        ),
        ({"type": "join", "token": fresh, "name": "Sam"}, "out_of_turn", "already joined"),
        (
            {"type": "leave", "call_id": "5d6a4b1e-0000-4000-8000-000000000000"},
            "out_of_turn",
            "not yours",
        ),
    ]:
        await guest.send(**message)
        refused = await guest.expect("error")
        assert refused["code"] == code and words in refused["message"], (message, refused)

    # A second hearing party waits until the first has gone.
    await console.send(type="invite_guest", call_id=call_id)
    busy = await console.expect("error")
    assert busy["code"] == "out_of_turn" and "already in this call" in busy["message"]
    for message, code in [
        ({"type": "remove_guest", "call_id": call_id, "party": "caller"}, "invalid_field"),
        ({"type": "remove_guest", "call_id": call_id, "party": "guest:999999"}, "out_of_turn"),
        (
            {"type": "invite_guest", "call_id": "5d6a4b1e-0000-4000-8000-000000000000"},
            "out_of_turn",
        ),
    ]:
        await console.send(**message)
        assert (await console.expect("error"))["code"] == code, message

    # The guest leaves by themselves; the others are told.
    await guest.send(type="leave", call_id=call_id)
    assert (await guest.expect("ended"))["reason"] == "guest_left"
    for other in (caller, console):
        assert (await other.expect("party_left", party=me))["reason"] == "left"


async def test_the_guest_comes_back_after_a_drop_and_goes_when_the_call_ends(
    client: TestClient[Any, Any],
    pool: asyncpg.Pool,
    open_caller: Opener,
    open_console: ConsoleOpener,
) -> None:
    await add_interpreter(pool, "ann@example.org")
    console = await open_console(await sign_in(client, "ann@example.org", INTERPRETER_PASSWORD))
    caller = await open_caller()
    await caller.send(type="join", authority="demo")
    queued = await caller.expect("queued")
    call_id, caller_token = queued["call_id"], queued["token"]
    await console.send(type="set_availability", available=True)
    await console.expect("offer", call_id=call_id)
    await console.send(type="accept", call_id=call_id)
    await caller.expect("connected")
    guest, connected = await guest_joins(client, await invitation(console, call_id))
    me, token = connected["party"], connected["token"]
    for other in (caller, console):
        await other.expect("party_joined", party=me)

    await guest.close()
    for other in (caller, console):
        assert (await other.expect("party_left", party=me))["reason"] == "disconnected"
    # While away, nothing is passed to them.
    await caller.send(type="ice", call_id=call_id, to=me, candidate=None)
    assert (await caller.expect("error"))["code"] == "out_of_turn"

    back = await open_guest(client)
    await back.send(type="resume", token=token)
    resumed = await back.expect("connected", resumed=True)
    assert resumed["party"] == me and "token" not in resumed
    for other in (caller, console):
        await other.expect("party_joined", party=me)

    # When the caller comes back, the others are asked to make them new offers,
    # and the caller is told who is in the call.
    await caller.close()
    caller = await open_caller()
    await caller.send(type="resume", token=caller_token)
    parties = (await caller.expect("connected", resumed=True))["parties"]
    assert [p["role"] for p in parties] == ["interpreter", "guest"]
    assert parties[1] == {"party": me, "role": "guest", "name": "Sam Patel, housing officer"}
    for other in (back, console):
        await other.expect("peer_resumed", party="caller")
    await console.send(type="invite_guest", call_id=call_id)
    assert (await console.expect("error"))["code"] == "out_of_turn"

    # The call ends: the guest is told, cannot come back, and an unused link dies.
    await pool.execute(
        "INSERT INTO call_guests (call_id, invited_by, expires_at, invitation_sha256)"
        " SELECT $1::uuid, invited_by, now() + interval '1 hour', '\\x01'::bytea"
        " FROM call_guests LIMIT 1",
        call_id,
    )
    await console.send(type="hangup", call_id=call_id)
    assert (await back.expect("ended"))["reason"] == "interpreter_hung_up"
    left = await pool.fetchrow(
        "SELECT left_at, left_reason FROM call_guests WHERE joined_at IS NOT NULL"
    )
    assert left["left_reason"] == "call_ended"
    assert await pool.fetchval(
        "SELECT revoked_at IS NOT NULL FROM call_guests WHERE invitation_sha256 = '\\x01'"
    )
    late = await open_guest(client)
    await late.send(type="resume", token=token)
    assert (await late.expect("error"))["code"] == "not_found"


async def test_a_guest_away_past_the_grace_period_leaves_the_call(
    client: TestClient[Any, Any],
    pool: asyncpg.Pool,
    open_caller: Opener,
    open_console: ConsoleOpener,
) -> None:
    console, caller, call_id, _, _ = await answered_call(client, pool, open_caller, open_console)
    guest, connected = await guest_joins(client, await invitation(console, call_id))
    await guest.close()
    await caller.expect("party_left", party=connected["party"])
    await pool.execute("UPDATE call_guests SET gone_at = now() - interval '2 minutes'")
    # The sweep (every process runs it each second) lets them go.
    for _ in range(100):
        if await pool.fetchval("SELECT left_reason FROM call_guests WHERE joined_at IS NOT NULL"):
            break
        await asyncio.sleep(0.1)
    assert (
        await pool.fetchval("SELECT left_reason FROM call_guests WHERE joined_at IS NOT NULL")
        == "disconnected"
    )
    # In the call's event log, as every other way a hearing person leaves.
    assert (
        await pool.fetchval(
            "SELECT detail->>'reason' FROM call_events WHERE call_id = $1::uuid "
            "AND kind = 'guest_left'",
            call_id,
        )
        == "disconnected"
    )
    back = await open_guest(client)
    await back.send(type="resume", token=connected["token"])
    assert (await back.expect("error"))["code"] == "not_found"
    # A new hearing party may now be invited.
    await invitation(console, call_id)
