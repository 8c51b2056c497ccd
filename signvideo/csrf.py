"""Protection against cross-site request forgery for every form.

A random token lives in a cookie (HttpOnly, SameSite=Strict) and in a hidden
field of each form the service renders; a POST whose field does not match
its cookie is refused, and so is one whose Origin names another site. The
JSON API and the WebSockets are not forms and are not covered here (the
sockets check their Origin with same_origin, the API changes nothing).
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Awaitable, Callable

from aiohttp import web

COOKIE = "signvideo_csrf"
FIELD = "csrf_token"
_NEW: web.RequestKey[str] = web.RequestKey("new_csrf_token")
_SAFE = frozenset({"GET", "HEAD", "OPTIONS"})

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def token(request: web.Request) -> str:
    """The token for forms on this page; a new one (and cookie) if the
    browser has none."""
    existing = request.cookies.get(COOKIE)
    if existing and 20 <= len(existing) <= 100:
        return existing
    if _NEW not in request:
        request[_NEW] = secrets.token_urlsafe(32)
    return request[_NEW]


def _refuse(why: str) -> web.HTTPForbidden:
    return web.HTTPForbidden(
        text=f"{why} Go back, reload the page and try again.",
    )


def same_origin(request: web.Request) -> bool:
    """The request came from a page of this site (or says nothing of where)."""
    origin = request.headers.get("Origin")
    if origin is None or origin == "null":
        return origin is None
    return origin.rstrip("/") == f"{request.scheme}://{request.host}"


@web.middleware
async def protect(request: web.Request, handler: Handler) -> web.StreamResponse:
    if request.method not in _SAFE and not request.path.startswith(("/api/", "/ws/")):
        if not same_origin(request):
            raise _refuse("This form was sent from another website, so it was not accepted.")
        cookie = request.cookies.get(COOKIE, "")
        form = await request.post()
        sent = form.get(FIELD)
        if not cookie or not isinstance(sent, str) or not hmac.compare_digest(sent, cookie):
            raise _refuse("This form has expired or was not sent from this site.")
    return await handler(request)


def attach(request: web.Request, response: web.StreamResponse) -> None:
    """Set the cookie for a token made while rendering this response."""
    if _NEW in request and not response.prepared:
        response.set_cookie(
            COOKIE, request[_NEW], httponly=True, samesite="Strict", secure=request.secure, path="/"
        )
