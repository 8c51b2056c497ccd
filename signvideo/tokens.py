"""API tokens for an authority's finance systems: made by its staff, shown
once, kept only as a hash, limited to one authority and to reading usage,
revocable, with the time each was last used (migration 0008)."""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass

import asyncpg
from aiohttp import web

from signvideo.auth import token_digest
from signvideo.db import Q
from signvideo.keys import POOL

PREFIX = "svt_"
USAGE_READ = "usage:read"
_SHAPE = re.compile(r"^svt_[A-Za-z0-9_-]{40,60}$")


@dataclass(frozen=True)
class ApiClient:
    """A finance system, known by its token."""

    token_id: int
    authority_id: int
    authority: str
    name: str
    shown_prefix: str
    scopes: tuple[str, ...]

    @property
    def label(self) -> str:
        return f"API token {self.shown_prefix}… ({self.name})"


def _unauthorized(message: str) -> web.HTTPUnauthorized:
    return web.HTTPUnauthorized(
        text=message,
        headers={"WWW-Authenticate": 'Bearer realm="signvideo", error="invalid_token"'},
    )


async def bearer(request: web.Request) -> ApiClient | None:
    """The client named by the request's `Authorization: Bearer` token; None
    without one; 401 for a token that is malformed, unknown or revoked."""
    header = request.headers.get("Authorization")
    if header is None:
        return None
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not _SHAPE.match(token.strip()):
        raise _unauthorized(
            "The Authorization header must be 'Bearer svt_...' with a token made on the "
            "API tokens page."
        )
    row = await request.app[POOL].fetchrow(Q["api_token_use"], token_digest(token.strip()))
    if row is None:
        raise _unauthorized("This API token is not known or has been revoked; make a new one.")
    return ApiClient(
        row["id"],
        row["authority_id"],
        row["authority"],
        row["name"],
        row["shown_prefix"],
        tuple(row["scopes"]),
    )


async def make(
    con: asyncpg.Connection, authority_id: int, name: str, user_id: int
) -> tuple[int, str]:
    """A new token for reading `authority_id`'s usage: its id and the token,
    which exists nowhere else once the caller has shown it."""
    token = PREFIX + secrets.token_urlsafe(32)
    token_id: int = await con.fetchval(
        Q["api_token_insert"],
        authority_id,
        name,
        token_digest(token),
        token[:12],
        [USAGE_READ],
        user_id,
    )
    return token_id, token
