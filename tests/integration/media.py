"""Real WebRTC media between aiortc peers, negotiated through signvideo's signalling."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import asyncpg
from aiohttp.test_utils import TestClient
from aiortc import (
    RTCConfiguration,
    RTCIceServer,
    RTCPeerConnection,
    RTCSessionDescription,
    VideoStreamTrack,
)
from aiortc.mediastreams import MediaStreamTrack
from aiortc.rtcconfiguration import RTCIceTransportPolicy

from tests.integration.conftest import INTERPRETER_PASSWORD, Peer, add_interpreter, sign_in


def remote_track(pc: RTCPeerConnection) -> asyncio.Future[MediaStreamTrack]:
    future: asyncio.Future[MediaStreamTrack] = asyncio.get_running_loop().create_future()

    @pc.on("track")
    def on_track(track: MediaStreamTrack) -> None:
        if track.kind == "video" and not future.done():
            future.set_result(track)

    return future


async def frames_from(track: MediaStreamTrack, count: int) -> list[tuple[int, int]]:
    sizes = []
    for _ in range(count):
        frame = await asyncio.wait_for(track.recv(), 10)
        sizes.append((frame.width, frame.height))
    return sizes


@dataclass
class Media:
    """Both ends of one call's peer connections."""

    interpreter_pc: RTCPeerConnection
    caller_pc: RTCPeerConnection
    at_interpreter: asyncio.Future[MediaStreamTrack]
    at_caller: asyncio.Future[MediaStreamTrack]

    async def expect_video_both_ways(self, frames: int = 10) -> None:
        """Each side decodes `frames` frames of at least 320x240 from the other."""
        caller_sees = await frames_from(await asyncio.wait_for(self.at_caller, 10), frames)
        interpreter_sees = await frames_from(
            await asyncio.wait_for(self.at_interpreter, 10), frames
        )
        assert all(w >= 320 and h >= 240 for w, h in caller_sees), caller_sees
        assert all(w >= 320 and h >= 240 for w, h in interpreter_sees), interpreter_sees
        assert self.caller_pc.connectionState == "connected"
        assert self.interpreter_pc.connectionState == "connected"

    async def close(self) -> None:
        await self.caller_pc.close()
        await self.interpreter_pc.close()


def configuration(connected: dict[str, Any]) -> RTCConfiguration:
    """The peer connection a `connected` message asks for: its ICE servers
    (with the call's TURN credentials) and transport policy."""
    return RTCConfiguration(
        iceServers=[
            RTCIceServer(
                urls=server["urls"],
                username=server.get("username"),
                credential=server.get("credential"),
            )
            for server in connected["ice_servers"]
        ],
        iceTransportPolicy=RTCIceTransportPolicy(connected["ice_transport_policy"]),
    )


async def negotiate(
    console: Peer,
    caller: Peer,
    call_id: str,
    interpreter_config: RTCConfiguration | None = None,
    caller_config: RTCConfiguration | None = None,
) -> Media:
    """New peer connections for a connected call: the interpreter makes the SDP
    offer, as the protocol says, and the caller answers; each SDP goes through
    the server (or servers) the two are connected to."""
    interpreter_pc = RTCPeerConnection(interpreter_config)
    caller_pc = RTCPeerConnection(caller_config)
    interpreter_pc.addTrack(VideoStreamTrack())
    caller_pc.addTrack(VideoStreamTrack())
    media = Media(interpreter_pc, caller_pc, remote_track(interpreter_pc), remote_track(caller_pc))
    try:
        await interpreter_pc.setLocalDescription(await interpreter_pc.createOffer())
        offer = interpreter_pc.localDescription
        await console.send(
            type="sdp", call_id=call_id, description={"type": offer.type, "sdp": offer.sdp}
        )

        relayed = await caller.expect("sdp")
        assert relayed["description"]["type"] == "offer"
        await caller_pc.setRemoteDescription(RTCSessionDescription(**relayed["description"]))
        await caller_pc.setLocalDescription(await caller_pc.createAnswer())
        answer = caller_pc.localDescription
        await caller.send(
            type="sdp", call_id=call_id, description={"type": answer.type, "sdp": answer.sdp}
        )

        relayed = await console.expect("sdp")
        assert relayed["description"]["type"] == "answer"
        await interpreter_pc.setRemoteDescription(RTCSessionDescription(**relayed["description"]))
    except BaseException:
        await media.close()
        raise
    return media


async def answered_call(
    client: TestClient[Any, Any],
    pool: asyncpg.Pool,
    open_caller: Callable[[], Awaitable[Peer]],
    open_console: Callable[[str], Awaitable[Peer]],
) -> tuple[Peer, Peer, str, dict[str, Any], dict[str, Any]]:
    """An interpreter's console and a caller, the call offered and accepted:
    (console, caller, call id, the console's and the caller's `connected`)."""
    await add_interpreter(pool, "ann@example.org")
    console = await open_console(await sign_in(client, "ann@example.org", INTERPRETER_PASSWORD))
    caller = await open_caller()
    await caller.send(type="join", authority="demo")
    call_id: str = (await caller.expect("queued"))["call_id"]
    await console.send(type="set_availability", available=True)
    offer = await console.expect("offer")
    assert offer["call_id"] == call_id
    await console.send(type="accept", call_id=call_id)
    at_console = await console.expect("connected", role="interpreter")
    at_caller = await caller.expect("connected", role="caller")
    return console, caller, call_id, at_console, at_caller
