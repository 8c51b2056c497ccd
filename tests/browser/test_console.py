"""The interpreter console when things do not go to plan: an offer nobody
accepts, and the console opened twice."""

from __future__ import annotations

import re

import pytest
from playwright.async_api import expect

from .helpers import (
    NewContext,
    SignallingLog,
    become_available,
    join_queue,
    open_caller,
    open_console,
)

pytestmark = pytest.mark.browser

OFFER_TIMEOUT_S = 3


@pytest.fixture
def server_env() -> dict[str, str]:
    return {"SIGNVIDEO_OFFER_TIMEOUT": str(OFFER_TIMEOUT_S)}


async def test_an_offer_nobody_accepts_is_withdrawn(
    new_context: NewContext, signalling: SignallingLog
) -> None:
    console = await open_console(await new_context())
    await become_available(console)
    caller = await open_caller(await new_context(phone=True))
    await join_queue(caller)

    offer = console.get_by_role("region", name="Incoming call")
    await expect(offer).to_be_visible()
    await expect(console.locator("#offer-countdown")).to_have_text(
        re.compile(rf"^[1-{OFFER_TIMEOUT_S}] seconds? left to accept$")
    )

    await expect(offer).to_be_hidden()
    await expect(console.get_by_role("status")).to_have_text(
        "The call was not accepted in time, so it is being offered to someone else."
    )
    await expect(console).to_have_title(re.compile(r"^Interpreter console"))
    await expect(console.locator("#state")).to_have_text("You are available")
    # The caller keeps their place.
    await expect(caller.get_by_role("status")).to_contain_text("You are number 1 in the queue")
    assert signalling.errors == []


async def test_a_second_console_window_takes_over(new_context: NewContext) -> None:
    context = await new_context()
    first = await open_console(context)

    second = await context.new_page()
    await second.goto("/console")
    await expect(second.locator("#state")).to_have_text("You are unavailable")

    await expect(first.locator("#state")).to_have_text("Not connected")
    await expect(first.locator("#state-detail")).to_contain_text("another window")
    await expect(first.locator("#state-detail")).to_contain_text("Reload this page")
    await expect(second.get_by_role("button", name="Make me available")).to_be_enabled()


async def test_a_call_left_in_another_window_can_be_ended(
    new_context: NewContext, signalling: SignallingLog
) -> None:
    context = await new_context()
    first = await open_console(context)
    await become_available(first)
    caller = await open_caller(await new_context(phone=True))
    await join_queue(caller)
    await first.get_by_role("button", name="Accept").click()
    await expect(first.locator("#state")).to_have_text("You are in a call")

    second = await context.new_page()
    await second.goto("/console")
    await expect(second.locator("#state")).to_have_text("You are in a call")
    await expect(first.locator("#state")).to_have_text("Not connected")
    await expect(second.locator("#state-detail")).to_contain_text("another window")

    await second.get_by_role("button", name="End that call").click()

    await expect(second.locator("#state")).to_have_text("You are available")
    await expect(second.get_by_role("button", name="End that call")).to_be_hidden()
    await expect(caller).to_have_url(re.compile(r"/call/demo/ended\?reason=interpreter_hung_up$"))
    assert signalling.errors == []
