"""Staff sign-in: argon2id password hashes and server-side sessions in PostgreSQL."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from urllib.parse import quote

from aiohttp import web
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerifyMismatchError

from signvideo.db import Q
from signvideo.keys import POOL

SESSION_COOKIE = "signvideo_session"
SESSION_SECONDS = 12 * 3600
_USER: web.RequestKey[User | None] = web.RequestKey("user")

# Parameters are fixed data, not state: RFC 9106's second recommended option.
_hasher = PasswordHasher()
# A hash to check against when the account does not exist, so a wrong email
# takes as long as a wrong password.
_DUMMY_HASH = _hasher.hash("not a password")


@dataclass(frozen=True)
class User:
    id: int
    email: str
    display_name: str
    role: str
    authority_id: int | None


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def check_password(stored_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(stored_hash, password)
    except (VerifyMismatchError, InvalidHashError):
        return False


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


async def current_user(request: web.Request) -> User | None:
    """The signed-in staff member, looked up once per request."""
    if _USER in request:
        return request[_USER]
    user = None
    token = request.cookies.get(SESSION_COOKIE)
    if token and len(token) <= 128:
        row = await request.app[POOL].fetchrow(Q["user_by_session"], _digest(token))
        if row is not None:
            user = User(
                row["id"], row["email"], row["display_name"], row["role"], row["authority_id"]
            )
    request[_USER] = user
    return user


async def sign_in(request: web.Request, email: str, password: str) -> User | None:
    pool = request.app[POOL]
    row = await pool.fetchrow(Q["user_by_email"], email.strip().lower())
    if row is None:
        check_password(_DUMMY_HASH, password)
        return None
    if not check_password(row["password_hash"], password):
        return None
    if _hasher.check_needs_rehash(row["password_hash"]):
        await pool.execute(Q["update_password_hash"], row["id"], hash_password(password))
    return User(row["id"], row["email"], row["display_name"], row["role"], row["authority_id"])


async def start_session(request: web.Request, response: web.StreamResponse, user: User) -> None:
    token = secrets.token_urlsafe(32)
    await request.app[POOL].execute(Q["create_session"], _digest(token), user.id, SESSION_SECONDS)
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=SESSION_SECONDS,
        httponly=True,
        samesite="Lax",
        secure=request.secure,
        path="/",
    )


async def end_session(request: web.Request, response: web.StreamResponse) -> None:
    token = request.cookies.get(SESSION_COOKIE)
    if token:
        await request.app[POOL].execute(Q["delete_session"], _digest(token))
    response.del_cookie(SESSION_COOKIE, path="/")


async def require_role(request: web.Request, *roles: str) -> User:
    """The signed-in user if their role is one of ``roles``; otherwise sign-in or 403."""
    user = await current_user(request)
    if user is None:
        raise web.HTTPSeeOther(f"/login?next={quote(request.path_qs, safe='/')}")
    if user.role not in roles:
        raise web.HTTPForbidden(
            text=f"Your account ({user.role}) cannot open this page. "
            "Sign in with an account that can, or ask your administrator."
        )
    return user
