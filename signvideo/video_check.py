"""The pre-call check: a short test call from the caller's page to an aiortc
peer in this process, which measures the video it receives (frames a
second, resolution) and the round trip on a data channel, and says how that
compares with what signing needs (DOMAIN.md): at least 20 frames a second
and 320x240; 30 and 640x480 recommended.

The page sends its SDP offer with all its candidates (no trickle) to
`POST /api/v1/video-check`; the answer comes back the same way. The results
arrive on the data channel as one JSON message, and the peer closes itself
after `CHECK_SECONDS` (or `GIVE_UP_SECONDS` if no video comes). Checks are
limited per address and in number at once, since each decodes video.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import statistics
import time
import uuid
from dataclasses import asdict, dataclass
from typing import Any

from aiohttp import web
from aiortc import (
    RTCConfiguration,
    RTCDataChannel,
    RTCIceServer,
    RTCPeerConnection,
    RTCSessionDescription,
)
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from aiortc.rtcconfiguration import RTCIceTransportPolicy
from av import VideoFrame

from signvideo import csrf, limits, turn
from signvideo.keys import CONFIG, VIDEO_CHECKS

log = logging.getLogger(__name__)

CHECK_SECONDS = 4.0
GIVE_UP_SECONDS = 15.0
MAX_AT_ONCE = 8
PER_ADDRESS_PER_MINUTE = 6
MAX_SDP_CHARS = 20_000

# What signing needs (docs and DOMAIN.md).
FLOOR_FPS, FLOOR_SIZE = 20.0, (320, 240)
GOOD_FPS, GOOD_SIZE = 27.0, (640, 480)


@dataclass(frozen=True)
class Result:
    frames_per_second: float
    width: int
    height: int
    round_trip_ms: float | None
    verdict: str  # "good", "enough" or "too_low"

    def as_json(self) -> dict[str, Any]:
        return {"type": "result", **asdict(self)}


def verdict(fps: float, width: int, height: int) -> str:
    small, large = min(width, height), max(width, height)
    if fps < FLOOR_FPS or large < FLOOR_SIZE[0] or small < FLOOR_SIZE[1]:
        return "too_low"
    if fps >= GOOD_FPS and large >= GOOD_SIZE[0] and small >= GOOD_SIZE[1]:
        return "good"
    return "enough"


class Checks:
    """The checks running in this process, with their limits."""

    def __init__(self) -> None:
        self.running: dict[str, asyncio.Task[None]] = {}
        self.per_address = limits.Buckets(PER_ADDRESS_PER_MINUTE)

    async def close(self) -> None:
        for task in list(self.running.values()):
            task.cancel()
        for task in list(self.running.values()):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task


async def _frame(track: MediaStreamTrack, timeout: float | None = None) -> VideoFrame:
    frame = await asyncio.wait_for(track.recv(), timeout)
    if not isinstance(frame, VideoFrame):
        raise MediaStreamError("not a video frame")
    return frame


async def _measure(track: MediaStreamTrack) -> tuple[float, int, int]:
    """Frames a second and the smallest picture received over CHECK_SECONDS,
    from the first frame on."""
    first = await _frame(track)
    started = time.monotonic()
    frames, width, height = 1, first.width, first.height
    while (elapsed := time.monotonic() - started) < CHECK_SECONDS:
        try:
            frame = await _frame(track, CHECK_SECONDS - elapsed + 0.5)
        except (TimeoutError, MediaStreamError):
            break
        frames += 1
        width, height = min(width, frame.width), min(height, frame.height)
    seconds = max(time.monotonic() - started, 1e-3)
    return (frames - 1) / seconds if frames > 1 else 0.0, width, height


async def _run(pc: RTCPeerConnection, video: asyncio.Future[MediaStreamTrack],
               channel: asyncio.Future[RTCDataChannel]) -> None:  # fmt: skip
    round_trips: list[float] = []
    pings: dict[int, float] = {}
    try:
        async with asyncio.timeout(GIVE_UP_SECONDS):
            track = await video
            dc = await channel

            @dc.on("message")
            def on_message(message: Any) -> None:
                try:
                    data = json.loads(message) if isinstance(message, str) else None
                except ValueError:
                    return
                if isinstance(data, dict) and data.get("type") == "pong":
                    sent = pings.pop(data.get("id"), None)  # type: ignore[arg-type]
                    if sent is not None:
                        round_trips.append((time.monotonic() - sent) * 1000)

            async def ping() -> None:
                for n in range(1000):
                    if dc.readyState == "open":
                        pings[n] = time.monotonic()
                        dc.send(json.dumps({"type": "ping", "id": n}))
                    await asyncio.sleep(0.25)

            pinger = asyncio.create_task(ping())
            try:
                fps, width, height = await _measure(track)
            finally:
                pinger.cancel()
            rtt = statistics.median(round_trips) if round_trips else None
            result = Result(
                round(fps, 1),
                width,
                height,
                None if rtt is None else round(rtt, 1),
                verdict(fps, width, height),
            )
            log.info("video check: %s", result)
            if dc.readyState == "open":
                dc.send(json.dumps(result.as_json()))
                await asyncio.sleep(0.5)  # let it go before closing
    except TimeoutError:
        log.info("video check gave up: no video within %s s", GIVE_UP_SECONDS)
    finally:
        await pc.close()


def _configuration(config: Any, check_id: str) -> RTCConfiguration:
    servers = [
        RTCIceServer(urls=s["urls"], username=s.get("username"), credential=s.get("credential"))
        for s in turn.ice_servers_for_call(config, f"check-{check_id}")
    ]
    policy = RTCIceTransportPolicy(config.ice_transport_policy)
    return RTCConfiguration(iceServers=servers or None, iceTransportPolicy=policy)


async def start(request: web.Request) -> web.Response:
    """POST /api/v1/video-check {"type": "offer", "sdp": ...} -> the answer."""
    if not csrf.same_origin(request):
        raise web.HTTPForbidden(text="The video check can only be started from this site's pages.")
    checks: Checks = request.app[VIDEO_CHECKS]
    wait = checks.per_address.take(limits.client_network(request.remote))
    if wait:
        raise web.HTTPTooManyRequests(
            text=f"Too many video checks from your connection just now; try again in "
            f"{int(wait) + 1} seconds, or join without one.",
            headers={"Retry-After": str(int(wait) + 1)},
        )
    if len(checks.running) >= MAX_AT_ONCE:
        raise web.HTTPServiceUnavailable(
            text="Many people are checking their video just now; try again in a minute, "
            "or join without a check.",
            headers={"Retry-After": "30"},
        )
    try:
        body = await request.json()
    except ValueError:
        raise web.HTTPBadRequest(
            text='Send the offer as JSON: {"type": "offer", "sdp": ...}.'
        ) from None
    if not isinstance(body, dict) or body.get("type") != "offer":
        raise web.HTTPBadRequest(text='"type" must be "offer".')
    sdp = body.get("sdp")
    if not isinstance(sdp, str) or not sdp.startswith("v=0") or len(sdp) > MAX_SDP_CHARS:
        raise web.HTTPBadRequest(
            text=f'"sdp" must be an SDP offer (starting "v=0"), at most {MAX_SDP_CHARS} characters.'
        )
    check_id = uuid.uuid4().hex
    pc = RTCPeerConnection(_configuration(request.app[CONFIG], check_id))
    loop = asyncio.get_running_loop()
    video: asyncio.Future[MediaStreamTrack] = loop.create_future()
    channel: asyncio.Future[RTCDataChannel] = loop.create_future()

    @pc.on("track")
    def on_track(track: MediaStreamTrack) -> None:
        if track.kind == "video" and not video.done():
            video.set_result(track)

    @pc.on("datachannel")
    def on_datachannel(dc: RTCDataChannel) -> None:
        if not channel.done():
            channel.set_result(dc)

    try:
        await pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="offer"))
        if not any(t.kind == "video" for t in pc.getTransceivers()):
            raise web.HTTPBadRequest(text="The offer must send video: the check measures it.")
        await pc.setLocalDescription(await pc.createAnswer())
    except web.HTTPException:
        await pc.close()
        raise
    except Exception as err:  # aiortc's SDP parsing fails in many ways on bad input
        await pc.close()
        raise web.HTTPBadRequest(
            text=f"The SDP offer could not be used: {type(err).__name__}: {str(err)[:200]}"
        ) from None
    task = asyncio.create_task(_run(pc, video, channel), name=f"video-check-{check_id}")
    checks.running[check_id] = task
    task.add_done_callback(lambda _: checks.running.pop(check_id, None))
    return web.json_response(
        {"type": "answer", "sdp": pc.localDescription.sdp, "seconds": CHECK_SECONDS}
    )
