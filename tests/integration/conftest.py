"""The real application on a real database, reached through real HTTP and WebSockets."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aiohttp
import asyncpg
import pytest
from aiohttp.test_utils import TestClient

from signvideo import demo
from signvideo.app import create_app
from signvideo.config import Config
from signvideo.db import create_pool
from signvideo.hours import ALWAYS_OPEN

INTERPRETER_PASSWORD = "correct horse battery"


@pytest.fixture
async def pool(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    p = await create_pool(database_url, min_size=1, max_size=10)
    yield p
    await p.close()


@pytest.fixture
async def seeded(pool: asyncpg.Pool) -> None:
    async with pool.acquire() as con:
        await demo.seed(con)


@pytest.fixture
def loopback_ice(monkeypatch: pytest.MonkeyPatch) -> None:
    """aioice skips 127.0.0.1; this host has no other interface (see PLATFORM.md).
    Only the test's own aiortc peers are patched, never the service."""
    import aioice.ice

    monkeypatch.setattr(aioice.ice, "get_host_addresses", lambda use_ipv4, use_ipv6: ["127.0.0.1"])


@pytest.fixture
def config(database_url: str) -> Config:
    # Every caller here comes from 127.0.0.1: the join limits are tested on their own.
    return Config(
        database_url=database_url,
        offer_timeout=20,
        mailbox_poll_interval=0.5,
        wrap_up=0,
        joins_per_address=100_000,
        joins_per_authority=100_000,
    )


@pytest.fixture
async def client(
    config: Config, seeded: None, aiohttp_client: Callable[..., Awaitable[TestClient[Any, Any]]]
) -> TestClient[Any, Any]:
    # aiohttp_client comes last so that it is torn down (the app stopped) before
    # the database it uses is dropped.
    return await aiohttp_client(create_app(config))


async def add_authority(
    pool: asyncpg.Pool, slug: str, rate_pence_per_minute: int = 100, **columns: Any
) -> None:
    """An authority with a flat per-minute rate card from 2000 on."""
    values = {
        "name": slug.title(),
        "answer_seconds": 60,
        "opening_hours": ALWAYS_OPEN,
        "closed_on_bank_holidays": False,
        **columns,
    }
    names = ", ".join(values)
    marks = ", ".join(f"${n}" for n in range(2, len(values) + 2))
    await pool.execute(
        f"""WITH a AS (INSERT INTO authorities (slug, {names}) VALUES ($1, {marks}) RETURNING id)
            INSERT INTO rate_cards (authority_id, effective_from, in_hours_pence_per_minute,
                                    out_of_hours_pence_per_minute, bank_holiday_pence_per_minute,
                                    billing_increment_seconds)
            SELECT id, '2000-01-01', {int(rate_pence_per_minute)}, {int(rate_pence_per_minute)},
                   {int(rate_pence_per_minute)}, 60 FROM a""",
        slug,
        *values.values(),
    )


_PASSWORD_HASH: list[str] = []


async def add_interpreter(
    pool: asyncpg.Pool,
    email: str,
    name: str = "Interpreter",
    *,
    languages: tuple[str, ...] = ("BSL",),
    specialisms: tuple[str, ...] = (),
    category: str = "registered",
) -> int:
    from signvideo.auth import hash_password

    if not _PASSWORD_HASH:  # argon2 is slow on purpose; hash the test password once
        _PASSWORD_HASH.append(hash_password(INTERPRETER_PASSWORD))
    async with pool.acquire() as con, con.transaction():
        user_id: int = await con.fetchval(
            "INSERT INTO users (email, display_name, role, password_hash) "
            "VALUES ($1, $2, 'interpreter', $3) RETURNING id",
            email,
            name,
            _PASSWORD_HASH[0],
        )
        await con.execute(
            "INSERT INTO interpreters (user_id, languages, specialisms, category) "
            "VALUES ($1, $2, $3, $4)",
            user_id,
            list(languages),
            list(specialisms),
            category,
        )
    return user_id


