"""A warm handover in real Chromium: a second interpreter is offered the
handover, joins the call beside the first, and the first leaves the call to
them; the caller's page keeps its connection with the second interpreter
(no new peer connection, video and text carry on) and the call has one
charge."""

from __future__ import annotations

import re

from playwright.async_api import Page, expect

from signvideo.auth import hash_password

from .helpers import (
    NewContext,
    Server,
    assert_no_violations,
    connect_call,
    expect_video_flowing,
    sign_in,
)
from .test_hearing_party import expect_media

COLLEAGUE = ("bea@demo.example", "bea-colleague-pw")


async def colleague_console(server: Server, new_context: NewContext) -> Page:
    """A second interpreter, Bea Colleague, signed in and available."""
    await server.execute(
        "WITH u AS (INSERT INTO users (email, display_name, role, password_hash) "
        "VALUES ($1, 'Bea Colleague', 'interpreter', $2) RETURNING id) "
        "INSERT INTO interpreters (user_id, languages, specialisms, category) "
        "SELECT id, '{BSL}', '{}', 'registered' FROM u",
        COLLEAGUE[0],
        hash_password(COLLEAGUE[1]),
    )
    page = await (await new_context()).new_page()
    await sign_in(page, *COLLEAGUE)
    if not page.url.endswith("/console"):
        await page.goto("/console")
    await page.get_by_role("button", name="Make me available").click()
    await expect(page.locator("#state")).to_have_text("You are available")
    return page


async def test_warm_handover_without_a_drop_for_the_caller(
    new_context: NewContext, server: Server
) -> None:
    caller, first = await connect_call(new_context)
    second = await colleague_console(server, new_context)

    await first.get_by_role("button", name="Ask for a handover").click()
    offer = second.get_by_role("region", name="Handover: take over a call")
    await expect(offer).to_be_visible()
    await expect(offer).to_contain_text(
        "Sam Interpreter is asking you to take over a call in progress."
    )
    await assert_no_violations(second, "console offered a handover")
    await expect(first.get_by_role("button", name="Cancel the handover")).to_be_visible()
    await assert_no_violations(first, "console waiting for a handover")

    await second.get_by_role("button", name="Accept").click()
    await expect(second.locator("#state")).to_have_text("You are in a call")
    await expect(second.locator("#colleague-heading")).to_have_text(
        "Sam Interpreter is handing this call over to you. Once they leave, the call is yours."
    )
    await expect(second.get_by_role("button", name="Leave the call")).to_be_visible()
    await expect(first.locator("#colleague-heading")).to_have_text(
        "Bea Colleague has joined to take over. Brief them, then leave the call to them."
    )
    await expect(first.get_by_role("button", name="Hang up")).to_be_hidden()
    await expect(caller.locator("#party-note")).to_have_text(
        "Bea Colleague is joining to take over from Sam Interpreter. Your call carries on."
    )

    # Everyone sees everyone: the caller both interpreters, each interpreter
    # the caller and the other.
    await expect_media(caller, "incomingPc", {"one": ("video",)})
    await expect_media(caller, "pc", {"one": ("video",)})
    await expect_media(first, "colleaguePc", {"one": ("video", "audio")})
    await expect_media(second, "colleaguePc", {"one": ("video", "audio")})
    await expect_media(second, "pc", {"one": ("video",)})
    for page, what in ((caller, "caller"), (first, "first"), (second, "second")):
        await assert_no_violations(page, f"{what} page during a handover")
    # The caller's page reads the newcomer's text only once the call is
    # theirs: until then they cannot type to the caller (nothing is lost).
    await expect(second.locator("#rtt-state")).to_have_text(
        "You can type to the caller once the call is yours."
    )
    await expect(second.get_by_label("Your text")).to_be_disabled()

    # The caller's connection with the second interpreter is the one that stays.
    await caller.evaluate("window.signvideo.incomingPc.__taking_over = true")
    await first.get_by_role("button", name="Leave the call to Bea Colleague").click()

    await expect(caller.locator("#party-note")).to_have_text(
        "Sam Interpreter has handed over to Bea Colleague. Your call carries on."
    )
    await expect(caller.get_by_role("status")).to_contain_text(
        "You are connected with the interpreter, Bea Colleague."
    )
    assert await caller.evaluate("window.signvideo.pc.__taking_over === true")
    await expect_video_flowing(caller, "Interpreter's video")
    await expect(first.locator("#events")).to_contain_text(
        "Call ended: you handed it over to your colleague."
    )
    await expect(second.locator("#events")).to_have_text(
        "Sam Interpreter has left. The call is yours now."
    )
    await expect(second.get_by_role("button", name="Hang up")).to_be_visible()
    # Text carries on with the new interpreter, both ways.
    await caller.get_by_label("Your text").press_sequentially("Thank you")
    await expect(second.locator("#rtt-log")).to_have_text("Thank you")
    await expect(second.get_by_label("Your text")).to_be_enabled()
    await second.get_by_label("Your text").press_sequentially("Hello")
    await expect(caller.locator("#rtt-log")).to_contain_text("Hello")
    for page, what in ((caller, "caller"), (first, "first"), (second, "second")):
        await assert_no_violations(page, f"{what} page after a handover")

    await second.get_by_role("button", name="Hang up").click()
    await expect(caller).to_have_url(re.compile(r"/call/demo/ended"))
    assert (
        await server.execute(
            "SELECT count(*) FROM ledger l JOIN calls c ON c.id = l.call_id "
            "JOIN users u ON u.id = c.interpreter_id WHERE u.email = $1",
            COLLEAGUE[0],
        )
        == 1
    )
