"""The migration runner on a real PostgreSQL."""

from __future__ import annotations

from pathlib import Path

import asyncpg
import pytest

from signvideo.db import MIGRATIONS_DIR, MigrationError, known_migrations, migrate
from tests.conftest import with_database


async def test_applied_migrations_are_recorded_and_not_repeated(database_url: str) -> None:
    con = await asyncpg.connect(database_url)
    try:
        versions = await con.fetch("SELECT version FROM schema_migrations ORDER BY version")
        assert [r["version"] for r in versions] == [m.version for m in known_migrations()]
        assert await migrate(con) == []
    finally:
        await con.close()


async def test_new_migration_is_applied_in_a_transaction(database_url: str, tmp_path: Path) -> None:
    for path in MIGRATIONS_DIR.glob("*.sql"):
        (tmp_path / path.name).write_text(path.read_text())
    (tmp_path / "0900_broken.sql").write_text(
        "CREATE TABLE half_done (x int);\nSELECT no_such_function();\n"
    )
    con = await asyncpg.connect(database_url)
    try:
        with pytest.raises(asyncpg.UndefinedFunctionError):
            await migrate(con, tmp_path)
        # Nothing of the failed migration remains, and it is not recorded.
        assert await con.fetchval("SELECT to_regclass('half_done')") is None
        assert await con.fetchval("SELECT max(version) FROM schema_migrations") < 900
        (tmp_path / "0900_broken.sql").write_text("CREATE TABLE half_done (x int);\n")
        assert await migrate(con, tmp_path) == ["0900_broken"]
    finally:
        await con.close()


async def test_database_from_a_newer_version_is_refused(database_url: str) -> None:
    con = await asyncpg.connect(database_url)
    try:
        await con.execute(
            "INSERT INTO schema_migrations (version, name) VALUES (9999, 'from_the_future')"
        )
        with pytest.raises(MigrationError, match="9999_from_the_future"):
            await migrate(con)
    finally:
        await con.close()


def test_badly_named_migration_is_refused(tmp_path: Path) -> None:
    (tmp_path / "init.sql").write_text("SELECT 1;")
    with pytest.raises(MigrationError, match=r"NNNN_name\.sql"):
        known_migrations(tmp_path)


# A token digest for a call inserted by hand.
NEW_TOKEN = "sha256(gen_random_uuid()::text::bytea)"


async def test_queue_lengths_start_from_the_calls_already_live(
    postgres_server_url: str, tmp_path: Path
) -> None:
    """Migration 0022 counts the calls live before it, per authority, and its
    triggers keep the count from then on, whatever changes the calls."""
    for path in MIGRATIONS_DIR.glob("*.sql"):
        if int(path.name[:4]) < 22:
            (tmp_path / path.name).write_text(path.read_text())
    name = "queue_lengths_migration"
    server = await asyncpg.connect(postgres_server_url)
    await server.execute(f'DROP DATABASE IF EXISTS "{name}"')
    await server.execute(f'CREATE DATABASE "{name}"')
    con = await asyncpg.connect(with_database(postgres_server_url, name))
    try:
        await migrate(con, tmp_path)
        for slug in ("busy", "quiet", "empty"):
            await con.execute(
                "INSERT INTO authorities (slug, name, answer_seconds, languages) "
                "VALUES ($1, $1, 60, '{BSL}')",
                slug,
            )
        for slug, state in (("busy", "queued"), ("busy", "queued"), ("quiet", "queued")):
            await con.execute(
                "INSERT INTO calls (authority_id, token_sha256, state, language, deadline_at) "
                f"SELECT id, {NEW_TOKEN}, $2, 'BSL', now() FROM authorities WHERE slug = $1",
                slug,
                state,
            )
        await con.execute(
            "INSERT INTO calls (authority_id, token_sha256, state, language, deadline_at, "
            f"ended_at, end_reason) SELECT id, {NEW_TOKEN}, 'ended', 'BSL', now(), "
            "now(), 'caller_left' FROM authorities WHERE slug = 'quiet'"
        )

        assert await migrate(con) != []

        async def lengths() -> dict[str, int]:
            rows = await con.fetch(
                "SELECT a.slug, q.live FROM queue_lengths q "
                "JOIN authorities a ON a.id = q.authority_id"
            )
            return {r["slug"]: r["live"] for r in rows}

        assert await lengths() == {"busy": 2, "quiet": 1, "empty": 0}
        # Ending one, moving one between authorities, deleting one, adding an authority.
        await con.execute(
            "UPDATE calls SET state = 'ended', ended_at = now(), end_reason = 'caller_left' "
            "WHERE id = (SELECT c.id FROM calls c JOIN authorities a ON a.id = c.authority_id "
            "WHERE a.slug = 'busy' LIMIT 1)"
        )
        await con.execute(
            "UPDATE calls SET authority_id = (SELECT id FROM authorities WHERE slug = 'empty') "
            "WHERE state = 'queued' "
            "AND authority_id = (SELECT id FROM authorities WHERE slug = 'quiet')"
        )
        await con.execute(
            "INSERT INTO authorities (slug, name, answer_seconds, languages) "
            "VALUES ('new', 'new', 60, '{BSL}')"
        )
        assert await lengths() == {"busy": 1, "quiet": 0, "empty": 1, "new": 0}
        await con.execute("DELETE FROM calls WHERE state = 'queued'")
        assert await lengths() == {"busy": 0, "quiet": 0, "empty": 0, "new": 0}
        await con.execute(
            "INSERT INTO calls (authority_id, token_sha256, state, language, deadline_at) "
            f"SELECT id, {NEW_TOKEN}, 'queued', 'BSL', now() FROM authorities"
        )
        assert await lengths() == {"busy": 1, "quiet": 1, "empty": 1, "new": 1}
        await con.execute("TRUNCATE calls CASCADE")
        assert await lengths() == {"busy": 0, "quiet": 0, "empty": 0, "new": 0}
    finally:
        await con.close()
        await server.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await server.close()
