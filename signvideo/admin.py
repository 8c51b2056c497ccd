"""Pages for the operator administrator: the start page and the audit log."""

from __future__ import annotations

from aiohttp import web

from signvideo import access
from signvideo.db import Q
from signvideo.keys import POOL
from signvideo.views import render

AUDIT_PAGE = 50


async def index(request: web.Request) -> web.Response:
    await access.require_page(request, access.ADMIN)
    return await render(request, "admin/index.html", {})


async def audit_log(request: web.Request) -> web.Response:
    """The newest entries first, a page at a time ("before" an entry id)."""
    await access.require_page(request, access.AUDIT)
    before_text = request.query.get("before")
    before: int | None = None
    if before_text is not None:
        if not before_text.isdigit() or len(before_text) > 18:
            raise web.HTTPBadRequest(
                text=f'"before" must be an entry number, like 120; {before_text[:30]!r} is not.'
            )
        before = int(before_text)
    rows = await request.app[POOL].fetch(Q["audit_recent"], AUDIT_PAGE + 1, before)
    return await render(
        request,
        "admin/audit.html",
        {
            "entries": rows[:AUDIT_PAGE],
            "older": rows[AUDIT_PAGE - 1]["id"] if len(rows) > AUDIT_PAGE else None,
        },
    )
