"""The JSON API: queue figures for wallboards, and availability for callers' pages."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web

from signvideo import access, admission
from signvideo.db import Q
from signvideo.errors import NotFound
from signvideo.keys import POOL

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def json_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Under /api/, an error is JSON: {"error": what was wrong and what to do}."""
    if not request.path.startswith("/api/"):
        return await handler(request)
    try:
        return await handler(request)
    except web.HTTPException as err:
        if err.status < 400:
            raise
        text = err.text or ""
        if not text or text.startswith(f"{err.status}:"):
            text = {
                404: "There is nothing at this address; see /api/openapi.json.",
                405: f"{request.method} is not allowed here; see /api/openapi.json.",
            }.get(err.status, err.reason)
        headers = {
            k: v
            for k, v in err.headers.items()
            if k in ("WWW-Authenticate", "Retry-After", "Allow")
        }
        return web.json_response(
            {"error": text}, status=err.status, headers={**headers, "Cache-Control": "no-store"}
        )


async def availability(request: web.Request) -> web.Response:
    language = request.query.get("language")
    if language is not None and not 1 <= len(language) <= 40:
        raise web.HTTPBadRequest(text='"language" must be a short code like BSL.')
    try:
        body = await admission.availability(request.app[POOL], request.match_info["slug"], language)
    except NotFound as err:
        raise web.HTTPNotFound(text=err.message) from err
    return web.json_response(body, headers={"Cache-Control": "no-store"})


async def queues(request: web.Request) -> web.Response:
    user = await access.require_api(request, access.QUEUES)
    rows = await request.app[POOL].fetch(Q["queues_overview"], access.authority_of(user))
    return web.json_response(
        {
            "authorities": [
                {
                    "slug": r["slug"],
                    "name": r["name"],
                    "answer_seconds": r["answer_seconds"],
                    "languages": list(r["languages"]),
                    "waiting": r["waiting"],
                    "longest_wait_seconds": r["longest_wait_seconds"],
                    "oldest_deadline": None
                    if r["oldest_deadline"] is None
                    else r["oldest_deadline"].isoformat(),
                    "eligible_interpreters_signed_in": r["eligible_signed_in"],
                    "eligible_interpreters_available": r["eligible_available"],
                }
                for r in rows
            ]
        },
        headers={"Cache-Control": "no-store"},
    )
