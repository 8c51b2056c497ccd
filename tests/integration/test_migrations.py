"""The migration runner on a real PostgreSQL."""

from __future__ import annotations

from pathlib import Path

import asyncpg
import pytest

from signvideo.db import MIGRATIONS_DIR, MigrationError, known_migrations, migrate


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
