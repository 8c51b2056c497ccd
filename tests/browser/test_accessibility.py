"""axe-core finds no WCAG problems on any page, in each state a person sees,
and an incoming call is signalled without sound."""

from __future__ import annotations

import re

import pytest
from playwright.async_api import expect

from .helpers import (
    ADMIN,
    FINANCE,
    NewContext,
    Server,
    assert_big_enough,
    assert_no_violations,
    become_available,
    expect_own_preview,
    join_queue,
    open_caller,
    open_console,
    sign_in,
)

pytestmark = pytest.mark.browser

# Stand-in for a person choosing Block when the browser asks to use the camera.
REFUSE_CAMERA_JS = """
if (navigator.mediaDevices) {
    navigator.mediaDevices.getUserMedia = () =>
        Promise.reject(new DOMException("Permission denied", "NotAllowedError"));
}
"""


async def test_caller_pages(new_context: NewContext) -> None:
    caller = await open_caller(await new_context(phone=True))
    await expect_own_preview(caller)
    await expect(caller.get_by_role("status")).to_contain_text("Your camera is working")
    await assert_big_enough(caller, "Join the queue")
    await assert_no_violations(caller, "caller page before joining")

    await join_queue(caller)
    await assert_big_enough(caller, "Leave the queue")
    await expect(caller.get_by_role("button", name="Join the queue")).to_be_hidden()
    await assert_no_violations(caller, "caller page while queued")

    await caller.get_by_role("button", name="Leave the queue").click()
    await expect(caller).to_have_url(re.compile(r"/call/demo/ended\?reason=caller_left$"))
    await assert_no_violations(caller, "call ended page")


async def test_caller_page_when_the_camera_is_refused(new_context: NewContext) -> None:
    context = await new_context(phone=True)
    await context.add_init_script(REFUSE_CAMERA_JS)
    page = await context.new_page()
    await page.goto("/call/demo")

    problem = page.get_by_role("heading", name="Your camera is not working")
    await expect(problem).to_be_visible()
    await expect(page.locator("#camera-problem")).to_contain_text("Allow for the camera")
    await expect(page.get_by_role("status")).to_contain_text("cannot join the queue")
    await expect(page.get_by_role("button", name="Join the queue")).to_be_disabled()
    await assert_no_violations(page, "caller page, camera refused")


async def test_public_and_sign_in_pages(new_context: NewContext) -> None:
    page = await (await new_context()).new_page()
    for path, what in (("/", "home page"), ("/help", "help page"), ("/privacy", "privacy page")):
        await page.goto(path)
        await assert_no_violations(page, what)

    response = await page.goto("/no-such-page")
    assert response is not None and response.status == 404
    await assert_no_violations(page, "error page")

    await page.goto("/login")
    await assert_no_violations(page, "sign-in page")

    await page.get_by_label("Email address").fill("interpreter@demo.example")
    await page.get_by_label("Password").fill("not the password")
    await page.get_by_role("button", name="Sign in").click()
    summary = page.get_by_role("alert").filter(has_text="There is a problem")
    await expect(summary).to_be_visible()
    await expect(summary).to_be_focused()
    await expect(page).to_have_title(re.compile(r"^Error: "))
    await expect(summary.get_by_role("link")).to_have_attribute("href", "#email")
    await expect(page.get_by_label("Email address")).to_have_value("interpreter@demo.example")
    await expect(page.get_by_label("Email address")).to_have_attribute("aria-invalid", "true")
    await assert_no_violations(page, "sign-in page with an error")

    await sign_in(page, *FINANCE)
    await page.goto("/finance")
    await expect(page.get_by_role("button", name="Download usage")).to_be_visible()
    await assert_no_violations(page, "finance page")

    await page.goto("/finance/usage?authority=demo&period=dates&from=2026-02-02&to=2026-01-01")
    summary = page.get_by_role("alert").filter(has_text="There is a problem")
    await expect(summary).to_be_visible()
    await expect(summary).to_be_focused()
    await assert_no_violations(page, "finance page with an error")

    await page.get_by_role("link", name="Service levels").click()
    await expect(page.get_by_role("heading", level=1)).to_contain_text("Demo Borough Council")
    await expect(
        page.get_by_role("img", name=re.compile("^Minutes of interpreting"))
    ).to_be_visible()
    await assert_no_violations(page, "dashboard")
    await page.get_by_role("link", name="Service levels in detail").click()
    await expect(page.get_by_role("table")).to_be_visible()
    await assert_no_violations(page, "service levels")
    await page.goto("/reports/service-levels?authority=demo&by=week")
    await expect(page.get_by_role("alert")).to_contain_text("'by' must be one of")
    await assert_no_violations(page, "service levels with an error")

    await page.goto("/finance")
    await page.get_by_role("link", name="API token").click()
    await assert_no_violations(page, "API tokens")
    await page.get_by_label("What the token is for").fill("Monthly import")
    await page.get_by_role("button", name="Make a token").click()
    await expect(page.locator("#token")).to_contain_text("svt_")
    await expect(page.get_by_role("cell", name="Monthly import", exact=True)).to_be_visible()
    await assert_no_violations(page, "API tokens with a new one shown")


