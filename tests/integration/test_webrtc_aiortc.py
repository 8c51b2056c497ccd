"""Real WebRTC media between two aiortc peers, signalled through our WebSocket endpoints."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg
import pytest
from aiohttp.test_utils import TestClient
from aiortc import RTCPeerConnection, RTCSessionDescription, VideoStreamTrack
from aiortc.mediastreams import MediaStreamTrack

from tests.integration.conftest import INTERPRETER_PASSWORD, Peer, add_interpreter, sign_in

pytestmark = pytest.mark.webrtc


@pytest.fixture
def loopback_ice(monkeypatch: pytest.MonkeyPatch) -> None:
    """aioice skips 127.0.0.1; this host has no other interface (see PLATFORM.md)."""
    import aioice.ice

    monkeypatch.setattr(aioice.ice, "get_host_addresses", lambda use_ipv4, use_ipv6: ["127.0.0.1"])


async def frames_from(track: MediaStreamTrack, count: int) -> list[tuple[int, int]]:
    sizes = []
    for _ in range(count):
        frame = await asyncio.wait_for(track.recv(), 10)
        sizes.append((frame.width, frame.height))
    return sizes


def remote_track(pc: RTCPeerConnection) -> asyncio.Future[MediaStreamTrack]:
    future: asyncio.Future[MediaStreamTrack] = asyncio.get_running_loop().create_future()

    @pc.on("track")
    def on_track(track: MediaStreamTrack) -> None:
        if track.kind == "video" and not future.done():
            future.set_result(track)

    return future


async def test_caller_and_interpreter_exchange_video(
    loopback_ice: None,
    client: TestClient[Any, Any],
    pool: asyncpg.Pool,
    open_caller: Callable[[], Awaitable[Peer]],
    open_console: Callable[[str], Awaitable[Peer]],
) -> None:
    await add_interpreter(pool, "ann@example.org")
    console = await open_console(await sign_in(client, "ann@example.org", INTERPRETER_PASSWORD))
    caller = await open_caller()
    await caller.send(type="join", authority="demo")
    call_id = (await caller.expect("queued"))["call_id"]
    await console.send(type="set_availability", available=True)
    offer = await console.expect("offer")
    assert offer["call_id"] == call_id
    await console.send(type="accept", call_id=call_id)
    await console.expect("connected", role="interpreter")
    await caller.expect("connected", role="caller")

    interpreter_pc, caller_pc = RTCPeerConnection(), RTCPeerConnection()
    try:
        # The interpreter makes the SDP offer, as the protocol says.
        interpreter_pc.addTrack(VideoStreamTrack())
        at_interpreter = remote_track(interpreter_pc)
        await interpreter_pc.setLocalDescription(await interpreter_pc.createOffer())
        local = interpreter_pc.localDescription
        await console.send(
            type="sdp", call_id=call_id, description={"type": local.type, "sdp": local.sdp}
        )

        relayed = await caller.expect("sdp")
        caller_pc.addTrack(VideoStreamTrack())
        at_caller = remote_track(caller_pc)
        await caller_pc.setRemoteDescription(RTCSessionDescription(**relayed["description"]))
        await caller_pc.setLocalDescription(await caller_pc.createAnswer())
        answer = caller_pc.localDescription
        await caller.send(
            type="sdp", call_id=call_id, description={"type": answer.type, "sdp": answer.sdp}
        )

        relayed = await console.expect("sdp")
        assert relayed["description"]["type"] == "answer"
        await interpreter_pc.setRemoteDescription(RTCSessionDescription(**relayed["description"]))

        caller_sees = await frames_from(await asyncio.wait_for(at_caller, 10), 10)
        interpreter_sees = await frames_from(await asyncio.wait_for(at_interpreter, 10), 10)
        assert all(w >= 320 and h >= 240 for w, h in caller_sees), caller_sees
        assert all(w >= 320 and h >= 240 for w, h in interpreter_sees), interpreter_sees
        assert caller_pc.connectionState == "connected"
        assert interpreter_pc.connectionState == "connected"
    finally:
        await caller_pc.close()
        await interpreter_pc.close()

    await console.send(type="hangup", call_id=call_id)
    assert (await caller.expect("ended"))["reason"] == "interpreter_hung_up"
    assert (
        await pool.fetchval("SELECT charge_pence FROM charges WHERE call_id = $1::uuid", call_id)
        == 150
    )
