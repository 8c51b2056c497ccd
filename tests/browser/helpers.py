"""Steps the browser tests share: signing in, the console, the caller page."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Awaitable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import asyncpg
from axe_playwright_python.async_playwright import Axe
from playwright.async_api import Browser, BrowserContext, Page, WebSocket, expect

INTERPRETER = ("interpreter@demo.example", "interpret-demo")
FINANCE = ("finance@demo.example", "finance-demo")
ADMIN = ("admin@demo.example", "admin-demo")


class NewContext(Protocol):
    """The new_context fixture: a browser context (one person's cookie jar) on the test server."""

    def __call__(
        self, *, phone: bool = False, javascript: bool = True
    ) -> Awaitable[BrowserContext]: ...


axe = Axe()


async def person_context(
    browser: Browser, base_url: str, *, phone: bool = False, javascript: bool = True
) -> BrowserContext:
    """A browser context for one person (their own cookie jar), allowed the
    camera and microphone. Callers are often on phones: a phone-sized, touch
    screen."""
    return await browser.new_context(
        base_url=base_url,
        permissions=["camera", "microphone"],
        viewport={"width": 390, "height": 844} if phone else {"width": 1280, "height": 900},
        is_mobile=phone,
        has_touch=phone,
        java_script_enabled=javascript,
    )


async def assert_no_violations(page: Page, what: str) -> None:
    results = await axe.run(page)
    assert results.violations_count == 0, f"{what} ({page.url}):\n{results.generate_report()}"


async def assert_big_enough(page: Page, name: str) -> None:
    """The main buttons are at least 44 by 44 CSS pixels."""
    box = await page.get_by_role("button", name=name).bounding_box()
    assert box is not None, name
    assert box["width"] >= 44 and box["height"] >= 44, (name, box)


@dataclass(frozen=True)
class Server:
    base_url: str
    log_path: Path
    database_url: str

    def url(self, path: str) -> str:
        return self.base_url + path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    async def execute(self, sql: str, *args: Any) -> Any:
        """Run one statement on the server's database; returns fetchval's result."""
        con = await asyncpg.connect(self.database_url)
        try:
            return await con.fetchval(sql, *args)
        finally:
            await con.close()


DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
ALWAYS_OPEN = {day: [["00:00", "24:00"]] for day in DAYS}
NEVER_OPEN: dict[str, list[list[str]]] = {day: [] for day in ALWAYS_OPEN}


async def add_authority(
    server: Server,
    slug: str,
    name: str,
    *,
    opening_hours: dict[str, list[list[str]]],
    languages: tuple[str, ...] = ("BSL",),
) -> int:
    """An authority straight into the database (the service has no admin pages yet)."""
    return int(
        await server.execute(
            """WITH a AS (
                   INSERT INTO authorities (slug, name, answer_seconds, opening_hours, nation,
                                            closed_on_bank_holidays, languages)
                   VALUES ($1, $2, 60, $3::jsonb, 'england-and-wales', false, $4)
                   RETURNING id),
               card AS (
                   INSERT INTO rate_cards (authority_id, effective_from,
                                           in_hours_pence_per_minute,
                                           out_of_hours_pence_per_minute,
                                           bank_holiday_pence_per_minute,
                                           billing_increment_seconds)
                   SELECT id, '2000-01-01', 150, 150, 150, 60 FROM a)
               SELECT id FROM a""",
            slug,
            name,
            json.dumps(opening_hours),
            list(languages),
        )
    )


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
    """A signed-in interpreter's console, connected and showing they are offline."""
    page = await context.new_page()
    await sign_in(page, *INTERPRETER)
    if not page.url.endswith("/console"):
        await page.goto("/console")
    await expect(page.locator("#state")).to_have_text("You are offline")
    return page


async def become_available(console: Page) -> None:
    await console.get_by_role("button", name="Make me available").click()
    await expect(console.locator("#state")).to_have_text("You are available")
    await expect(console.get_by_role("button", name="Go offline")).to_be_enabled()


async def open_caller(context: BrowserContext, slug: str = "demo", query: str = "") -> Page:
    """The caller page with the camera preview running, ready to join."""
    page = await context.new_page()
    await page.goto(f"/call/{slug}{query}")
    await page.wait_for_function("() => window.signvideo && window.signvideo.state === 'ready'")
    return page


async def join_queue(caller: Page, position: int = 1) -> None:
    await caller.get_by_role("button", name="Join the queue").click()
    await expect(caller.get_by_role("status")).to_contain_text(
        f"You are number {position} in the queue"
    )


# Test-only: lets a test stop a page's WebSockets from connecting, so that
# after window.signvideo.dropConnection() the page stays "reconnecting" until
# the test allows sockets again. A blocked socket goes to a path the server
# does not have, and fails as an unreachable server would.
SOCKET_BLOCKER_JS = """
(() => {
    const RealWebSocket = window.WebSocket;
    window.__socketsBlocked = false;
    function WebSocketForTests(url, protocols) {
        const target = window.__socketsBlocked ? String(url).replace("/ws/", "/blocked-ws/") : url;
        return protocols === undefined
            ? new RealWebSocket(target) : new RealWebSocket(target, protocols);
    }
    WebSocketForTests.prototype = RealWebSocket.prototype;
    for (const name of ["CONNECTING", "OPEN", "CLOSING", "CLOSED"]) {
        WebSocketForTests[name] = RealWebSocket[name];
    }
    window.WebSocket = WebSocketForTests;
})();
"""


async def drop_connection(page: Page, *, block: bool = True) -> None:
    """Close the page's signalling socket as a network failure would; with
    `block`, new sockets fail until allow_connections(page)."""
    if block:
        await page.evaluate("window.__socketsBlocked = true")
    await page.evaluate("window.signvideo.dropConnection()")


async def allow_connections(page: Page) -> None:
    await page.evaluate("window.__socketsBlocked = false")


async def connect_call(
    new_context: NewContext, *, console_context: BrowserContext | None = None
) -> tuple[Page, Page]:
    """A caller on a phone and an interpreter, connected, with video flowing both ways."""
    caller = await open_caller(await new_context(phone=True))
    await expect_own_preview(caller)
    await join_queue(caller)

    console = await open_console(console_context or await new_context())
    # With a caller already waiting, becoming available brings the offer at once.
    await console.get_by_role("button", name="Make me available").click()
    offer = console.get_by_role("region", name="Incoming call")
    await expect(offer).to_be_visible()
    await expect(offer).to_contain_text("Demo Borough Council")
    await console.get_by_role("button", name="Accept").click()

    await expect(caller.get_by_role("status")).to_contain_text("connected with the interpreter")
    await expect(console.locator("#state")).to_have_text("You are in a call")
    await expect(caller.get_by_role("button", name="Hang up")).to_be_visible()
    await expect(console.get_by_role("button", name="Hang up")).to_be_visible()

    caller_fps = await expect_video_flowing(caller, "Interpreter's video")
    console_fps = await expect_video_flowing(console, "Caller's video")
    print(f"frames decoded per second: caller {caller_fps:.0f}, interpreter {console_fps:.0f}")
    return caller, console


async def mark_peer_connection(page: Page) -> None:
    """Tag the page's current RTCPeerConnection, to tell later whether it was replaced."""
    await page.evaluate("window.signvideo.pc.__beforeDrop = true")


async def expect_new_peer_connection(page: Page) -> None:
    await page.wait_for_function(
        "() => window.signvideo.pc !== null && window.signvideo.pc.__beforeDrop !== true",
        timeout=15_000,
    )


WRAP_UP_COUNTDOWN = re.compile(r"^You will be available for calls in (\d+) seconds?\.$")


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
    # page.evaluate has no timeout of its own, and getStats() on a peer
    # connection being replaced need not settle.
    return int(await asyncio.wait_for(page.evaluate(FRAMES_DECODED_JS), 5))


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
