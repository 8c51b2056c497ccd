"""Staff sign-in: argon2id password hashes and server-side sessions in PostgreSQL."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import asyncpg
from aiohttp import web
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerifyMismatchError

from signvideo import audit, limits
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

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> User:
        """From a users row (id, email, display_name, role, authority_id)."""
        return cls(row["id"], row["email"], row["display_name"], row["role"], row["authority_id"])


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def check_password(stored_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(stored_hash, password)
    except (VerifyMismatchError, InvalidHashError):
        return False


def token_digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


async def current_user(request: web.Request) -> User | None:
    """The signed-in staff member, looked up once per request."""
    if _USER in request:
        return request[_USER]
    user = None
    token = request.cookies.get(SESSION_COOKIE)
    if token and len(token) <= 128:
        row = await request.app[POOL].fetchrow(Q["user_by_session"], token_digest(token))
        if row is not None:
            user = User.from_row(row)
    request[_USER] = user
    return user


# Failed sign-ins are counted over this window: this many for one account,
# or from one address, and further tries are refused until the window moves on.
# Both count only tries from browsers not known to the account: a known
# device (one that has signed in to it, migration 0025) has a limit of its
# own. So five wrong passwords from anywhere no longer keep the account's
# owner out.
FAILURE_WINDOW_SECONDS = 15 * 60
ACCOUNT_FAILURE_LIMIT = 5
ADDRESS_FAILURE_LIMIT = 20
DEVICE_FAILURE_LIMIT = 5
# The cookie holds a token for each of the last few accounts signed in on
# the browser, newest first, joined by dots (tokens are URL-safe base64).
DEVICE_COOKIE = "signvideo_device"
DEVICES_PER_BROWSER = 5
# A device stays known this long after its last sign-in.
DEVICE_DAYS = 180


@dataclass(frozen=True)
class SignInRefused(Exception):
    """Why a sign-in did not work, in words for the person trying."""

    message: str
    status: int
    retry_after: int | None = None


async def sign_in(request: web.Request, email: str, password: str) -> User:
    """Check an email and password; raises SignInRefused when they are
    wrong or too many tries have failed lately. Each attempt is audited.

    The attempt is written down before the password is checked, so that
    tries sent all at once, to one process or several, count against the
    limit together; a right password or a refusal takes it back. Tries
    from a device known to the account count for that device only."""
    pool = request.app[POOL]
    email = email.strip().lower()
    place = limits.client_network(audit.client_address(request))
    found = await known_device(request, email)
    device, attempt, counts = await _count_attempt(
        request, email, place, None if found is None else found[0]
    )
    if device is not None:
        over, left = counts["device"] > DEVICE_FAILURE_LIMIT, counts["device_retry_after"]
    elif counts["account"] > ACCOUNT_FAILURE_LIMIT:
        over, left = True, counts["account_retry_after"]
    else:
        over, left = counts["address"] > ADDRESS_FAILURE_LIMIT, counts["address_retry_after"]
    if over:
        await pool.execute(Q["forget_sign_in_attempt"], attempt)
        wait = max(60, int(left))
        minutes = (wait + 59) // 60
        await audit.record(
            pool, request, "sign_in.refused", actor=email, detail={"why": "throttled"}
        )
        raise SignInRefused(
            "Too many sign-ins have failed for this account, from this place or on this "
            "browser. Try again "
            f"in {minutes} minute{'s' if minutes != 1 else ''}, or ask your administrator "
            "for a link to set a new password.",
            429,
            wait,
        )
    row = await pool.fetchrow(Q["user_by_email"], email)
    # A missing account takes as long to refuse as a wrong password.
    right = check_password(_DUMMY_HASH if row is None else row["password_hash"], password)
    if row is None or not right:
        known = None if row is None else row["id"]
        await audit.record(pool, request, "sign_in.failed", actor=email, actor_id=known)
        raise SignInRefused(
            "The email address or password is not right. Check them and try again.", 401
        )
    if _hasher.check_needs_rehash(row["password_hash"]):
        await pool.execute(Q["update_password_hash"], row["id"], hash_password(password))
    if device is None:
        await pool.execute(Q["clear_sign_in_failures"], email)
    # A known device's own failures are cleared as its session starts
    # (_remember_device); whoever else is guessing keeps what they have used.
    user = User.from_row(row)
    await audit.record(pool, request, "sign_in", user=user)
    return user


async def _count_attempt(
    request: web.Request, email: str, place: str, device: int | None
) -> tuple[int | None, int, asyncpg.Record]:
    """Write down a sign-in attempt as failed; the device it counts for
    (None: a stranger), its row, and the failures that now count."""
    pool = request.app[POOL]
    try:
        attempt: int = await pool.fetchval(Q["record_sign_in_failure"], email, place, device)
    except asyncpg.ForeignKeyViolationError:
        # The device was forgotten a moment ago (a new password): a stranger.
        device = None
        attempt = await pool.fetchval(Q["record_sign_in_failure"], email, place, device)
    counts = await pool.fetchrow(
        Q["recent_sign_in_failures"], email, place, FAILURE_WINDOW_SECONDS, device
    )
    return device, attempt, counts


def _device_tokens(request: web.Request) -> list[str]:
    value = request.cookies.get(DEVICE_COOKIE, "")
    return [t for t in value.split(".") if 20 <= len(t) <= 64][:DEVICES_PER_BROWSER]


async def known_device(request: web.Request, email: str) -> tuple[int, str] | None:
    """The device known to account `email` that this browser's cookie
    names, and its token."""
    tokens = {token_digest(t): t for t in _device_tokens(request)}
    if not tokens:
        return None
    row = await request.app[POOL].fetchrow(Q["trusted_device"], list(tokens), email, DEVICE_DAYS)
    return None if row is None else (row["id"], tokens[row["token_sha256"]])


async def _remember_device(request: web.Request, response: web.StreamResponse, user: User) -> None:
    """This browser has just signed in as `user`: known to their account
    from now on (or still, for another DEVICE_DAYS), beside the few others
    signed in on it lately."""
    pool = request.app[POOL]
    known = await known_device(request, user.email)
    if known is None:
        token = secrets.token_urlsafe(32)
        await pool.execute(Q["trusted_device_add"], user.id, token_digest(token), DEVICE_DAYS)
    else:
        device, token = known
        await pool.execute(Q["trusted_device_used"], device)
    others = [t for t in _device_tokens(request) if t != token]
    response.set_cookie(
        DEVICE_COOKIE,
        ".".join([token, *others][:DEVICES_PER_BROWSER]),
        max_age=DEVICE_DAYS * 24 * 3600,
        httponly=True,
        samesite="Lax",
        secure=request.secure,
        path="/",
    )


async def start_session(request: web.Request, response: web.StreamResponse, user: User) -> None:
    token = secrets.token_urlsafe(32)
    await request.app[POOL].execute(
        Q["create_session"], token_digest(token), user.id, SESSION_SECONDS
    )
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=SESSION_SECONDS,
        httponly=True,
        samesite="Lax",
        secure=request.secure,
        path="/",
    )
    await _remember_device(request, response, user)


async def end_session(request: web.Request, response: web.StreamResponse) -> None:
    token = request.cookies.get(SESSION_COOKIE)
    if token:
        await request.app[POOL].execute(Q["delete_session"], token_digest(token))
    response.del_cookie(SESSION_COOKIE, path="/")
