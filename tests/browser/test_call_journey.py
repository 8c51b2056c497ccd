"""The whole walk: a caller queues, an interpreter answers, video flows both
ways, someone hangs up, and finance sees the call in the usage export."""

from __future__ import annotations

import csv
import io
import re
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from playwright.async_api import Page, expect

from .helpers import (
    FINANCE,
    WRAP_UP_COUNTDOWN,
    NewContext,
    Server,
    SignallingLog,
    assert_no_violations,
    join_queue,
    open_caller,
    sign_in,
)
from .helpers import connect_call as connect_call_with_video

pytestmark = pytest.mark.browser

SENDER_SETTINGS_JS = """() => {
    const sender = window.signvideo.pc.getSenders()
        .find((s) => s.track && s.track.kind === "video");
    return {
        contentHint: sender.track.contentHint,
        degradationPreference: sender.getParameters().degradationPreference || null,
        maxFramerate: sender.getParameters().encodings[0].maxFramerate || null,
    };
}"""


async def connect_call(new_context: NewContext) -> tuple[Page, Page]:
    caller, console = await connect_call_with_video(new_context)
    # Signing needs frame rate more than detail; both senders say so.
    for page in (caller, console):
        settings = await page.evaluate(SENDER_SETTINGS_JS)
        assert settings["contentHint"] == "motion"
        assert settings["degradationPreference"] == "maintain-framerate", settings
        assert settings["maxFramerate"] == 30, settings
    return caller, console


def london_today() -> str:
    return datetime.now(ZoneInfo("Europe/London")).date().isoformat()


async def usage_rows(new_context: NewContext) -> list[dict[str, str]]:
    context = await new_context()
    page = await context.new_page()
    await sign_in(page, *FINANCE)
    today = london_today()
    response = await context.request.get(
        f"/finance/usage?authority=demo&period=dates&from={today}&to={today}"
    )
    assert response.ok, f"{response.status} {await response.text()}"
    assert response.headers["content-type"].startswith("text/csv")
    return list(csv.DictReader(io.StringIO(await response.text())))


async def test_caller_hangs_up(
    server: Server, new_context: NewContext, signalling: SignallingLog
) -> None:
    caller, console = await connect_call(new_context)
    call_id = await caller.evaluate("window.signvideo.callId")
    await expect(console.locator("#caller-contact")).to_have_text(
        "The caller left no way to reach them if you are cut off."
    )

    await caller.get_by_role("button", name="Hang up").click()

    await expect(caller).to_have_url(
        re.compile(r"/call/demo/ended\?reason=caller_hung_up&call=[0-9a-f-]+&key=[\w-]+$")
    )
    await expect(caller.get_by_role("heading", level=1)).to_have_text("Your call has ended")
    await expect(caller.get_by_role("link", name=re.compile("again"))).to_have_attribute(
        "href", "/call/demo"
    )
    # The place token is gone with the call: reopening the page starts afresh.
    assert await caller.evaluate("sessionStorage.getItem('signvideo.resume.demo')") is None
    await expect(console.get_by_role("status")).to_have_text(
        "Call ended: the caller hung up. Your wrap-up time has started."
    )
    # After a call comes wrap-up, not the next offer.
    await expect(console.locator("#state")).to_have_text("Wrap-up after your call")
    await expect(console.get_by_role("timer")).to_have_text(WRAP_UP_COUNTDOWN)
    await expect(console.get_by_role("button", name="Ready for the next call")).to_be_enabled()
    await expect(console.locator("#call")).to_be_hidden()
    assert await console.evaluate("window.signvideo.pc") is None

    # The caller rates the call by picture, once.
    await assert_no_violations(caller, "the call-ended page with its rating")
    await caller.get_by_role("radio", name="Good", exact=True).check()
    await caller.get_by_role("button", name="Send my rating").click()
    await expect(caller.get_by_role("status")).to_have_text("Thank you for rating your call.")
    assert (
        await server.execute("SELECT rating FROM call_ratings WHERE call_id = $1::uuid", call_id)
        == 4
    )
    await caller.go_back()
    await caller.get_by_role("radio", name="Very poor", exact=True).check()
    await caller.get_by_role("button", name="Send my rating").click()
    await expect(caller.get_by_role("heading", level=1)).to_have_text("Conflict")
    assert (
        await server.execute("SELECT rating FROM call_ratings WHERE call_id = $1::uuid", call_id)
        == 4
    )

    rows = await usage_rows(new_context)
    assert [row["call_id"] for row in rows] == [call_id], rows
    (row,) = rows
    assert int(row["billable_seconds"]) > 0, row
    assert int(row["net_pence"]) >= 150, row
    assert row["end_reason"] == "caller_hung_up", row
    assert row["answered_at_utc"] and row["ended_at_local"], row
    assert signalling.errors == []


async def test_interpreter_hangs_up(new_context: NewContext, signalling: SignallingLog) -> None:
    caller, console = await connect_call(new_context)

    await console.get_by_role("button", name="Hang up").click()

    await expect(caller).to_have_url(
        re.compile(r"/call/demo/ended\?reason=interpreter_hung_up&call=[0-9a-f-]+&key=[\w-]+$")
    )
    await expect(caller.get_by_role("heading", level=1)).to_have_text("Your call has ended")
    await expect(console.get_by_role("status")).to_have_text(
        "Call ended: you hung up. Your wrap-up time has started."
    )
    await expect(console.locator("#state")).to_have_text("Wrap-up after your call")
    await console.get_by_role("button", name="Ready for the next call").click()
    await expect(console.locator("#state")).to_have_text("You are available")
    await expect(console.get_by_role("button", name="Go offline")).to_be_enabled()
    assert signalling.errors == []


async def test_caller_leaves_the_queue(new_context: NewContext, signalling: SignallingLog) -> None:
    caller = await open_caller(await new_context(phone=True))
    await join_queue(caller)

    await caller.get_by_role("button", name="Leave the queue").click()

    await expect(caller).to_have_url(re.compile(r"/call/demo/ended\?reason=caller_left$"))
    await expect(caller.get_by_role("heading", level=1)).to_have_text("Your call has ended")
    assert signalling.errors == []