async def test_administration_pages(server: Server, new_context: NewContext) -> None:
    # A standing charge from January 2026, so that January is the month due.
    await server.execute(
        """INSERT INTO rate_cards (authority_id, effective_from, in_hours_pence_per_minute,
                                   out_of_hours_pence_per_minute, bank_holiday_pence_per_minute,
                                   billing_increment_seconds, monthly_standing_charge_pence)
           SELECT id, '2026-01-01', 150, 150, 150, 60, 1000 FROM authorities
           WHERE slug = 'demo'"""
    )
    page = await (await new_context()).new_page()
    await sign_in(page, *ADMIN)
    # Signing in lands an operator administrator on the administration page.
    await expect(page).to_have_url(re.compile(r"/admin$"))
    await expect(page.get_by_role("heading", name="Administration")).to_be_visible()
    await assert_no_violations(page, "administration page")

    await page.get_by_role("link", name="Audit log").click()
    table = page.get_by_role("table", name="Audit log entries, newest first")
    await expect(table.get_by_role("row").filter(has_text="admin@demo.example")).to_have_count(1)
    await assert_no_violations(page, "audit log")

    await page.goto("/admin/authorities")
    await assert_no_violations(page, "authorities")
    await page.get_by_role("link", name="Demo Borough Council").click()
    await expect(page.get_by_label("Guaranteed answer time in seconds")).to_have_value("60")
    await assert_no_violations(page, "an authority's settings")
    await page.get_by_label("Name", exact=True).fill("")
    await page.get_by_label("Monday opening hours").fill("nine till five")
    await page.get_by_role("button", name="Save changes").click()
    summary = page.get_by_role("alert").filter(has_text="There is a problem")
    await expect(summary).to_be_focused()
    await expect(summary.get_by_role("link")).to_have_count(2)
    await expect(page.get_by_label("Monday opening hours")).to_have_attribute(
        "aria-invalid", "true"
    )
    await assert_no_violations(page, "an authority's settings with errors")

    await page.get_by_role("link", name="Rates and cost centres").click()
    await expect(page.get_by_role("cell", name="In force")).to_be_visible()
    await assert_no_violations(page, "rates and cost centres")
    await page.get_by_label("VAT rate, per cent").fill("twenty")
    await page.get_by_role("button", name="Add the rate card").click()
    summary = page.get_by_role("alert").filter(has_text="There is a problem")
    await expect(summary).to_be_focused()
    await expect(page.get_by_label("VAT rate, per cent")).to_have_attribute("aria-invalid", "true")
    await assert_no_violations(page, "a rate card with errors")

    await page.goto("/finance/invoices/demo")
    await assert_no_violations(page, "invoices")
    await page.goto("/finance/invoices/demo/2026-02")
    await expect(page.get_by_role("link", name="January 2026")).to_be_visible()
    await page.goto("/finance/invoices/demo/2026-01")
    await expect(page.get_by_role("button", name="Issue invoice for January 2026")).to_be_visible()
    await page.get_by_role("button", name="Give the credit").click()
    await expect(page.get_by_role("alert").filter(has_text="There is a problem")).to_be_focused()
    await assert_no_violations(page, "a draft invoice with a credit's errors")
    await page.get_by_role("button", name="Issue invoice for January 2026").click()
    await expect(page.get_by_role("heading", level=1)).to_have_text("Invoice DEMO-0001")
    await assert_no_violations(page, "an issued invoice")

    await page.goto("/admin/interpreters")
    await assert_no_violations(page, "interpreters")
    await page.get_by_role("link", name="Sam Interpreter").click()
    await expect(page.get_by_role("checkbox", name="Health", exact=True)).to_be_checked()
    await assert_no_violations(page, "an interpreter's skills")

    await page.goto("/admin/identity-providers")
    await page.get_by_label("Name people see").fill("Demo staff account")
    await page.get_by_label("Issuer URL").fill("not a web address")
    await page.get_by_role("button", name="Add the provider").click()
    await expect(page.get_by_role("alert")).to_contain_text("must be a web address")
    await assert_no_violations(page, "identity providers with errors")

    await page.goto("/admin/users")
    await assert_no_violations(page, "staff accounts")
    await page.get_by_role("link", name="Add a staff account").click()
    await page.get_by_label("Email address").fill("new.person@example.org")
    await page.get_by_label("Name", exact=True).fill("New Person")
    await page.get_by_role("radio", name=re.compile("^Supervisor")).check()
    await page.get_by_role("button", name="Add the account").click()
    link = page.locator("#link")
    await expect(link).to_contain_text("/password/")
    await assert_no_violations(page, "a one-time link")
    path = "/password/" + (await link.text_content() or "").split("/password/", 1)[1]

    newcomer = await (await new_context()).new_page()
    await newcomer.goto(path)
    await expect(newcomer.get_by_role("heading", name="Choose your password")).to_be_visible()
    await assert_no_violations(newcomer, "choosing a password")
    await newcomer.get_by_label("New password").fill("three random words")
    await newcomer.get_by_label("The same password again").fill("three random word")
    await newcomer.get_by_role("button", name="Save my password").click()
    await expect(newcomer.get_by_role("alert")).to_contain_text("not the same")
    await assert_no_violations(newcomer, "choosing a password, with an error")
    await newcomer.get_by_label("New password").fill("three random words")
    await newcomer.get_by_label("The same password again").fill("three random words")
    await newcomer.get_by_role("button", name="Save my password").click()
    await expect(newcomer.get_by_text("Signed in as New Person")).to_be_visible()

    await page.get_by_role("button", name="Sign out").click()
    await expect(page.get_by_role("link", name="Staff sign in")).to_be_visible()


