"""The pre-call check: the caller's page makes a short test call to an aiortc
peer in the service, which measures the video it receives; the page says how
it compares with what signing needs. The service's peer reaches the browser
through a real coturn (this host has only a loopback address, which aiortc
does not offer as a candidate)."""

from __future__ import annotations

import re

import pytest
from playwright.async_api import expect

from tests.turn_server import Turn

from .helpers import NewContext, assert_no_violations, open_caller


@pytest.fixture
def server_env(server_env: dict[str, str], coturn: Turn) -> dict[str, str]:
    return {**server_env, "SIGNVIDEO_TURN_URLS": coturn.url, "SIGNVIDEO_TURN_SECRET": coturn.secret}


async def test_the_check_reports_figures_from_a_real_test_call(new_context: NewContext) -> None:
    caller = await open_caller(await new_context(phone=True))
    await caller.get_by_role("button", name="Check my video").click()
    result = caller.locator("#check-result")
    await expect(result).to_contain_text("Checking your video")
    await expect(result).to_have_attribute("data-verdict", re.compile("^(good|enough|too_low)$"))
    # Chromium's fake camera sends 640x480; the service measured what arrived.
    assert await result.get_attribute("data-size") == "640x480"
    fps = float(await result.get_attribute("data-fps") or "0")
    assert fps > 0
    text = await result.inner_text()
    assert re.search(
        r"We received \d+ frames a second, 640 \u00d7 480 pixels, \d+ ms delay\.", text
    )
    assert "Signing needs at least 20 frames a second" in text
    await assert_no_violations(caller, "caller page after the video check")
    # The check is optional and leaves the page ready to join.
    await expect(caller.get_by_role("button", name="Join the queue")).to_be_enabled()
    await expect(caller.get_by_role("button", name="Check my video again")).to_be_enabled()
