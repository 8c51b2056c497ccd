"""The JSON API: queue figures for wallboards, and availability for callers' pages."""

from __future__ import annotations

from aiohttp import web

from signvideo import access, admission
from signvideo.db import Q
from signvideo.errors import NotFound
from signvideo.keys import POOL


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
