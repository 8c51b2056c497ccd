"""Dropped connections: a caller keeps their place, or their call, and gets
it back; a reloaded caller page too; an interpreter's console comes back to
its call; a place kept too long expires."""

from __future__ import annotations

import asyncio
import re

import pytest
from playwright.async_api import Dialog, Page, expect

from .helpers import (
    NewContext,
    Server,
    SignallingLog,
    allow_connections,
    assert_no_violations,
    connect_call,
    drop_connection,
    expect_new_peer_connection,
    expect_video_flowing,
    join_queue,
    mark_peer_connection,
    open_caller,
)

pytestmark = pytest.mark.browser

TOKEN_JS = "sessionStorage.getItem('signvideo.resume.demo')"


async def accept_dialog(dialog: Dialog) -> None:
    # "Leave this page?" when reloading while queued.
    await dialog.accept()


async def expect_reconnecting(page: Page, detail: str) -> None:
    status = page.get_by_role("status")
    await expect(status).to_contain_text("Connection lost. Reconnecting…")
    await expect(status).to_contain_text(detail)
    await expect(page.locator("#status-box")).to_have_attribute("data-state", "reconnecting")


def resumes_sent(signalling: SignallingLog) -> list[str]:
    return [line for line in signalling.lines if '"type":"resume"' in line and "] -> " in line]


async def test_a_caller_keeps_their_place_after_a_drop_and_a_reload(
    new_context: NewContext, signalling: SignallingLog
) -> None:
    first = await open_caller(await new_context(phone=True))
    await join_queue(first)
    second = await open_caller(await new_context(phone=True))
    await join_queue(second, position=2)
    token = await second.evaluate(TOKEN_JS)
    assert token, "the page keeps the token from `queued`"
    status = second.get_by_role("status")

    await drop_connection(second)

    await expect_reconnecting(second, "You keep your place for 1 minute.")
    await expect(second.get_by_role("button", name="Leave the queue")).to_be_disabled()
    await assert_no_violations(second, "caller page, reconnecting")

    await allow_connections(second)

    await expect(status).to_contain_text("You are number 2 in the queue.")
    await expect(second.locator("#status-box")).to_have_attribute("data-state", "queued")
    await expect(second.get_by_role("button", name="Leave the queue")).to_be_enabled()
    assert any(token in line for line in resumes_sent(signalling)), signalling.lines

    # Reloading the page keeps the place too.
    second.on("dialog", accept_dialog)
    await second.reload()
    await expect(status).to_contain_text("You are number 2 in the queue.")
    await expect_video_ready(second)

    # The places still move up as before.
    await first.get_by_role("button", name="Leave the queue").click()
    await expect(status).to_contain_text("You are number 1 in the queue. You are next.")
    # The first caller is on the page that says they left, fully loaded (a
    # context closed while it is still arriving can hang Chromium's close).
    await expect(first).to_have_url(re.compile(r"/call/demo/ended\?reason=caller_left$"))
    await first.wait_for_load_state()
    assert signalling.errors == []


async def expect_video_ready(page: Page) -> None:
    """The camera preview runs again after a reload."""
    await page.wait_for_function(
        """() => {
            const video = document.querySelector('video[aria-label="Your camera"]');
            return video !== null && video.videoWidth > 0;
        }"""
    )


async def test_a_call_carries_on_after_the_caller_drops(
    new_context: NewContext, signalling: SignallingLog
) -> None:
    caller, console = await connect_call(new_context)
    await mark_peer_connection(caller)
    await mark_peer_connection(console)

    await drop_connection(caller)

    await expect_reconnecting(caller, "You keep your call for 1 minute.")
    await expect(caller.get_by_role("button", name="Hang up")).to_be_disabled()

    await allow_connections(caller)

    # The caller gets `connected` (resumed) and the interpreter `peer_resumed`:
    # both start again on new peer connections, and video flows both ways.
    await expect(caller.get_by_role("status")).to_contain_text("connected with the interpreter")
    await expect_new_peer_connection(caller)
    await expect_new_peer_connection(console)
    await expect_video_flowing(caller, "Interpreter's video")
    await expect_video_flowing(console, "Caller's video")
    await expect(console.locator("#state")).to_have_text("You are in a call")

    await caller.get_by_role("button", name="Hang up").click()
    await expect(caller).to_have_url(
        re.compile(r"/call/demo/ended\?reason=caller_hung_up(&call=[0-9a-f-]+&key=[\w-]+)?$")
    )
    await expect(console.get_by_role("status")).to_contain_text("Call ended: the caller hung up.")
    assert signalling.errors == []


async def test_a_call_carries_on_after_the_console_drops(
    new_context: NewContext, signalling: SignallingLog
) -> None:
    caller, console = await connect_call(new_context)
    await mark_peer_connection(caller)
    await mark_peer_connection(console)

    await drop_connection(console)

    await expect(console.locator("#state")).to_have_text("Not connected")
    # The call stays on the page while the console reconnects.
    await expect(console.get_by_role("button", name="Hang up")).to_be_visible()

    await allow_connections(console)

    # The console gets `connected` (resumed) and makes a new offer; the caller
    # answers it on a new peer connection.
    await expect(console.locator("#state")).to_have_text("You are in a call")
    await expect_new_peer_connection(console)
    await expect_new_peer_connection(caller)
    await expect_video_flowing(caller, "Interpreter's video")
    await expect_video_flowing(console, "Caller's video")
    await expect(console.get_by_role("button", name="Hang up")).to_have_count(1)
    assert signalling.errors == []


@pytest.mark.server_env(SIGNVIDEO_CALLER_GRACE="2")
async def test_a_place_kept_too_long_expires(
    server: Server, new_context: NewContext, signalling: SignallingLog
) -> None:
    caller = await open_caller(await new_context(phone=True))
    await join_queue(caller)

    await drop_connection(caller)
    await expect_reconnecting(caller, "You keep your place for 1 minute.")
    # Hold the connection down until the service has given the place up.
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 20
    while await server.execute("SELECT count(*) FROM calls WHERE state = 'ended'") == 0:
        assert loop.time() < deadline, "the call never ended after the grace period"
        await asyncio.sleep(0.2)
    assert await server.execute("SELECT end_reason FROM calls") == "caller_disconnected"

    await allow_connections(caller)

    await expect(caller.get_by_role("alert")).to_contain_text("Your place in the queue has expired")
    await expect(caller.get_by_role("status")).to_contain_text("You are not in the queue.")
    await expect(caller.get_by_role("button", name="Join the queue")).to_be_enabled()
    assert await caller.evaluate(TOKEN_JS) is None
    assert [error["code"] for error in signalling.errors] == ["not_found"]
