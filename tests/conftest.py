"""Shared fixtures: a real PostgreSQL, one migrated template, a fresh database per test.

With DATABASE_URL set, that server is used (the tests create and drop their own
databases on it); otherwise an embedded PostgreSQL is started through pgserver
for the test session and deleted at its end.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest

from signvideo.db import migrate, start_embedded
from tests.turn_server import Turn, running_turn

TEMPLATE_DB = "signvideo_test_template"


def with_database(dsn: str, name: str) -> str:
    parts = urlsplit(dsn)
    return urlunsplit(parts._replace(path=f"/{name}"))


@pytest.fixture(scope="session")
def postgres_server_url() -> Iterator[str]:
    """The URL of a PostgreSQL server the tests may create databases on."""
    given = os.environ.get("DATABASE_URL")
    if given:
        yield given
        return
    with tempfile.TemporaryDirectory(prefix="signvideo-pg-") as tmp:
        server, url = start_embedded(Path(tmp), keep=False)
        try:
            yield url
        finally:
            server.cleanup()


@pytest.fixture(scope="session")
def template_database(postgres_server_url: str) -> str:
    """Migrate one template database per test session."""

    async def build() -> None:
        con = await asyncpg.connect(postgres_server_url)
        try:
            await con.execute(f'DROP DATABASE IF EXISTS "{TEMPLATE_DB}"')
            await con.execute(f'CREATE DATABASE "{TEMPLATE_DB}"')
        finally:
            await con.close()
        tcon = await asyncpg.connect(with_database(postgres_server_url, TEMPLATE_DB))
        try:
            await migrate(tcon)
        finally:
            await tcon.close()

    asyncio.run(build())
    return TEMPLATE_DB


async def copy_of_template(server_url: str, template: str) -> str:
    """A new database made from the migrated template; its name."""
    name = f"t_{uuid.uuid4().hex[:16]}"
    con = await asyncpg.connect(server_url)
    try:
        await con.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
    finally:
        await con.close()
    return name


@pytest.fixture
async def database_url(postgres_server_url: str, template_database: str) -> AsyncIterator[str]:
    """A fresh, migrated, empty database for one test; dropped afterwards."""
    name = await copy_of_template(postgres_server_url, template_database)
    yield with_database(postgres_server_url, name)
    con = await asyncpg.connect(postgres_server_url)
    try:
        await con.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await con.close()


@pytest.fixture
def coturn(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Turn]:
    """A real coturn for this test, checking TURN REST credentials."""
    with running_turn(tmp_path_factory.mktemp("turn")) as server:
        yield server
