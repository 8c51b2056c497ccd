"""The database: the embedded server, the pool, named queries and migrations."""

from __future__ import annotations

import json
import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg

log = logging.getLogger("signvideo.db")

SQL_DIR = Path(__file__).resolve().parent.parent / "sql"
MIGRATIONS_DIR = SQL_DIR / "migrations"
QUERIES_DIR = SQL_DIR / "queries"

_NAME_LINE = re.compile(r"^-- name: ([a-z_][a-z0-9_]*)\s*$", re.MULTILINE)
_MIGRATION_FILE = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")


class MigrationError(RuntimeError):
    """The database's migrations do not match the ones this version knows."""


def load_queries(directory: Path = QUERIES_DIR) -> dict[str, str]:
    """Read every ``-- name: x`` block of every .sql file in ``directory``."""
    queries: dict[str, str] = {}
    for path in sorted(directory.glob("*.sql")):
        text = path.read_text()
        marks = list(_NAME_LINE.finditer(text))
        for mark, following in zip(marks, [*marks[1:], None], strict=True):
            end = following.start() if following else len(text)
            name = mark.group(1)
            if name in queries:
                raise ValueError(f"query {name!r} is defined twice (second in {path.name})")
            queries[name] = text[mark.end() : end].strip()
    return queries


Q = load_queries()


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str


def known_migrations(directory: Path = MIGRATIONS_DIR) -> list[Migration]:
    found = []
    for path in sorted(directory.glob("*.sql")):
        match = _MIGRATION_FILE.match(path.name)
        if not match:
            raise MigrationError(f"{path.name}: migration files are named NNNN_name.sql")
        found.append(Migration(int(match.group(1)), match.group(2), path.read_text()))
    versions = [m.version for m in found]
    if len(set(versions)) != len(versions):
        raise MigrationError("two migration files share a number")
    return found


async def migrate(con: asyncpg.Connection, directory: Path = MIGRATIONS_DIR) -> list[str]:
    """Apply the migrations this database lacks, each in its own transaction.

    Refuses a database that records a migration this version does not have:
    it was written by a newer signvideo, and running older code on it could
    damage data.
    """
    migrations = known_migrations(directory)
    # Only one process migrates at a time; the others wait and find nothing to do.
    await con.execute("SELECT pg_advisory_lock(7428310)")
    try:
        await con.execute(
            """CREATE TABLE IF NOT EXISTS schema_migrations (
                   version integer PRIMARY KEY,
                   name text NOT NULL,
                   applied_at timestamptz NOT NULL DEFAULT now())"""
        )
        applied = {
            r["version"]: r["name"]
            for r in await con.fetch("SELECT version, name FROM schema_migrations")
        }
        known = {m.version for m in migrations}
        unknown = sorted(set(applied) - known)
        if unknown:
            names = ", ".join(f"{v:04d}_{applied[v]}" for v in unknown)
            raise MigrationError(
                f"the database has migration(s) {names} that this version of signvideo "
                "does not know; run a newer signvideo against it"
            )
        done = []
        for migration in migrations:
            if migration.version in applied:
                continue
            async with con.transaction():
                await con.execute(migration.sql)
                await con.execute(
                    "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)",
                    migration.version,
                    migration.name,
                )
            label = f"{migration.version:04d}_{migration.name}"
            log.info("applied migration %s", label)
            done.append(label)
        return done
    finally:
        await con.execute("SELECT pg_advisory_unlock(7428310)")


async def authority_scope(con: asyncpg.Connection, authority_id: int) -> None:
    """Inside a transaction: from here to its end, `con` reads as an
    authority's staff, seeing that authority's rows only (row-level
    security, migration 0006)."""
    await con.execute("SET LOCAL ROLE signvideo_authority_reader")
    await con.execute(
        "SELECT set_config('signvideo.authority_id', $1::bigint::text, true)", authority_id
    )


async def init_connection(con: asyncpg.Connection) -> None:
    await con.set_type_codec("jsonb", encoder=json.dumps, decoder=json.loads, schema="pg_catalog")


async def _keep_session(con: asyncpg.Connection) -> None:
    """What a pooled connection needs on its way back to the pool, beyond
    the rollback of an open transaction that asyncpg always does: nothing.

    By default asyncpg resets the session as well (advisory locks, cursors,
    LISTEN, settings), a round trip at every release, as long as the query
    itself for a short one. signvideo leaves no session state on a pooled
    connection: its settings are `SET LOCAL` or `set_config(..., true)`, its
    advisory locks are transaction-scoped (the migration lock is taken and
    released on a connection of its own), and the Hub listens on a
    connection of its own (tests: test_pool.py)."""


async def create_pool(dsn: str, **kwargs: Any) -> asyncpg.Pool:
    pool = await asyncpg.create_pool(dsn, init=init_connection, reset=_keep_session, **kwargs)
    assert pool is not None
    return pool


def start_embedded(data_dir: Path, *, keep: bool = True) -> tuple[Any, str]:
    """Start (or reuse) the embedded PostgreSQL kept in ``data_dir/pgdata``.

    Returns the server handle, which must stay referenced while it is used,
    and its connection URI. The data folder is kept between runs; with
    ``keep=False`` (tests, benchmarks) the server's ``cleanup()`` deletes it.
    """
    data_dir = data_dir.resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    runtime = data_dir / "run"
    runtime.mkdir(mode=0o700, exist_ok=True)
    runtime.chmod(0o700)
    # pgserver looks this up when imported; without it, it warns and guesses.
    os.environ.setdefault("XDG_RUNTIME_DIR", str(runtime))
    logging.getLogger("pgserver").setLevel(logging.WARNING)
    from pgserver import postgres_server

    server = postgres_server.get_server(
        data_dir / "pgdata", cleanup_mode="stop" if keep else "delete"
    )
    return server, server.get_uri()
