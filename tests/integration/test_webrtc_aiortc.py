"""Real WebRTC media between two aiortc peers, signalled through our WebSocket endpoints."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg
import pytest
from aiohttp.test_utils import TestClient

from tests.integration.conftest import Peer
from tests.integration.media import answered_call, negotiate

pytestmark = pytest.mark.webrtc


async def test_caller_and_interpreter_exchange_video(
    loopback_ice: None,
    client: TestClient[Any, Any],
    pool: asyncpg.Pool,
    open_caller: Callable[[], Awaitable[Peer]],
    open_console: Callable[[str], Awaitable[Peer]],
) -> None:
    console, caller, call_id, _, _ = await answered_call(client, pool, open_caller, open_console)

    media = await negotiate(console, caller, call_id)
    try:
        await media.expect_video_both_ways()
    finally:
        await media.close()

    await console.send(type="hangup", call_id=call_id)
    assert (await caller.expect("ended"))["reason"] == "interpreter_hung_up"
    assert (
        await pool.fetchval("SELECT net_pence FROM ledger WHERE call_id = $1::uuid", call_id) == 150
    )
