"""Browser tests: a real signvideo server in a subprocess, driven by Debian's Chromium.

Each test gets its own server on a free port, over its own fresh database
(the ``database_url`` fixture from tests/conftest.py), so tests never see each
other's calls. Chromium is Debian's: never run ``playwright install``.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from playwright.async_api import Browser, BrowserContext, async_playwright, expect

from tests.servers import running_server

from .helpers import SOCKET_BLOCKER_JS, NewContext, Server, SignallingLog, person_context

CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--use-fake-device-for-media-stream",
    "--use-fake-ui-for-media-stream",
    # Without this, Chromium drops loopback ICE candidates and two pages on a
    # loopback-only machine never connect (videoWidth stays 0, silently).
    "--allow-loopback-in-peer-connection",
]

# Media and signalling can take a few seconds on a busy 2-core machine.
expect.set_options(timeout=10_000)


def chromium_executable() -> str:
    for candidate in ("/usr/lib/chromium/chromium", "/usr/bin/chromium"):
        if os.access(candidate, os.X_OK):
            return candidate
    pytest.fail("Chromium not found: install Debian's chromium package (apt-get install chromium)")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """A browser test takes seconds; one that hangs fails after 90 s (the
    suite-wide limit is 180 s), so that a few hung ones cannot stall a run."""
    browser_dir = Path(__file__).parent
    for item in items:
        if browser_dir in item.path.parents:
            item.add_marker(pytest.mark.timeout(90))


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "server_env(**settings): extra environment for the test's signvideo server, "
        'for example server_env(SIGNVIDEO_WRAP_UP="3")',
    )


@pytest.fixture
def server_env(request: pytest.FixtureRequest) -> dict[str, str]:
    """Extra environment for the server: a module overrides this fixture, or a test
    says ``@pytest.mark.server_env(SIGNVIDEO_OFFER_TIMEOUT="2")``."""
    env: dict[str, str] = {}
    for marker in reversed(list(request.node.iter_markers("server_env"))):
        env.update({key: str(value) for key, value in marker.kwargs.items()})
    return env


@pytest.fixture
async def server(
    database_url: str, tmp_path: Path, server_env: dict[str, str]
) -> AsyncIterator[Server]:
    """`python -m signvideo demo` on a free port; its output is printed if the test fails."""
    async with running_server(database_url, tmp_path, command="demo", env=server_env) as process:
        yield Server(process.base_url, process.log_path, database_url)


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=chromium_executable(), args=CHROMIUM_ARGS, headless=True
        )
        try:
            yield browser
        finally:
            await browser.close()


@pytest.fixture
def signalling() -> Iterator[SignallingLog]:
    """Every WebSocket frame the pages send and receive, printed if the test fails."""
    log = SignallingLog()
    yield log
    if log.lines:
        print("--- signalling (page <- server, page -> server) ---")
        print("\n".join(log.lines))


@pytest.fixture
async def new_context(
    browser: Browser, server: Server, signalling: SignallingLog
) -> AsyncIterator[NewContext]:
    """Makes browser contexts (separate cookie jars: one per person) on the test server."""
    contexts: list[BrowserContext] = []
    console_lines: list[str] = []

    async def make(*, phone: bool = False, javascript: bool = True) -> BrowserContext:
        context = await person_context(browser, server.base_url, phone=phone, javascript=javascript)
        # Lets a test hold a page's sockets down after a dropped connection.
        await context.add_init_script(SOCKET_BLOCKER_JS)
        name = f"context {len(contexts)}"
        context.on("console", lambda msg: console_lines.append(f"[{name}] {msg.type}: {msg.text}"))
        context.on("weberror", lambda err: console_lines.append(f"[{name}] error: {err.error}"))
        context.on("page", lambda page: signalling.watch(page, name))
        contexts.append(context)
        return context

    try:
        yield make
    finally:
        for n, context in enumerate(contexts):
            # A close that hangs says which person's pages it was closing.
            pages = [page.url for page in context.pages]
            try:
                await asyncio.wait_for(asyncio.shield(context.close()), 30)
            except TimeoutError:
                raise AssertionError(f"closing context {n} hung; its pages: {pages}") from None
        if console_lines:
            print("--- browser console ---")
            print("\n".join(console_lines))
