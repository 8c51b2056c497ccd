"""What the benchmarks share: a PostgreSQL, a fresh database, one `signvideo
serve` process, interpreters with sessions, and WebSocket clients that stamp
each message with the time it arrived.

Run a benchmark from the repository root, for example
`python -m bench.join_to_offer`. With DATABASE_URL set, that server is used
(a database named after the benchmark is dropped and made again on it);
otherwise an embedded PostgreSQL is started through pgserver in a temporary
folder. Each benchmark prints one JSON object on its last line.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import gc
import hashlib
import json
import os
import platform
import resource
import secrets
import statistics
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import aiohttp
import asyncpg

from signvideo import demo
from signvideo.auth import hash_password
from signvideo.db import init_connection, migrate, start_embedded
from signvideo.hours import ALWAYS_OPEN
from tests.servers import ServerProcess, running_server

BENCH_SLUG = "bench"


def raise_file_limit() -> int:
    """Thousands of sockets need thousands of file descriptors (the server
    process inherits the limit)."""
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


@contextlib.asynccontextmanager
async def postgres_server() -> AsyncIterator[str]:
    """DATABASE_URL, or the service's own embedded PostgreSQL in a temporary
    folder, stopped and deleted afterwards."""
    given = os.environ.get("DATABASE_URL")
    if given:
        yield given
        return
    with tempfile.TemporaryDirectory(prefix="signvideo-bench-pg-") as tmp:
        server, url = await asyncio.to_thread(start_embedded, Path(tmp), keep=False)
        try:
            yield url
        finally:
            await asyncio.to_thread(server.cleanup)


def _with_database(dsn: str, name: str) -> str:
    return urlunsplit(urlsplit(dsn)._replace(path=f"/{name}"))


async def fresh_database(server_url: str, name: str) -> str:
    """A new migrated database with the demo seed and an always-open `bench`
    authority offering BSL and ISL with room for 20,000 waiting callers."""
    con = await asyncpg.connect(server_url)
    try:
        await con.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await con.execute(f'CREATE DATABASE "{name}"')
    finally:
        await con.close()
    url = _with_database(server_url, name)
    con = await asyncpg.connect(url)
    try:
        await init_connection(con)
        await migrate(con)
        await demo.seed(con)
        await con.execute(
            """WITH a AS (
                   INSERT INTO authorities (slug, name, answer_seconds, opening_hours,
                                            closed_on_bank_holidays, languages, max_queue_length)
                   VALUES ($1, 'Bench Council', 60, $2, false, '{BSL,ISL}', 20000)
                   RETURNING id)
               INSERT INTO rate_cards (authority_id, effective_from, in_hours_pence_per_minute,
                                       out_of_hours_pence_per_minute,
                                       bank_holiday_pence_per_minute, billing_increment_seconds)
               SELECT id, '2000-01-01', 150, 150, 150, 60 FROM a""",
            BENCH_SLUG,
            ALWAYS_OPEN,
        )
    finally:
        await con.close()
    return url


async def add_interpreters(
    url: str,
    count: int,
    languages: tuple[str, ...],
    prefix: str,
    specialisms: tuple[str, ...] = (),
) -> list[tuple[int, str]]:
    """`count` interpreters, each with a session; returns (user id, session token)."""
    password_hash = hash_password(secrets.token_urlsafe(12))
    con = await asyncpg.connect(url)
    made = []
    try:
        async with con.transaction():
            for n in range(count):
                user_id = await con.fetchval(
                    "INSERT INTO users (email, display_name, role, password_hash) "
                    "VALUES ($1, $2, 'interpreter', $3) RETURNING id",
                    f"{prefix}{n}@bench.example",
                    f"Interpreter {prefix}{n}",
                    password_hash,
                )
                await con.execute(
                    "INSERT INTO interpreters (user_id, languages, specialisms) "
                    "VALUES ($1, $2, $3)",
                    user_id,
                    list(languages),
                    list(specialisms),
                )
                token = secrets.token_urlsafe(32)
                await con.execute(
                    "INSERT INTO sessions (token_sha256, user_id, expires_at) "
                    "VALUES ($1, $2, now() + interval '1 day')",
                    hashlib.sha256(token.encode()).digest(),
                    user_id,
                )
                made.append((user_id, token))
    finally:
        await con.close()
    return made


@contextlib.asynccontextmanager
async def one_server(url: str, workdir: Path, **settings: str) -> AsyncIterator[ServerProcess]:
    env = {"SIGNVIDEO_LOG_LEVEL": "warning", **settings}
    async with running_server(url, workdir, env=env, quiet=True) as server:
        yield server


Message = dict[str, Any]


@dataclass
class Client:
    """One WebSocket; every message is kept with the perf_counter time it arrived."""

    ws: aiohttp.ClientWebSocketResponse
    on_message: Callable[[Client, float, Message], None] | None = None
    inbox: asyncio.Queue[tuple[float, Message]] = field(default_factory=asyncio.Queue)
    reader: asyncio.Task[None] | None = None
    keep: bool = True

    def start(self) -> Client:
        self.reader = asyncio.create_task(self._read())
        return self

    async def _read(self) -> None:
        async for msg in self.ws:
            if msg.type != aiohttp.WSMsgType.TEXT:
                break
            now = time.perf_counter()
            data = json.loads(msg.data)
            if self.on_message is not None:
                self.on_message(self, now, data)
            if self.keep:
                self.inbox.put_nowait((now, data))

    async def send(self, **message: Any) -> float:
        sent = time.perf_counter()
        await self.ws.send_str(json.dumps(message))
        return sent

    async def expect(
        self, type_: str, timeout: float = 30.0, **fields: Any
    ) -> tuple[float, Message]:
        async with asyncio.timeout(timeout):
            while True:
                at, data = await self.inbox.get()
                if data["type"] == "error":
                    raise RuntimeError(f"server error while waiting for {type_}: {data}")
                if data["type"] == type_ and all(data.get(k) == v for k, v in fields.items()):
                    return at, data

    async def close(self) -> None:
        await self.ws.close()
        if self.reader is not None:
            self.reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.reader


@contextlib.contextmanager
def no_collector_pauses() -> Iterator[None]:
    """The benchmark's own process collects its garbage before, not during,
    a measurement (as timeit does): its pauses are not the service's. The
    service's processes keep their collector."""
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def client_session() -> aiohttp.ClientSession:
    """No limit on connections: each WebSocket holds one for its whole life."""
    return aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=0), timeout=aiohttp.ClientTimeout(total=60)
    )


