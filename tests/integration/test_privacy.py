"""What is kept about callers: a contact they choose to leave, shown to
their interpreter, wiped after the retention period; a page that says so."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg
from aiohttp.test_utils import TestClient

from signvideo import privacy
from tests.integration.conftest import Peer, interpreter_console

Opener = Callable[[], Awaitable[Peer]]
ConsoleOpener = Callable[[str], Awaitable[Peer]]


async def test_a_contact_reaches_the_interpreter_and_is_wiped_later(
    client: TestClient[Any, Any],
    pool: asyncpg.Pool,
    open_caller: Opener,
    open_console: ConsoleOpener,
) -> None:
    caller = await open_caller()
    await caller.send(type="join", authority="demo", contact="x" * 201)
    assert (await caller.expect("error"))["code"] == "invalid_field"
    await caller.send(type="join", authority="demo", contact=" 07700 900123 ")
    queued = await caller.expect("queued")
    _, ann = await interpreter_console(client, pool, open_console, "ann@example.org")
    await ann.send(type="set_state", state="available")
    offer = await ann.expect("offer")
    await ann.send(type="accept", call_id=offer["call_id"])
    connected = await ann.expect("connected")
    assert connected["peer"]["authority"] == "demo"
    assert connected["peer"]["contact"] == "07700 900123"
    # Never in the event log, which is kept for good.
    events = await pool.fetch("SELECT detail::text FROM call_events")
    assert not any("07700" in row[0] for row in events)

    assert await privacy.purge_contacts(pool, 30) == 0
    await pool.execute(
        "UPDATE calls SET queued_at = queued_at - interval '31 days' WHERE id = $1::uuid",
        queued["call_id"],
    )
    assert await privacy.purge_contacts(pool, 30) == 1
    assert (
        await pool.fetchval(
            "SELECT caller_contact FROM calls WHERE id = $1::uuid", queued["call_id"]
        )
        is None
    )


async def test_the_privacy_page_says_what_is_kept(client: TestClient[Any, Any]) -> None:
    page = await (await client.get("/privacy")).text()
    assert "We never record your video, your sound or what you type." in page
    assert "We wipe it after 30 days." in page
    caller_page = await (await client.get("/call/demo")).text()
    assert 'href="/privacy"' in caller_page and "(optional)" in caller_page