async def add_staff(pool: asyncpg.Pool, email: str, role: str, authority: str | None = None) -> int:
    """A staff account of `role` (of the authority with slug `authority`,
    for an authority's roles) with the test password."""
    from signvideo.auth import hash_password

    if not _PASSWORD_HASH:
        _PASSWORD_HASH.append(hash_password(INTERPRETER_PASSWORD))
    user_id: int = await pool.fetchval(
        "INSERT INTO users (email, display_name, role, authority_id, password_hash) "
        "VALUES ($1, $2, $3, (SELECT id FROM authorities WHERE slug = $4), $5) RETURNING id",
        email,
        email.split("@")[0].title(),
        role,
        authority,
        _PASSWORD_HASH[0],
    )
    return user_id


async def form_token(client: TestClient[Any, Any], path: str = "/login") -> str:
    """Open a page as a browser would, keeping its cookies, and return the
    hidden token its forms carry (the cookie stays in the client's jar)."""
    page = await client.get(path)
    found = re.search(r'name="csrf_token" value="([^"]+)"', await page.text())
    assert found, f"no form token on {path}"
    return found.group(1)


async def sign_in(client: TestClient[Any, Any], email: str, password: str) -> str:
    """Sign in through the real form; returns the session cookie value."""
    response = await client.post(
        "/login",
        data={
            "email": email,
            "password": password,
            "next": "/",
            "csrf_token": await form_token(client),
        },
        allow_redirects=False,
    )
    assert response.status == 303, await response.text()
    token = response.cookies["signvideo_session"].value
    # Each test peer carries its own cookie explicitly, so several staff can
    # be signed in through one client.
    client.session.cookie_jar.clear()
    return token


class Peer:
    """A WebSocket client that keeps messages until a test asks for them."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws

    async def send(self, **message: Any) -> None:
        await self.ws.send_str(json.dumps(message))

    async def send_raw(self, text: str) -> None:
        await self.ws.send_str(text)

    async def receive(self, timeout: float = 5.0) -> dict[str, Any]:
        msg = await self.ws.receive(timeout=timeout)
        assert msg.type == aiohttp.WSMsgType.TEXT, f"expected a text frame, got {msg.type}"
        data: dict[str, Any] = json.loads(msg.data)
        return data

    async def expect(self, type_: str, timeout: float = 5.0, **fields: Any) -> dict[str, Any]:
        """Read until a message of ``type_`` (with ``fields``) arrives; fail on an error."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise AssertionError(f"no {type_} message with {fields} within {timeout} s")
            data = await self.receive(remaining)
            if data["type"] == "error" and type_ != "error":
                raise AssertionError(f"server sent an error while waiting for {type_}: {data}")
            if data["type"] == type_ and all(data.get(k) == v for k, v in fields.items()):
                return data

    async def close(self) -> None:
        await self.ws.close()


@pytest.fixture
def open_caller(client: TestClient[Any, Any]) -> Callable[[], Awaitable[Peer]]:
    async def opener() -> Peer:
        return Peer(await client.ws_connect("/ws/caller"))

    return opener


@pytest.fixture
def open_console(client: TestClient[Any, Any]) -> Callable[[str], Awaitable[Peer]]:
    async def opener(session: str) -> Peer:
        ws = await client.ws_connect(
            "/ws/console", headers={"Cookie": f"signvideo_session={session}"}
        )
        peer = Peer(ws)
        await peer.expect("state")
        return peer

    return opener


async def interpreter_console(
    client: TestClient[Any, Any],
    pool: asyncpg.Pool,
    open_console: Callable[[str], Awaitable[Peer]],
    email: str,
    **profile: Any,
) -> tuple[int, Peer]:
    """A new interpreter, signed in, with their console open."""
    user_id = await add_interpreter(pool, email, **profile)
    return user_id, await open_console(await sign_in(client, email, INTERPRETER_PASSWORD))
