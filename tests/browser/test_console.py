"""The interpreter console's states: wrap-up after a call, breaks with a
reason, the pause after missed offers, and the console opened twice."""

from __future__ import annotations

import re

import pytest
from playwright.async_api import Page, expect

from .helpers import (
    WRAP_UP_COUNTDOWN,
    NewContext,
    SignallingLog,
    assert_big_enough,
    assert_no_violations,
    become_available,
    connect_call,
    expect_new_peer_connection,
    expect_video_flowing,
    join_queue,
    mark_peer_connection,
    open_caller,
    open_console,
)

pytestmark = pytest.mark.browser

MISSED_OFFERS_TEXT = (
    "You were paused because you missed 2 offers in a row. "
    "Make yourself available when you are ready."
)


async def expect_controls(
    console: Page, *, available: bool, take_break: bool, offline: bool
) -> None:
    """Which of the state buttons the interpreter can use now."""
    for name, enabled in (
        ("Make me available", available),
        ("Take a break", take_break),
        ("Go offline", offline),
    ):
        button = console.get_by_role("button", name=name)
        if enabled:
            await expect(button).to_be_enabled()
        else:
            await expect(button).to_be_disabled()


async def test_wrap_up_after_a_call(new_context: NewContext, signalling: SignallingLog) -> None:
    caller, console = await connect_call(new_context)
    # Nothing to change while in a call.
    await expect_controls(console, available=False, take_break=False, offline=False)

    await caller.get_by_role("button", name="Hang up").click()

    state = console.locator("#state")
    await expect(state).to_have_text("Wrap-up after your call")
    await expect(console.get_by_role("status")).to_have_text(
        "Call ended: the caller hung up. Your wrap-up time has started."
    )
    timer = console.get_by_role("timer")
    await expect(timer).to_have_text(WRAP_UP_COUNTDOWN)
    shown = await timer.text_content() or ""
    match = WRAP_UP_COUNTDOWN.match(shown)
    assert match is not None and 20 <= int(match.group(1)) <= 30, shown
    # The countdown counts down.
    await expect(timer).not_to_have_text(shown)
    ready = console.get_by_role("button", name="Ready for the next call")
    await expect(ready).to_be_enabled()
    await assert_big_enough(console, "Ready for the next call")
    # A break or going offline also ends the wrap-up; "Make me available" is
    # what "Ready for the next call" does.
    await expect_controls(console, available=False, take_break=True, offline=True)
    # The department the call was for: the caller chose none; the interpreter sets it.
    department = console.get_by_label("Department the call was for")
    await expect(department).to_have_value("")
    await assert_no_violations(console, "console in wrap-up")
    await department.select_option(label="Housing")
    await console.get_by_role("button", name="Save the department").click()
    await expect(console.locator("#department-saved")).to_have_text("Saved: Housing.")
    await expect(console.get_by_role("status")).to_have_text("Department saved: Housing.")

    await ready.click()

    await expect(state).to_have_text("You are available")
    await expect(timer).to_be_hidden()
    await expect_controls(console, available=False, take_break=True, offline=True)
    assert signalling.errors == []


async def test_a_caller_chooses_the_department(
    new_context: NewContext, signalling: SignallingLog
) -> None:
    caller = await open_caller(await new_context(phone=True))
    await caller.get_by_label("Which department is your call for? (optional)").select_option(
        label="Council tax and benefits"
    )
    await join_queue(caller)
    joins = [line for line in signalling.lines if '"type":"join"' in line and "] -> " in line]
    assert len(joins) == 1 and '"cost_centre":"REV"' in joins[0], signalling.lines


@pytest.mark.server_env(SIGNVIDEO_WRAP_UP="6")
async def test_wrap_up_ends_by_itself(new_context: NewContext, signalling: SignallingLog) -> None:
    console = await open_console(await new_context())
    await become_available(console)
    caller = await open_caller(await new_context(phone=True))
    await join_queue(caller)
    await console.get_by_role("button", name="Accept").click()
    await expect(console.locator("#state")).to_have_text("You are in a call")
    # The caller's answer has arrived once their video shows.
    await expect_video_flowing(console, "Caller's video")

    await console.get_by_role("button", name="Hang up").click()

    await expect(console.locator("#state")).to_have_text("Wrap-up after your call")
    await expect(console.get_by_role("timer")).to_have_text(WRAP_UP_COUNTDOWN)
    await expect(console.locator("#state")).to_have_text("You are available", timeout=15_000)
    # Hanging up can beat the caller's last trickled candidates to the
    # server, which refuses them (the pages ignore that); nothing else is refused.
    assert [e for e in signalling.errors if e.get("request_type") != "ice"] == []


