"""The caller's camera when the device is not ideal: no microphone, and a
camera that cannot promise 20 frames a second."""

from __future__ import annotations

import json

import pytest
from playwright.async_api import expect

from .helpers import NewContext, expect_own_preview, join_queue, open_caller

pytestmark = pytest.mark.browser

# A device with no microphone, whose camera refuses the 20 fps minimum.
AWKWARD_DEVICE_JS = """
if (navigator.mediaDevices) {
    const real = navigator.mediaDevices.getUserMedia.bind(navigator.mediaDevices);
    window.cameraRequests = [];
    navigator.mediaDevices.getUserMedia = (constraints) => {
        window.cameraRequests.push(JSON.stringify(constraints));
        if (constraints.audio) {
            return Promise.reject(new DOMException("No microphone", "NotFoundError"));
        }
        if (constraints.video && constraints.video.frameRate) {
            return Promise.reject(new DOMException("Too slow", "OverconstrainedError"));
        }
        return real(constraints);
    };
}
"""

SIGNING_VIDEO = {
    "width": {"ideal": 640},
    "height": {"ideal": 480},
    "frameRate": {"ideal": 30, "min": 20},
}


async def test_no_microphone_and_a_slow_camera_still_give_video(new_context: NewContext) -> None:
    context = await new_context(phone=True)
    await context.add_init_script(AWKWARD_DEVICE_JS)
    caller = await open_caller(context)
    await expect_own_preview(caller)

    requests = [json.loads(r) for r in await caller.evaluate("window.cameraRequests")]
    assert requests == [
        {"video": SIGNING_VIDEO, "audio": True},
        {"video": SIGNING_VIDEO, "audio": False},
        {"video": True, "audio": False},
    ]
    tracks = await caller.evaluate(
        """() => document.querySelector('video[aria-label="Your camera"]')
            .srcObject.getTracks().map((track) => track.kind)"""
    )
    assert tracks == ["video"]
    await expect(caller.get_by_role("status")).to_contain_text("Your camera is working")
    await join_queue(caller)
