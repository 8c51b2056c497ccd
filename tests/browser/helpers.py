"""Steps the browser tests share: signing in, the console, the caller page."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from playwright.async_api import BrowserContext, Page, WebSocket, expect

INTERPRETER = ("interpreter@demo.example", "interpret-demo")
FINANCE = ("finance@demo.example", "finance-demo")


class NewContext(Protocol):
    """The new_context fixture: a browser context (one person's cookie jar) on the test server."""

    def __call__(self, *, phone: bool = False) -> Awaitable[BrowserContext]: ...


@dataclass(frozen=True)
class Server:
    base_url: str
    log_path: Path

    def url(self, path: str) -> str:
        return self.base_url + path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


@dataclass
class SignallingLog:
    """The protocol messages the pages exchanged, for assertions and for reading failures."""

    lines: list[str] = field(default_factory=list)
    errors: list[dict[str, Any]] = field(default_factory=list)

    def watch(self, page: Page, name: str) -> None:
        page.on("websocket", lambda socket: self._watch_socket(socket, name))

    def _watch_socket(self, socket: WebSocket, name: str) -> None:
        path = socket.url.split("/", 3)[-1]
        socket.on("framesent", lambda payload: self._record(f"[{name} /{path}] ->", payload))
        socket.on("framereceived", lambda payload: self._record(f"[{name} /{path}] <-", payload))
        socket.on("close", lambda _: self.lines.append(f"[{name} /{path}] closed"))

    def _record(self, prefix: str, payload: str | bytes) -> None:
        text = payload if isinstance(payload, str) else payload.decode(errors="replace")
        # SDP and candidates are long and say little here.
        self.lines.append(f"{prefix} {text[:160]}")
        try:
            message = json.loads(text)
        except ValueError:
            return
        if prefix.endswith("<-") and isinstance(message, dict) and message.get("type") == "error":
            self.errors.append(message)


async def sign_in(page: Page, email: str, password: str) -> None:
    await page.goto("/login")
    await page.get_by_label("Email address").fill(email)
    await page.get_by_label("Password").fill(password)
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.get_by_role("button", name="Sign out")).to_be_visible()


async def open_console(context: BrowserContext) -> Page:
    """A signed-in interpreter's console, connected and showing they are unavailable."""
    page = await context.new_page()
    await sign_in(page, *INTERPRETER)
    if not page.url.endswith("/console"):
        await page.goto("/console")
    await expect(page.locator("#state")).to_have_text("You are unavailable")
    return page


async def become_available(console: Page) -> None:
    await console.get_by_role("button", name="Make me available").click()
    await expect(console.locator("#state")).to_have_text("You are available")
    await expect(console.get_by_role("button", name="Make me unavailable")).to_be_enabled()


async def open_caller(context: BrowserContext, slug: str = "demo") -> Page:
    """The caller page with the camera preview running, ready to join."""
    page = await context.new_page()
    await page.goto(f"/call/{slug}")
    await page.wait_for_function("() => window.signvideo && window.signvideo.state === 'ready'")
    return page


async def join_queue(caller: Page) -> None:
    await caller.get_by_role("button", name="Join the queue").click()
    await expect(caller.get_by_role("status")).to_contain_text("You are number 1 in the queue")


async def expect_own_preview(page: Page) -> None:
    """The page shows the person's own camera."""
    await page.wait_for_function(
        """() => {
            const video = document.querySelector('video[aria-label="Your camera"]');
            return video !== null && video.videoWidth > 0 && !video.paused;
        }"""
    )


FRAMES_DECODED_JS = """async () => {
    const pc = window.signvideo && window.signvideo.pc;
    if (!pc) return 0;
    const stats = await pc.getStats();
    let frames = 0;
    stats.forEach((report) => {
        if (report.type === "inbound-rtp" && report.kind === "video") {
            frames += report.framesDecoded || 0;
        }
    });
    return frames;
}"""


async def frames_decoded(page: Page) -> int:
    return int(await page.evaluate(FRAMES_DECODED_JS))


async def expect_video_flowing(page: Page, label: str, timeout_s: float = 15.0) -> float:
    """The remote <video> named `label` shows a picture and keeps decoding frames.

    Returns the frames decoded per second over about one second.
    """
    await page.wait_for_function(
        """(label) => {
            const video = document.querySelector(`video[aria-label="${label}"]`);
            return video !== null && video.videoWidth > 0;
        }""",
        arg=label,
        timeout=timeout_s * 1000,
    )
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while (first := await frames_decoded(page)) == 0:
        assert loop.time() < deadline, f"{label}: no video frames decoded"
        await asyncio.sleep(0.1)
    started = loop.time()
    await asyncio.sleep(1.0)  # the measuring window, not a wait for something to happen
    last = await frames_decoded(page)
    elapsed = loop.time() - started
    rate = (last - first) / elapsed
    assert last - first >= 5, (
        f"{label}: framesDecoded went from {first} to {last} in {elapsed:.1f} s"
    )
    return rate
