"""The connection pool: a connection goes back without resetting its
session (a round trip saved at every release), and nothing in signvideo
leaves session state behind for the next user of a connection."""

from __future__ import annotations

import re
from pathlib import Path

import asyncpg

from signvideo.db import create_pool

PACKAGE = Path(__file__).resolve().parents[2] / "signvideo"


async def test_a_connection_goes_back_without_a_reset_query(database_url: str) -> None:
    single = await create_pool(database_url, min_size=1, max_size=1)
    watcher = await asyncpg.connect(database_url)
    try:
        pid = await single.fetchval("SELECT pg_backend_pid() /* the last */")
        # What the pooled connection last ran is the query, not asyncpg's
        # reset ("SELECT pg_advisory_unlock_all(); CLOSE ALL; ...").
        last = await watcher.fetchval("SELECT query FROM pg_stat_activity WHERE pid = $1", pid)
        assert last == "SELECT pg_backend_pid() /* the last */"
    finally:
        await watcher.close()
        await single.close()


async def test_a_transaction_left_open_is_still_rolled_back(database_url: str) -> None:
    single = await create_pool(database_url, min_size=1, max_size=1)
    try:
        await single.execute("CREATE TABLE scratch (n integer)")
        async with single.acquire() as con:
            await con.execute("BEGIN")
            await con.execute("INSERT INTO scratch VALUES (1)")
        async with single.acquire() as con:
            assert not con.is_in_transaction()
            assert await con.fetchval("SELECT count(*) FROM scratch") == 0
    finally:
        await single.close()


def test_nothing_in_signvideo_leaves_session_state_on_a_pooled_connection() -> None:
    """Settings only for the transaction, advisory locks only for the
    transaction (but the migration lock, on a connection of its own), and
    LISTEN only on the Hub's own connection: what the skipped reset would
    have undone."""
    found = []
    for path in sorted(PACKAGE.glob("*.py")):
        text = path.read_text()
        for pattern in (
            r"""["']SET\s+(?!LOCAL\b)""",
            r"set_config\([^)]*,\s*false\s*\)",
            r"pg_advisory_lock\(",
            r"add_listener\(",  # asyncpg's LISTEN
        ):
            found += [f"{path.name}: {m}" for m in re.findall(pattern, text)]
    assert found == [
        "db.py: pg_advisory_lock(",  # migrate(), on cli._prepare_database's own connection
        "mailbox.py: add_listener(",  # the Hub's own connection (asyncpg.connect)
        "mailbox.py: add_listener(",
        "mailbox.py: add_listener(",
    ], found
