"""When a join whose matching failed may be made again without it."""

from __future__ import annotations

import asyncpg
import pytest

from signvideo.routing import _rolled_back


@pytest.mark.parametrize(
    "error",
    [
        asyncpg.exceptions.LockNotAvailableError,
        asyncpg.exceptions.DeadlockDetectedError,
        asyncpg.exceptions.SerializationError,
        asyncpg.exceptions.QueryCanceledError,
        asyncpg.exceptions.RaiseError,
    ],
)
def test_an_error_from_the_database_undid_the_join(error: type[asyncpg.PostgresError]) -> None:
    assert _rolled_back(error("failed"))


@pytest.mark.parametrize(
    "error",
    [
        # The join may have committed without our hearing: a second join
        # would put the caller in the queue twice (or fail on the token).
        asyncpg.exceptions.ConnectionDoesNotExistError,
        asyncpg.exceptions.ConnectionFailureError,
        asyncpg.exceptions.AdminShutdownError,
        asyncpg.exceptions.CrashShutdownError,
    ],
)
def test_a_lost_connection_is_not_taken_for_a_rollback(error: type[asyncpg.PostgresError]) -> None:
    assert not _rolled_back(error("failed"))
