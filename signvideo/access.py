"""Who may do what: the roles, what each may open, and whose data they see.

Staff of the shared service (operator administrators, supervisors,
interpreters) work across authorities; an authority's own staff
(administrators, finance) see that authority's data and no other, which the
database enforces too (db.authority_scope, migration 0006).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from urllib.parse import quote, urlsplit

import asyncpg
from aiohttp import web

from signvideo import auth
from signvideo.auth import User
from signvideo.db import Q, authority_scope
from signvideo.keys import POOL

OPERATOR_ADMIN = "operator_admin"
SUPERVISOR = "supervisor"
INTERPRETER = "interpreter"
AUTHORITY_ADMIN = "authority_admin"
AUTHORITY_FINANCE = "authority_finance"

ROLES = (OPERATOR_ADMIN, SUPERVISOR, INTERPRETER, AUTHORITY_ADMIN, AUTHORITY_FINANCE)
AUTHORITY_ROLES = (AUTHORITY_ADMIN, AUTHORITY_FINANCE)
ROLE_NAMES = {
    OPERATOR_ADMIN: "operator administrator",
    SUPERVISOR: "supervisor",
    INTERPRETER: "interpreter",
    AUTHORITY_ADMIN: "authority administrator",
    AUTHORITY_FINANCE: "authority finance",
}

# What each part of the service needs. One table, so that the test which
# walks every route with every role reads the same rules.
CONSOLE = (INTERPRETER,)
FINANCE = (OPERATOR_ADMIN, AUTHORITY_ADMIN, AUTHORITY_FINANCE)
QUEUES = (OPERATOR_ADMIN, SUPERVISOR, AUTHORITY_ADMIN)
REPORTS = (OPERATOR_ADMIN, SUPERVISOR, AUTHORITY_ADMIN, AUTHORITY_FINANCE)
AUDIT = (OPERATOR_ADMIN,)
ADMIN = (OPERATOR_ADMIN,)

# Where each role lands after signing in.
HOME = {
    OPERATOR_ADMIN: "/admin",
    SUPERVISOR: "/",
    INTERPRETER: "/console",
    AUTHORITY_ADMIN: "/finance",
    AUTHORITY_FINANCE: "/finance",
}


def _forbidden(user: User) -> str:
    return (
        f"Your account ({ROLE_NAMES.get(user.role, user.role)}) cannot open this page. "
        "Sign in with an account that can, or ask your administrator."
    )


async def require_page(request: web.Request, roles: tuple[str, ...]) -> User:
    """For pages: the signed-in user if their role is one of `roles`; a
    person not signed in is sent to sign in, anyone else gets 403."""
    user = await auth.current_user(request)
    if user is None:
        raise web.HTTPSeeOther(f"/login?next={quote(request.path_qs, safe='/')}")
    if user.role not in roles:
        raise web.HTTPForbidden(text=_forbidden(user))
    return user


async def require_api(request: web.Request, roles: tuple[str, ...]) -> User:
    """For the JSON API: as require_page, but 401 rather than a redirect."""
    user = await auth.current_user(request)
    if user is None:
        raise web.HTTPUnauthorized(
            text="Sign in first: this needs a staff account.",
            headers={"WWW-Authenticate": 'Cookie realm="signvideo"'},
        )
    if user.role not in roles:
        raise web.HTTPForbidden(text=_forbidden(user))
    return user


def same_site_path(value: str | None) -> str:
    """`value` if it is a path on this site to go to after signing in; "/"
    otherwise. No scheme, no host, and no control character or backslash
    (a browser or URL library may drop or turn those into a second slash)."""
    if (
        not value
        or len(value) > 500
        or not value.startswith("/")
        or value.startswith("//")
        or "\\" in value
        or any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in value)
    ):
        return "/"
    parts = urlsplit(value)
    if (
        parts.scheme
        or parts.netloc
        or not parts.path.startswith("/")
        or parts.path.startswith("//")
    ):
        return "/"
    return value


def authority_of(user: User) -> int | None:
    """The one authority whose data `user` may see, or None for all."""
    return user.authority_id if user.role in AUTHORITY_ROLES else None


def reading_as(request: web.Request, user: User) -> AbstractAsyncContextManager[asyncpg.Connection]:
    """A connection in a read-only transaction that sees what `user` may:
    for an authority's staff, that authority's rows only, enforced by the
    database; for the service's staff, everything."""
    return reading_for(request, authority_of(user))


@asynccontextmanager
async def reading_for(
    request: web.Request, authority_id: int | None
) -> AsyncIterator[asyncpg.Connection]:
    """A read-only transaction that sees one authority's rows only (row-level
    security), or everything when `authority_id` is None."""
    async with request.app[POOL].acquire() as con, con.transaction(readonly=True):
        if authority_id is not None:
            await authority_scope(con, authority_id)
        yield con


async def visible_authorities(request: web.Request, user: User) -> list[asyncpg.Record]:
    """The authorities `user` may see, by name (the database decides)."""
    async with reading_as(request, user) as con:
        rows: list[asyncpg.Record] = await con.fetch(Q["authorities_listed"])
    return rows


class AuthorityRefused(Exception):
    """An authority this person may not see (403), or none by that name (404)."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status

    def http(self) -> web.HTTPException:
        return (
            web.HTTPForbidden(text=str(self))
            if self.status == 403
            else web.HTTPNotFound(text=str(self))
        )


async def visible_authority(
    request: web.Request, user: User, slug: str, what: str
) -> asyncpg.Record:
    """The authority called `slug` if `user` may see it (the database
    decides); AuthorityRefused says which of 403 and 404, `what` naming what
    they were after, like "invoices"."""
    async with reading_as(request, user) as con:
        row: asyncpg.Record | None = await con.fetchrow(Q["authority_by_slug"], slug)
    if row is not None:
        return row
    if await request.app[POOL].fetchrow(Q["authority_by_slug"], slug):
        raise AuthorityRefused(f"Your account cannot see that authority's {what}.", 403)
    raise AuthorityRefused(f"There is no authority called {slug[:63]!r}.", 404)
