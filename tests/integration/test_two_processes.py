"""Two `signvideo serve` processes on one database, one of them killed mid-call.

The callers of the killed process come back through the other with their
resume tokens and keep their places and their call; a caller who never comes
back is given up after the grace period, counted from the dead process's last
heartbeat; media flows across the two processes before and after.
"""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path

import aiohttp
import asyncpg
import pytest

from tests.integration.conftest import INTERPRETER_PASSWORD, Peer, add_interpreter
from tests.integration.media import negotiate
from tests.servers import ServerProcess, running_server

pytestmark = pytest.mark.webrtc

GRACE_S = 2


async def sign_in(http: aiohttp.ClientSession, server: ServerProcess, email: str) -> str:
    async with http.get(server.url("/login")) as page:
        form_cookie = page.cookies["signvideo_csrf"].value
        token = re.search(r'name="csrf_token" value="([^"]+)"', await page.text())
        assert token is not None
    async with http.post(
        server.url("/login"),
        data={
            "email": email,
            "password": INTERPRETER_PASSWORD,
            "next": "/console",
            "csrf_token": token.group(1),
        },
        headers={"Cookie": f"signvideo_csrf={form_cookie}"},
        allow_redirects=False,
    ) as response:
        assert response.status == 303, await response.text()
        return response.cookies["signvideo_session"].value


async def open_console(http: aiohttp.ClientSession, server: ServerProcess, session: str) -> Peer:
    ws = await http.ws_connect(
        server.url("/ws/console"), headers={"Cookie": f"signvideo_session={session}"}
    )
    console = Peer(ws)
    await console.expect("state", state="offline")
    return console


async def join(
    http: aiohttp.ClientSession, server: ServerProcess, position: int
) -> tuple[Peer, dict[str, object]]:
    caller = Peer(await http.ws_connect(server.url("/ws/caller")))
    await caller.send(type="join", authority="demo")
    queued = await caller.expect("queued", position=position)
    return caller, queued


async def resume(http: aiohttp.ClientSession, server: ServerProcess, token: object) -> Peer:
    caller = Peer(await http.ws_connect(server.url("/ws/caller")))
    await caller.send(type="resume", token=token)
    return caller


async def expect_closed(peer: Peer) -> None:
    """The socket ends: its server is gone (messages sent before are skipped)."""
    while (message := await peer.ws.receive(timeout=10)).type == aiohttp.WSMsgType.TEXT:
        pass
    assert message.type in (
        aiohttp.WSMsgType.CLOSE,
        aiohttp.WSMsgType.CLOSED,
        aiohttp.WSMsgType.ERROR,
    ), message


async def test_callers_of_a_killed_process_resume_on_the_other(
    loopback_ice: None, database_url: str, pool: asyncpg.Pool, seeded: None, tmp_path: Path
) -> None:
    await add_interpreter(pool, "ann@example.org", "Ann")
    env = {"SIGNVIDEO_CALLER_GRACE": str(GRACE_S)}
    async with (
        aiohttp.ClientSession() as http,
        running_server(database_url, tmp_path / "a", env=env) as a,
        running_server(database_url, tmp_path / "b", env=env) as b,
    ):
        assert await pool.fetchval("SELECT count(*) FROM server_processes") == 2
        console = await open_console(http, b, await sign_in(http, b, "ann@example.org"))

        # Three callers on process A, one on B: one queue across both.
        first, first_queued = await join(http, a, 1)
        second, second_queued = await join(http, a, 2)
        lost, lost_queued = await join(http, a, 3)
        fourth, _ = await join(http, b, 4)

        # The interpreter on B is offered A's first caller, and their media
        # is negotiated through both processes.
        await console.send(type="set_availability", available=True)
        offer = await console.expect("offer")
        call_id = str(first_queued["call_id"])
        assert offer["call_id"] == call_id
        await console.send(type="accept", call_id=call_id)
        await console.expect("connected", role="interpreter", resumed=False)
        await first.expect("connected", role="caller", resumed=False)
        media = await negotiate(console, first, call_id)
        try:
            await media.expect_video_both_ways()
        finally:
            await media.close()
        await second.expect("position", position=1)
        await fourth.expect("position", position=3)

        await a.kill()

        for socket in (first, second, lost):
            await expect_closed(socket)

        # Back through B with their tokens, before anyone has noticed A died:
        # the caller in a call gets the call back, and the interpreter is told
        # to make a new offer on a new peer connection.
        first = await resume(http, b, first_queued["token"])
        await first.expect("connected", call_id=call_id, role="caller", resumed=True)
        await console.expect("peer_resumed", call_id=call_id)
        media = await negotiate(console, first, call_id)
        try:
            await media.expect_video_both_ways()
        finally:
            await media.close()

        # The waiting caller keeps their place.
        second = await resume(http, b, second_queued["token"])
        await second.expect("queued", call_id=second_queued["call_id"], position=1, resumed=True)

        # The caller who never comes back counts as dropped from A's last
        # heartbeat; once B takes A for dead and the grace has passed, they
        # are given up and the caller behind them moves up.
        await fourth.expect("position", position=2, timeout=30)
        lost_call = await pool.fetchrow(
            "SELECT state, end_reason, caller_gone_at, ended_at FROM calls WHERE id = $1::uuid",
            lost_queued["call_id"],
        )
        assert (lost_call["state"], lost_call["end_reason"]) == ("ended", "caller_disconnected")
        assert lost_call["ended_at"] - lost_call["caller_gone_at"] >= timedelta(seconds=GRACE_S)
        assert await pool.fetchval("SELECT count(*) FROM server_processes") == 1
        assert (
            await pool.fetchval("SELECT state FROM calls WHERE id = $1::uuid", call_id)
            == "answered"
        )

        # The call ends normally and is charged once.
        await console.send(type="hangup", call_id=call_id)
        assert (await first.expect("ended", call_id=call_id))["reason"] == "interpreter_hung_up"
        assert (
            await pool.fetchval("SELECT count(*) FROM ledger WHERE call_id = $1::uuid", call_id)
            == 1
        )
        for peer in (console, first, second, fourth):
            await peer.close()
