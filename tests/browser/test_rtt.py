"""Real-time text beside the video: a "t140" data channel between the caller's
page and the console, text shown as it is typed, each side's own text and
the other's looking different; and a console whose camera fails carries on
in text."""

from __future__ import annotations

import asyncio

from playwright.async_api import Page, expect

from .helpers import (
    NewContext,
    Server,
    assert_no_violations,
    connect_call,
    expect_video_flowing,
    join_queue,
    open_caller,
    open_console,
)

DATA_CHANNELS = """
async () => {
    const stats = await window.signvideo.pc.getStats();
    const channels = [];
    stats.forEach((s) => {
        if (s.type === "data-channel") channels.push([s.label, s.protocol, s.state]);
    });
    return channels;
}
"""


async def wait_until(server: Server, sql: str, *args: object) -> None:
    """Poll the server's database until `sql` is true (at most 20 s)."""
    for _ in range(100):
        if await server.execute(sql, *args):
            return
        await asyncio.sleep(0.2)
    raise AssertionError(f"never true: {sql} {args}")


async def their_text(page: Page) -> str:
    return await page.locator("#rtt-log").inner_text()


async def test_text_goes_both_ways_as_it_is_typed(new_context: NewContext) -> None:
    caller, console = await connect_call(new_context)
    for page in (caller, console):
        mine = page.get_by_label("Your text")
        await expect(mine).to_be_enabled()
        assert await page.evaluate(DATA_CHANNELS) == [["rtt", "t140", "open"]]

    caller_box = caller.get_by_label("Your text")
    await caller_box.press_sequentially("Hello")
    await expect(console.locator("#rtt-log")).to_have_text("Hello")
    # Corrections travel as backspaces; a new line as T.140's line separator.
    await caller_box.press("Backspace")
    await caller_box.press("Backspace")
    await expect(console.locator("#rtt-log")).to_have_text("Hel")
    await caller_box.press_sequentially("p")
    await caller_box.press("Enter")
    await caller_box.press_sequentially("my housing benefit")
    await expect(console.locator("#rtt-log p")).to_have_text(["Help", "my housing benefit"])

    await console.get_by_label("Your text").press_sequentially("Hello, I am Sam.")
    await expect(caller.locator("#rtt-log")).to_have_text("Hello, I am Sam.")
    # The other side's text and one's own are labelled and look different.
    await expect(caller.get_by_role("log", name="The interpreter's text")).to_be_visible()
    await expect(console.get_by_role("log", name="The caller's text")).to_be_visible()
    mine_style = await caller_box.evaluate("e => getComputedStyle(e).borderLeftColor")
    theirs_style = await caller.locator(".rtt__theirs").evaluate(
        "e => getComputedStyle(e).borderLeftColor"
    )
    assert mine_style != theirs_style
    await assert_no_violations(caller, "caller in a call with text")
    await assert_no_violations(console, "console in a call with text")


BROKEN_CAMERA_JS = """
navigator.mediaDevices.getUserMedia = () =>
    Promise.reject(new DOMException("The camera is in use", "NotReadableError"));
"""


async def test_a_console_without_a_camera_carries_on_in_text(new_context: NewContext) -> None:
    caller = await open_caller(await new_context(phone=True))
    await join_queue(caller)
    context = await new_context()
    console = await open_console(context)
    await context.add_init_script(BROKEN_CAMERA_JS)
    await console.reload()
    await expect(console.locator("#state")).to_have_text("You are offline")
    await console.get_by_role("button", name="Make me available").click()
    await console.get_by_role("button", name="Accept").click()

    await expect(console.get_by_role("alert")).to_contain_text("You can carry on in text")
    # The caller's video still reaches the interpreter, and text goes both ways.
    await expect_video_flowing(console, "Caller's video")
    await console.get_by_label("Your text").press_sequentially("My camera has failed.")
    await expect(caller.locator("#rtt-log")).to_have_text("My camera has failed.")
    await caller.get_by_label("Your text").press_sequentially("OK, I can read you.")
    await expect(console.locator("#rtt-log")).to_have_text("OK, I can read you.")
    await expect(console.get_by_role("button", name="Hang up")).to_be_enabled()


async def test_a_slow_video_is_warned_of_and_recorded(
    server: Server, new_context: NewContext
) -> None:
    caller, console = await connect_call(new_context)
    call_id = await caller.evaluate("window.signvideo.callId")
    # Both sides report what they receive; the record keeps figures, not content.
    for side in ("caller", "interpreter"):
        await wait_until(
            server,
            "SELECT count(*) > 0 FROM call_quality WHERE call_id = $1::uuid AND side = $2 "
            "AND frames_per_second > 0 AND width = 640",
            call_id,
            side,
        )
    # The caller's video drops to 5 frames a second: the interpreter is told.
    await caller.evaluate(
        """async () => {
            for (const sender of window.signvideo.pc.getSenders()) {
                if (!sender.track || sender.track.kind !== "video") continue;
                const parameters = sender.getParameters();
                for (const encoding of parameters.encodings) encoding.maxFramerate = 5;
                await sender.setParameters(parameters);
            }
        }"""
    )
    warning = console.locator("#quality-warning")
    await expect(warning).to_contain_text("The caller's video is not smooth enough for signing")
    await assert_no_violations(console, "console warning of a slow video")
    await wait_until(
        server,
        "SELECT count(*) > 0 FROM call_quality WHERE call_id = $1::uuid "
        "AND side = 'interpreter' AND warning = 'low_frame_rate'",
        call_id,
    )
    await expect(caller.locator("#quality-warning")).to_be_hidden()
