"""A hearing party in real Chromium: the interpreter makes a one-time link, a
hearing person joins from it with their microphone and camera, every page
decodes the others' media, and the interpreter removes them."""

from __future__ import annotations

import asyncio
import re
from typing import Any

from playwright.async_api import Page, expect

from .helpers import (
    NewContext,
    assert_no_violations,
    connect_call,
    drop_connection,
    expect_new_peer_connection,
    mark_peer_connection,
)

# Frames (video) or samples (audio) received so far on the peer connection
# `window.signvideo[key]` (or on each of window.signvideo.pcs).
MEDIA_RECEIVED_JS = """async (key) => {
    const state = window.signvideo || {};
    const pcs = key === "pcs" ? state.pcs || {} : {one: state[key]};
    const found = {};
    for (const [party, pc] of Object.entries(pcs)) {
        if (!pc) continue;
        const stats = await pc.getStats();
        const got = {video: 0, audio: 0};
        stats.forEach((s) => {
            if (s.type !== "inbound-rtp") return;
            if (s.kind === "video") got.video += s.framesDecoded || 0;
            if (s.kind === "audio") got.audio += s.totalSamplesReceived || 0;
        });
        found[party] = got;
    }
    return found;
}"""


async def media_received(page: Page, key: str) -> dict[str, dict[str, int]]:
    found: dict[str, dict[str, int]] = await asyncio.wait_for(
        page.evaluate(MEDIA_RECEIVED_JS, key), 5
    )
    return found


async def expect_media(page: Page, key: str, kinds: dict[str, tuple[str, ...]]) -> None:
    """Each named connection's video frames (or audio samples) keep growing."""

    def growing(before: dict[str, Any], after: dict[str, Any]) -> bool:
        return all(
            party in before
            and party in after
            and all(after[party][kind] > before[party][kind] > 0 for kind in wanted)
            for party, wanted in kinds.items()
        )

    before = await media_received(page, key)
    for _ in range(60):
        await asyncio.sleep(0.5)
        after = await media_received(page, key)
        if growing(before, after):
            return
        before = after
    raise AssertionError(f"{page.url}: media not flowing on {key}: {before}")


async def test_a_hearing_person_joins_by_link_and_is_removed(new_context: NewContext) -> None:
    caller, console = await connect_call(new_context)

    await console.get_by_role("button", name="Make an invitation link").click()
    link = console.get_by_label("Invitation link")
    await expect(link).to_have_value(re.compile(r"/guest/[A-Za-z0-9_-]{20,}$"))
    await expect(console.locator("#guest-link-hint")).to_contain_text("It works once, until")
    await assert_no_violations(console, "console with an invitation link")
    url = await link.input_value()

    guest = await (await new_context()).new_page()
    await guest.goto(url)
    await expect(guest.get_by_role("heading", level=1)).to_have_text(
        "Join a call with a sign language interpreter"
    )
    await assert_no_violations(guest, "guest page before joining")
    # A name is needed, and asked for in words.
    await guest.get_by_role("button", name="Join the call").click()
    await expect(guest.get_by_role("alert")).to_contain_text("Enter your name and role")
    await guest.get_by_label("Your name and role").fill("Sam Patel, housing officer")
    await guest.get_by_role("button", name="Join the call").click()

    await expect(guest.get_by_role("status")).to_contain_text("You are in the call", timeout=15_000)
    await expect(console.locator("#guest-heading")).to_have_text(
        "Sam Patel, housing officer (hearing person) is in the call."
    )
    await expect(caller.locator("#party-note")).to_contain_text(
        "Sam Patel, housing officer, a hearing person, has joined the call."
    )
    await expect(caller.get_by_text("Sam Patel, housing officer (hearing person)")).to_be_visible()

    # Every party decodes the others' media: the guest hears and sees the
    # interpreter and sees the caller; the interpreter hears and sees the
    # guest; the caller sees the guest (and the interpreter, as before).
    parties = await guest.evaluate("Object.entries(window.signvideo.roles)")
    by_role = {role: party for party, role in parties}
    await expect_media(
        guest,
        "pcs",
        {by_role["interpreter"]: ("video", "audio"), by_role["caller"]: ("video",)},
    )
    await expect_media(console, "guestPc", {"one": ("video", "audio")})
    await expect_media(caller, "guestPc", {"one": ("video",)})
    await expect_media(caller, "pc", {"one": ("video",)})
    await assert_no_violations(guest, "guest page in the call")
    await assert_no_violations(console, "console with a hearing person in the call")
    await assert_no_violations(caller, "caller page with a hearing person in the call")

    # The interpreter's console drops and comes back: it makes a new
    # connection with the caller, and the caller's connection with the
    # hearing person carries on untouched.
    await mark_peer_connection(caller)
    await caller.evaluate("window.signvideo.guestPc.__kept = true")
    await drop_connection(console, block=False)
    await expect_new_peer_connection(caller)
    assert await caller.evaluate("window.signvideo.guestPc.__kept === true")
    await expect_media(caller, "guestPc", {"one": ("video",)})
    await expect_media(caller, "pc", {"one": ("video",)})

    await console.get_by_role(
        "button", name="Remove Sam Patel, housing officer from the call"
    ).click()
    await expect(guest.get_by_role("status")).to_have_text(
        "The interpreter has taken you out of the call. You can close this page."
    )
    await expect(caller.locator("#party-note")).to_have_text(
        "Sam Patel, housing officer has left the call."
    )
    await expect(console.locator("#events")).to_have_text(
        "You removed Sam Patel, housing officer from the call."
    )
    await expect(console.get_by_role("button", name="Make a new link")).to_be_visible()
    await assert_no_violations(guest, "guest page after removal")
    # The call goes on between the caller and the interpreter.
    await expect_media(caller, "pc", {"one": ("video",)})

    # Another hearing person joins without a camera: sound alone.
    await console.get_by_role("button", name="Make a new link").click()
    await expect(link).not_to_have_value(url)
    second_url = await link.input_value()
    assert "/guest/" in second_url
    voice = await (await new_context()).new_page()
    await voice.goto(second_url)
    await voice.get_by_label("Your name and role").fill("Alex Jones, social worker")
    await voice.get_by_label(re.compile("Share my camera too")).uncheck()
    await voice.get_by_role("button", name="Join the call").click()
    await expect(voice.get_by_role("status")).to_contain_text("You are in the call", timeout=15_000)
    await expect_media(console, "guestPc", {"one": ("audio",)})
    sent = await voice.evaluate(
        "Object.values(window.signvideo.pcs).map(pc => pc.getSenders()"
        ".filter(s => s.track).map(s => s.track.kind).sort().join())"
    )
    assert sent == ["audio", "audio"], sent

    # The link was for one use.
    used = await (await new_context()).new_page()
    response = await used.goto(url)
    assert response is not None and response.status == 410
    await expect(used.get_by_role("heading", level=1)).to_have_text(
        "This link has been used already"
    )
    await assert_no_violations(used, "a used invitation link")
    unknown = await used.goto("/guest/" + "x" * 32)
    assert unknown is not None and unknown.status == 404
    await expect(used.get_by_role("heading", level=1)).to_have_text("This link does not work")
    await assert_no_violations(used, "an unknown invitation link")