async def open_caller(http: aiohttp.ClientSession, server: ServerProcess) -> Client:
    return Client(await http.ws_connect(server.url("/ws/caller"), max_msg_size=0)).start()


async def open_console(http: aiohttp.ClientSession, server: ServerProcess, session: str) -> Client:
    ws = await http.ws_connect(
        server.url("/ws/console"), headers={"Cookie": f"signvideo_session={session}"}
    )
    client = Client(ws).start()
    await client.expect("state")
    return client


async def fill_queue(
    http: aiohttp.ClientSession,
    server: ServerProcess,
    url: str,
    count: int,
    language: str,
    specialism: str | None = None,
) -> list[Client]:
    """`count` callers waiting for `language` (and `specialism`), 20 joining
    at a time; returns once the database holds them all. Nobody reads what
    they are sent."""

    async def join(_n: int) -> Client:
        caller = await open_caller(http, server)
        caller.keep = False
        await caller.send(
            type="join", authority=BENCH_SLUG, language=language, specialism=specialism
        )
        return caller

    callers = await gather_limited(count, 20, join)
    con = await asyncpg.connect(url)
    try:
        deadline = time.monotonic() + 300
        while (
            await con.fetchval(
                "SELECT count(*) FROM calls WHERE state = 'queued' AND language = $1", language
            )
            < count
        ):
            if time.monotonic() > deadline:
                raise RuntimeError(f"the {count} callers did not all join")
            await asyncio.sleep(0.5)
        # Statistics for the tables just filled, as autovacuum keeps them in a
        # service that has been running: without them the planner takes the
        # few-row tables of a fresh database for empty, and the plans each
        # connection keeps (`force_generic_plan`) are the plans for that.
        await con.execute("ANALYZE")
    finally:
        await con.close()
    return callers


async def gather_limited(count: int, limit: int, make: Callable[[int], Any]) -> list[Any]:
    """Run make(0..count-1) with at most `limit` at once, in order of results."""
    gate = asyncio.Semaphore(limit)

    async def one(n: int) -> Any:
        async with gate:
            return await make(n)

    return list(await asyncio.gather(*(one(n) for n in range(count))))


def summary_ms(seconds: list[float]) -> dict[str, float]:
    ms = sorted(s * 1000 for s in seconds)

    def at(fraction: float) -> float:
        return round(ms[min(len(ms) - 1, round(fraction * (len(ms) - 1)))], 2)

    return {
        "p50": round(statistics.median(ms), 2),
        "p90": at(0.90),
        "p99": at(0.99),
        "max": round(ms[-1], 2),
        "mean": round(statistics.fmean(ms), 2),
        "n": len(ms),
    }


async def database_settings(url: str) -> dict[str, str]:
    con = await asyncpg.connect(url)
    try:
        return {
            name: await con.fetchval(f"SHOW {name}")
            for name in ("server_version", "fsync", "synchronous_commit", "shared_buffers")
        }
    finally:
        await con.close()


def machine() -> dict[str, Any]:
    return {
        "date": dt.date.today().isoformat(),
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "platform": platform.platform(),
    }


def report(figures: dict[str, Any]) -> None:
    """The benchmark's result: one JSON object, the last line printed."""
    print(json.dumps(figures, sort_keys=True))
