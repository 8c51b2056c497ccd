"""What a caller sees before joining: a closed service, the wait, a full
queue, and the choice of sign language."""

from __future__ import annotations

import datetime as dt
import json
import re
from zoneinfo import ZoneInfo

import pytest
from playwright.async_api import Page, expect

from .helpers import (
    ALWAYS_OPEN,
    NEVER_OPEN,
    NewContext,
    Server,
    SignallingLog,
    add_authority,
    assert_no_violations,
    become_available,
    expect_own_preview,
    join_queue,
    open_caller,
    open_console,
)

pytestmark = pytest.mark.browser

NO_INTERPRETER = (
    "No interpreter is available right now. "
    "You can still join the queue and wait, or try again later."
)
QUEUE_FULL = "The queue is full. Please try again in a few minutes."
WAIT = r"The expected wait is (less than a minute|about \d+ minutes?)\."
EXPECTED_WAIT = re.compile(r"Expected wait: (less than a minute|about \d+ minutes?)\.")


def sent_messages(signalling: SignallingLog, type_: str) -> list[dict[str, object]]:
    """The messages of one type the pages sent (each is short enough to be logged whole)."""
    found = []
    for line in signalling.lines:
        if "] -> " not in line:
            continue
        try:
            message = json.loads(line.split("] -> ", 1)[1])
        except ValueError:
            continue
        if message.get("type") == type_:
            found.append(message)
    return found


async def open_closed_page(page: Page, slug: str) -> None:
    response = await page.goto(f"/call/{slug}")
    assert response is not None and response.status == 200


async def test_a_closed_service_says_so_and_offers_no_join(
    server: Server, new_context: NewContext
) -> None:
    await add_authority(server, "closed-council", "Closed Council", opening_hours=NEVER_OPEN)
    page = await (await new_context(phone=True)).new_page()
    await open_closed_page(page, "closed-council")

    closed = page.get_by_role("region", name="This service is closed now")
    await expect(closed).to_be_visible()
    await expect(closed).to_contain_text("Outside opening hours.")
    await expect(closed).to_contain_text("We do not know yet when it will open again.")
    await expect(closed.get_by_role("heading", name="Opening hours")).to_be_visible()
    await expect(closed.get_by_role("listitem")).to_have_count(7)
    await expect(closed.get_by_role("listitem").first).to_have_text("Monday: closed")
    await expect(page).to_have_title(re.compile(r"^Closed now: "))
    await expect(page.get_by_role("button", name="Join the queue")).to_have_count(0)
    # The camera check still works, so the caller can be ready for next time.
    await expect_own_preview(page)
    await expect(page.get_by_role("status")).to_contain_text(
        "You can join the queue when the service opens."
    )
    await assert_no_violations(page, "caller page, service closed")


async def test_a_closure_gives_its_reason_and_the_next_opening(
    server: Server, new_context: NewContext
) -> None:
    authority_id = await add_authority(
        server, "training-day", "Training Day Council", opening_hours=ALWAYS_OPEN
    )
    today = dt.datetime.now(ZoneInfo("Europe/London")).date()
    await server.execute(
        """INSERT INTO authority_closures (authority_id, first_day, last_day, reason)
           VALUES ($1, $2, $3, 'staff training')""",
        authority_id,
        today - dt.timedelta(days=1),
        today + dt.timedelta(days=1),
    )
    # Server-rendered: it says all this without JavaScript too.
    page = await (await new_context(phone=True, javascript=False)).new_page()
    await open_closed_page(page, "training-day")

    closed = page.get_by_role("region", name="This service is closed now")
    await expect(closed).to_contain_text("Closed: staff training.")
    await expect(closed).to_contain_text(re.compile(r"It opens again on \w+day \d+ \w+ at 12am\."))
    await expect(page.get_by_role("button", name="Join the queue")).to_have_count(0)

    # axe needs JavaScript to run.
    page = await (await new_context(phone=True)).new_page()
    await open_closed_page(page, "training-day")
    await expect(page.get_by_role("region", name="This service is closed now")).to_be_visible()
    await assert_no_violations(page, "caller page, closed for a day")


async def test_the_wait_before_joining(
    server: Server, new_context: NewContext, signalling: SignallingLog
) -> None:
    caller = await open_caller(await new_context(phone=True))
    checks: list[str] = []
    caller.on("request", lambda request: checks.append(request.url))
    wait = caller.locator("#wait")
    await expect(wait).to_have_text(NO_INTERPRETER)
    await expect(caller.get_by_role("button", name="Join the queue")).to_be_enabled()
    await assert_no_violations(caller, "caller page, no interpreter on duty")

    console = await open_console(await new_context())
    await become_available(console)

    # The page asks again every 15 seconds.
    await expect(wait).to_have_text(re.compile(rf"^Nobody is waiting\. {WAIT}$"), timeout=17_000)
    assert server.url("/api/v1/authorities/demo/availability?language=BSL") in checks, checks

    await join_queue(caller)
    await expect(caller.get_by_role("status")).to_contain_text(EXPECTED_WAIT)
    assert signalling.errors == []


