"""Real WebRTC media between two aiortc peers, signalled through our WebSocket endpoints."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg
import pytest
from aiohttp.test_utils import TestClient

from tests.integration.conftest import INTERPRETER_PASSWORD, Peer, add_interpreter, sign_in
from tests.integration.media import negotiate

pytestmark = pytest.mark.webrtc


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