async def test_console_states_and_the_offer_is_seen_without_sound(new_context: NewContext) -> None:
    console = await open_console(await new_context())
    await expect(console).to_have_title(re.compile(r"^Interpreter console"))
    await assert_no_violations(console, "console, offline")

    await become_available(console)
    await assert_no_violations(console, "console, available")

    caller = await open_caller(await new_context(phone=True))
    await join_queue(caller)

    offer = console.get_by_role("region", name="Incoming call")
    await expect(offer).to_be_visible()
    await expect(offer.get_by_role("heading", name="Incoming call")).to_be_visible()
    await expect(offer).to_contain_text("Demo Borough Council")
    await expect(offer).to_contain_text(re.compile(r"waited \d+ seconds?"))
    await expect(console.locator("#offer-countdown")).to_have_text(
        re.compile(r"^\d+ seconds? left to accept$")
    )
    await expect(console).to_have_title(re.compile(r"^Incoming call"))
    await expect(console.get_by_role("button", name="Accept")).to_be_focused()
    await expect(console.locator("#state")).to_have_text("A call is being offered to you")
    background = await offer.evaluate("panel => getComputedStyle(panel).backgroundColor")
    assert background == "rgb(255, 221, 0)", background
    await assert_big_enough(console, "Accept")
    await assert_big_enough(console, "Decline")
    await assert_no_violations(console, "console with an offer")

    # The countdown really counts down.
    first = await console.locator("#offer-countdown").text_content()
    await expect(console.locator("#offer-countdown")).not_to_have_text(first or "")

    await console.get_by_role("button", name="Decline").click()
    await expect(offer).to_be_hidden()
    await expect(console).to_have_title(re.compile(r"^Interpreter console"))
    await expect(console.get_by_role("status")).to_contain_text("You declined the call")
    await expect(console.locator("#state")).to_have_text("You are available")
    await expect(caller.get_by_role("status")).to_contain_text("You are number 1 in the queue")