async def test_a_break_with_a_reason(new_context: NewContext, signalling: SignallingLog) -> None:
    console = await open_console(await new_context())
    state = console.locator("#state")
    await expect_controls(console, available=True, take_break=True, offline=False)

    await console.get_by_label("Reason for a break").select_option(label="Meal break")
    await console.get_by_role("button", name="Take a break").click()

    await expect(state).to_have_text("You are on a break")
    await expect(console.locator("#state-detail")).to_contain_text("Reason: Meal break.")
    await expect_controls(console, available=True, take_break=False, offline=True)
    await expect(console.get_by_role("alert").filter(has_text="paused")).to_have_count(0)
    await assert_no_violations(console, "console on a break")

    await console.get_by_role("button", name="Make me available").click()
    await expect(state).to_have_text("You are available")
    await expect_controls(console, available=False, take_break=True, offline=True)

    await console.get_by_label("Reason for a break").select_option(label="Comfort break")
    await console.get_by_role("button", name="Take a break").click()
    await expect(state).to_have_text("You are on a break")
    await expect(console.locator("#state-detail")).to_contain_text("Reason: Comfort break.")

    await console.get_by_role("button", name="Go offline").click()
    await expect(state).to_have_text("You are offline")
    await expect_controls(console, available=True, take_break=True, offline=False)
    frames = [line for line in signalling.lines if "set_state" in line]
    assert any('"state":"break","reason":"meal"' in line for line in frames), frames
    assert signalling.errors == []


@pytest.mark.server_env(SIGNVIDEO_OFFER_TIMEOUT="2")
async def test_missed_offers_pause_the_interpreter(
    new_context: NewContext, signalling: SignallingLog
) -> None:
    console = await open_console(await new_context())
    await become_available(console)
    # Two callers, so a second offer comes whichever call the service offers next.
    first = await open_caller(await new_context(phone=True))
    await join_queue(first)
    second = await open_caller(await new_context(phone=True))
    # The first call is being offered to the interpreter: it is ahead of no one.
    await join_queue(second, position=1)

    offer = console.get_by_role("region", name="Incoming call")
    await expect(offer).to_be_visible()
    await expect(console.locator("#offer-countdown")).to_have_text(
        re.compile(r"^[12] seconds? left to accept$")
    )

    # Nobody accepts two offers in a row: the service pauses the interpreter.
    paused = console.get_by_role("alert").filter(has_text="You were paused")
    await expect(paused).to_have_text(MISSED_OFFERS_TEXT)
    await expect(console.locator("#state")).to_have_text("You are on a break")
    await expect(console.locator("#state-detail")).to_contain_text("Paused after missed offers")
    await expect(offer).to_be_hidden()
    await expect(console).to_have_title(re.compile(r"^Interpreter console"))
    await expect_controls(console, available=True, take_break=False, offline=True)
    # The callers keep their places.
    await expect(first.get_by_role("status")).to_contain_text("You are number 1 in the queue")
    await expect(second.get_by_role("status")).to_contain_text("You are number 2 in the queue")
    await assert_no_violations(console, "console paused after missed offers")

    await console.get_by_role("button", name="Make me available").click()

    await expect(paused).to_have_count(0)
    await expect(offer).to_be_visible()
    assert signalling.errors == []


async def test_a_second_console_window_takes_over(new_context: NewContext) -> None:
    context = await new_context()
    first = await open_console(context)

    second = await context.new_page()
    await second.goto("/console")
    await expect(second.locator("#state")).to_have_text("You are offline")

    await expect(first.locator("#state")).to_have_text("Not connected")
    await expect(first.locator("#state-detail")).to_contain_text("another window")
    await expect(first.locator("#state-detail")).to_contain_text("Reload this page")
    await expect(second.get_by_role("button", name="Make me available")).to_be_enabled()


async def test_a_call_moves_to_a_second_console_window_with_its_video(
    new_context: NewContext, signalling: SignallingLog
) -> None:
    context = await new_context()
    caller, first = await connect_call(new_context, console_context=context)
    await mark_peer_connection(caller)

    second = await context.new_page()
    await second.goto("/console")

    # The server re-sends `connected` (resumed) to the new window, which makes a
    # new offer; the caller answers it on a new peer connection.
    await expect(second.locator("#state")).to_have_text("You are in a call")
    await expect(first.locator("#state")).to_have_text("Not connected")
    await expect(first.locator("#call")).to_be_hidden()
    await expect(second.get_by_role("button", name="Hang up")).to_have_count(1)
    await expect_new_peer_connection(caller)
    await expect_video_flowing(second, "Caller's video")
    await expect_video_flowing(caller, "Interpreter's video")

    await second.get_by_role("button", name="Hang up").click()
    await expect(caller).to_have_url(
        re.compile(r"/call/demo/ended\?reason=interpreter_hung_up(&call=[0-9a-f-]+&key=[\w-]+)?$")
    )
    await expect(second.locator("#state")).to_have_text("Wrap-up after your call")
    assert signalling.errors == []


@pytest.mark.server_env(SIGNVIDEO_HANDOVER_SUGGEST="2", SIGNVIDEO_HANDOVER_ASK="5")
async def test_long_interpreting_suggests_then_asks_for_a_handover(
    new_context: NewContext,
) -> None:
    """Thresholds of 2 and 5 seconds stand in for 20 and 40 minutes."""
    _, console = await connect_call(new_context)
    await expect(console.locator("#interpreting-time")).to_have_text("Interpreting for 0 minutes")
    handover = console.locator("#handover")
    await expect(handover).to_contain_text("Think about a handover")
    await expect(handover).to_have_attribute("data-level", "suggest")
    await assert_no_violations(console, "console suggesting a handover")
    await expect(handover).to_contain_text("Please hand over to a colleague now")
    await expect(handover).to_have_attribute("data-level", "ask")
