"""Reaching each other through TURN: credentials issued per call by the TURN
REST scheme, and a relay-only call through a real coturn started here."""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import hashlib
import hmac
import re
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg
import pytest
from aiohttp.test_utils import TestClient
from aiortc import RTCPeerConnection, VideoStreamTrack

from signvideo import turn
from signvideo.config import Config
from tests.integration.conftest import Peer
from tests.integration.media import answered_call, configuration, negotiate
from tests.turn_server import Turn

pytestmark = pytest.mark.webrtc


@pytest.fixture
def config(config: Config, coturn: Turn) -> Config:
    """The service with TURN, and every call's media relayed through it."""
    return dataclasses.replace(
        config,
        ice_servers=[{"urls": ["stun:127.0.0.1:3478"]}],
        turn_urls=(coturn.url,),
        turn_secret=coturn.secret,
        ice_transport_policy="relay",
    )


def test_credentials_follow_the_turn_rest_scheme() -> None:
    server = turn.turn_server(("turn:t.example:3478",), "a-secret-for-tests", 600, "call-7", 1000)
    assert server["username"] == "1600:call-7"
    expected = base64.b64encode(
        hmac.new(b"a-secret-for-tests", b"1600:call-7", hashlib.sha1).digest()
    ).decode()
    # And as coturn's documentation writes it: openssl's HMAC-SHA1 of the same.
    assert server["credential"] == expected == "/y0pKe4PMfYTUHsO5UP2sH5BuW8="
    assert server["urls"] == ["turn:t.example:3478"]


async def test_a_relay_only_call_through_coturn(
    coturn: Turn,
    client: TestClient[Any, Any],
    pool: asyncpg.Pool,
    open_caller: Callable[[], Awaitable[Peer]],
    open_console: Callable[[str], Awaitable[Peer]],
) -> None:
    console, caller, call_id, at_console, at_caller = await answered_call(
        client, pool, open_caller, open_console
    )
    for connected in (at_console, at_caller):
        assert connected["ice_transport_policy"] == "relay"
        stun, relay = connected["ice_servers"]
        assert stun == {"urls": ["stun:127.0.0.1:3478"]}
        assert relay["urls"] == [coturn.url]
        assert relay["username"].endswith(":" + call_id)

    media = await negotiate(
        console, caller, call_id, configuration(at_console), configuration(at_caller)
    )
    try:
        for pc in (media.interpreter_pc, media.caller_pc):
            kinds = re.findall(
                r"a=candidate:\S+ \d+ udp \d+ \S+ \d+ typ (\w+)", pc.localDescription.sdp
            )
            assert kinds and set(kinds) == {"relay"}, pc.localDescription.sdp
        await media.expect_video_both_ways()
    finally:
        await media.close()
    assert call_id in coturn.log()  # the allocation was made with the call's username


async def test_credentials_from_another_secret_get_no_relay(coturn: Turn) -> None:
    server = turn.turn_server((coturn.url,), "not-the-shared-secret", 600, "call-1")
    pc = RTCPeerConnection(
        configuration({"ice_servers": [server], "ice_transport_policy": "relay"})
    )
    try:
        pc.addTrack(VideoStreamTrack())
        await pc.setLocalDescription(await pc.createOffer())
        assert "typ relay" not in pc.localDescription.sdp
        # The first 401 is TURN's usual challenge; this one refuses the credential.
        refused = r"user <\d+:call-1>: incoming packet message processed, error 401"
        # coturn may write the line a moment after gathering gives up.
        for _ in range(50):
            if re.search(refused, coturn.log()):
                break
            await asyncio.sleep(0.1)
        assert re.search(refused, coturn.log()), coturn.log()
    finally:
        await pc.close()


@pytest.mark.parametrize(
    ("body", "headers", "status", "says"),
    [
        ("not json", {}, 400, "Send the offer as JSON"),
        ('{"type": "answer", "sdp": "v=0"}', {}, 400, '"type" must be "offer"'),
        ('{"type": "offer", "sdp": "hello"}', {}, 400, "must be an SDP offer"),
        ('{"type": "offer", "sdp": "v=0\\r\\nnonsense"}', {}, 400, "must send video"),
        ('{"type": "offer", "sdp": "v=0\\r\\nm=video x"}', {}, 400, "could not be used"),
        (
            '{"type": "offer", "sdp": "v=0\\r\\nm=video 9 UDP/TLS/RTP/SAVPF 96\\r\\n"}',
            {},
            400,
            "ICE username fragment",
        ),
        ('{"type": "offer"}', {"Origin": "https://evil.example"}, 403, "this site's pages"),
    ],
)
async def test_bad_video_check_requests_say_what_is_wrong(
    client: TestClient[Any, Any], body: str, headers: dict[str, str], status: int, says: str
) -> None:
    response = await client.post(
        "/api/v1/video-check", data=body, headers={"Content-Type": "application/json", **headers}
    )
    assert response.status == status
    assert says in (await response.json())["error"]


async def test_video_checks_are_limited_per_address(client: TestClient[Any, Any]) -> None:
    statuses = [(await client.post("/api/v1/video-check", data="{}")).status for _ in range(8)]
    assert statuses[:6] == [400] * 6 and statuses[6:] == [429, 429]