async def test_queued_with_no_interpreter_on_duty_shows_no_expected_wait(
    new_context: NewContext, signalling: SignallingLog
) -> None:
    first = await open_caller(await new_context(phone=True))
    await join_queue(first)
    status = first.get_by_role("status")
    await expect(status).to_contain_text("You are number 1 in the queue. You are next.")
    await expect(status).not_to_contain_text("Expected wait")

    second = await open_caller(await new_context(phone=True))
    await expect(second.locator("#wait")).to_have_text(NO_INTERPRETER)
    assert signalling.errors == []


async def test_a_full_queue(
    server: Server, new_context: NewContext, signalling: SignallingLog
) -> None:
    await server.execute("UPDATE authorities SET max_queue_length = 1 WHERE slug = 'demo'")
    late = await open_caller(await new_context(phone=True))
    join = late.get_by_role("button", name="Join the queue")
    await expect(join).to_be_enabled()

    first = await open_caller(await new_context(phone=True))
    await join_queue(first)

    # The page did not know yet: the server refuses the join, in plain words.
    await join.click()
    await expect(late.get_by_role("alert")).to_have_text(QUEUE_FULL)
    await expect(late.get_by_role("status")).to_contain_text("You are not in the queue.")
    await expect(join).to_be_disabled()
    assert [error["code"] for error in signalling.errors] == ["queue_full"]

    # A page opened now says so before anyone tries.
    page = await (await new_context(phone=True)).new_page()
    await page.goto("/call/demo")
    await expect(page.locator("#wait")).to_have_text(QUEUE_FULL)
    await expect(page.get_by_role("status")).to_contain_text("The queue is full")
    await expect(page.get_by_role("button", name="Join the queue")).to_be_disabled()
    await assert_no_violations(page, "caller page, queue full")


async def test_choosing_a_sign_language_and_a_specialism(
    server: Server, new_context: NewContext, signalling: SignallingLog
) -> None:
    await add_authority(
        server,
        "two-languages",
        "Two Languages Council",
        opening_hours=ALWAYS_OPEN,
        languages=("BSL", "ISL"),
    )
    caller = await open_caller(await new_context(phone=True), "two-languages", "?specialism=health")
    group = caller.get_by_role("group", name="Which sign language do you use?")
    await expect(group).to_be_visible()
    bsl = group.get_by_label("British Sign Language (BSL)")
    isl = group.get_by_label("Irish Sign Language (ISL)")
    await expect(bsl).to_be_checked()
    await assert_no_violations(caller, "caller page with a choice of language")

    await isl.check()
    await join_queue(caller)

    await expect(isl).to_be_disabled()
    joins = sent_messages(signalling, "join")
    assert len(joins) == 1, joins
    assert joins[0]["authority"] == "two-languages"
    assert joins[0]["language"] == "ISL"
    assert joins[0]["specialism"] == "health"
    assert signalling.errors == []


async def test_one_language_needs_no_choice(
    new_context: NewContext, signalling: SignallingLog
) -> None:
    caller = await open_caller(await new_context(phone=True))
    await expect(caller.get_by_role("radio")).to_have_count(0)
    await join_queue(caller)
    (join,) = sent_messages(signalling, "join")
    assert join["language"] == "BSL" and "specialism" not in join, join


async def test_a_service_that_closes_while_the_page_is_open(
    server: Server, new_context: NewContext, signalling: SignallingLog
) -> None:
    await add_authority(server, "closing-time", "Closing Time Council", opening_hours=ALWAYS_OPEN)
    caller = await open_caller(await new_context(phone=True), "closing-time")
    join = caller.get_by_role("button", name="Join the queue")
    await expect(join).to_be_enabled()
    await server.execute(
        "UPDATE authorities SET opening_hours = $1::jsonb WHERE slug = 'closing-time'",
        json.dumps(NEVER_OPEN),
    )

    await join.click()

    # The server's words are already plain.
    alert = caller.get_by_role("alert")
    await expect(alert).not_to_be_empty()
    await expect(caller.get_by_role("status")).to_contain_text("You are not in the queue.")
    await expect(caller.get_by_role("status")).to_contain_text(
        "You can join the queue when the service opens."
    )
    await expect(join).to_be_disabled()
    await expect(caller.locator("#wait")).to_have_text(re.compile(r"^The service has closed\."))
    assert [error["code"] for error in signalling.errors] == ["closed"]
    (error,) = signalling.errors
    assert await alert.text_content() == error["message"]
