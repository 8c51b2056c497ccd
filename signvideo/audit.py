"""The audit log: who did what, when and from where (migration 0006).

Administrative actions, sign-ins and exports are recorded; the operator
administrator reads them at /admin/audit.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import asyncpg
from aiohttp import web

from signvideo.db import Q

if TYPE_CHECKING:
    from signvideo.auth import User


def client_address(request: web.Request) -> str | None:
    """The address a request came from, as the server sees it."""
    return request.remote


async def record(
    db: asyncpg.Pool | asyncpg.Connection,
    request: web.Request | None,
    action: str,
    *,
    user: User | None = None,
    actor: str | None = None,
    actor_id: int | None = None,
    authority_id: int | None = None,
    detail: dict[str, Any] | None = None,
) -> None:
    """Append one entry. The actor is `user`, or else `actor` (what tried
    to sign in, say); `request` gives the address."""
    await db.execute(
        Q["audit"],
        user.id if user is not None else actor_id,
        user.email if user is not None else (actor or "anonymous"),
        action,
        authority_id,
        detail or {},
        None if request is None else client_address(request),
    )
