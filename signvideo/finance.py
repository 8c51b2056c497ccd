"""Finance: the usage export, as a page for staff and as an API for finance
systems, and the API tokens those systems use. An authority's staff and
tokens read through row-level security (access.reading_as, db.authority_scope)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

import asyncpg
from aiohttp import web

from signvideo import access, audit, auth, exports, forms, tokens
from signvideo.db import Q
from signvideo.keys import POOL
from signvideo.views import render

EXPORT_COLUMNS = exports.COLUMN_NOTES


def _last_month(today: dt.date) -> str:
    return (today.replace(day=1) - dt.timedelta(days=1)).strftime("%Y-%m")


def _page_defaults(query: Mapping[str, str]) -> dict[str, Any]:
    today = dt.date.today()
    return {
        "period": query.get("period", "month")[:10],
        "default_month": query.get("month", _last_month(today))[:10],
        "default_from": query.get("from", today.replace(day=1).isoformat())[:10],
        "default_to": query.get("to", today.isoformat())[:10],
        "selected_format": query.get("format", "csv")[:10],
        "selected_authority": query.get("authority", "")[:63],
    }


async def finance_page(request: web.Request) -> web.Response:
    user = await access.require_page(request, access.FINANCE)
    return await render(
        request,
        "finance.html",
        {
            "authorities": await access.visible_authorities(request, user),
            "error": None,
            "columns": EXPORT_COLUMNS,
            **_page_defaults(request.query),
        },
    )


async def _stream(
    request: web.Request, authority_id: int, sel: exports.Selection, fmt: str
) -> web.StreamResponse:
    """The export, read as that authority's staff (row-level security)."""
    response = web.StreamResponse(
        headers={
            "Content-Type": exports.MEDIA_TYPES[fmt],
            "Content-Disposition": f'attachment; filename="{sel.filename(fmt)}"',
            "Cache-Control": "no-store",
        }
    )
    async with access.reading_for(request, authority_id) as con:
        try:
            await exports.check_size(con, sel, fmt)
        except exports.TooManyLines as err:
            raise web.HTTPRequestEntityTooLarge(
                max_size=exports.XLSX_MAX_LINES, actual_size=0, text=str(err)
            ) from None
        await response.prepare(request)
        await exports.export(con, sel, fmt, response.write)
    await response.write_eof()
    return response


def _period_query(query: Mapping[str, str]) -> dict[str, str]:
    """The page's form: a billing month, or a range of days."""
    if query.get("period", "month") == "month":
        return {"month": query.get("month", "")}
    return {"from": query.get("from", ""), "to": query.get("to", "")}


async def usage_download(request: web.Request) -> web.StreamResponse:
    user = await access.require_page(request, access.FINANCE)
    allowed = await access.visible_authorities(request, user)
    query = request.query
    slug = query.get("authority", "")

    async def refuse(message: str, status: int, field: str = "authority") -> web.Response:
        return await render(
            request,
            "finance.html",
            {
                "authorities": allowed,
                "error": message,
                "error_field": field,
                "columns": EXPORT_COLUMNS,
                **_page_defaults(query),
            },
            status=status,
        )

    if not slug:
        return await refuse("Choose an authority.", 400)
    try:
        authority = await access.visible_authority(request, user, slug, "usage")
    except access.AuthorityRefused as refused:
        return await refuse(str(refused), refused.status)
    try:
        fmt = exports.parse_format(query.get("format"))
        sel = exports.selection(authority, _period_query(query))
    except exports.SelectionError as err:
        return await refuse(str(err), 400, err.field)
    await audit.record(
        request.app[POOL],
        request,
        "export.usage",
        user=user,
        authority_id=authority["id"],
        detail={**sel.described, "format": fmt},
    )
    return await _stream(request, authority["id"], sel, fmt)


# The API ----------------------------------------------------------------------


async def usage_api(request: web.Request) -> web.StreamResponse:
    """GET /api/v1/authorities/{slug}/usage?month= | from=&to=, format=csv|xlsx|json,
    for a finance system (a bearer token of that authority) or signed-in staff."""
    client = await tokens.bearer(request)
    user = None if client is not None else await access.require_api(request, access.FINANCE)
    slug = request.match_info["slug"]
    authority = await request.app[POOL].fetchrow(Q["authority_by_slug"], slug)
    if authority is None:
        raise web.HTTPNotFound(text=f"There is no authority called {slug[:63]!r}.")
    authority_id = authority["id"]
    if client is not None:
        if client.authority_id != authority_id:
            raise web.HTTPForbidden(text="This API token is for another authority's usage.")
        if tokens.USAGE_READ not in client.scopes:
            raise web.HTTPForbidden(text="This API token may not read usage.")
    elif user is not None and access.authority_of(user) not in (None, authority_id):
        raise web.HTTPForbidden(text="Your account cannot see that authority's usage.")
    try:
        fmt = exports.parse_format(request.query.get("format"))
        sel = exports.selection(authority, request.query)
    except exports.SelectionError as err:
        raise web.HTTPBadRequest(text=str(err)) from err
    await audit.record(
        request.app[POOL],
        request,
        "export.usage_api",
        user=user,
        actor=None if client is None else client.label,
        authority_id=authority_id,
        detail={**sel.described, "format": fmt},
    )
    return await _stream(request, authority_id, sel, fmt)


# API tokens -------------------------------------------------------------------


async def _token_fields(authorities: list[Any]) -> list[forms.Field]:
    return [
        forms.Field(
            "name",
            "What the token is for",
            hint="Like: Agresso monthly import. It helps you tell tokens apart.",
            max_length=100,
        ),
        forms.Field(
            "authority",
            "Authority",
            kind="select",
            choices=[(a["slug"], a["name"]) for a in authorities],
        ),
    ]


async def _token_list(request: web.Request, user: auth.User) -> list[asyncpg.Record]:
    async with access.reading_as(request, user) as con:
        rows: list[asyncpg.Record] = await con.fetch(Q["api_tokens_listed"])
    return rows


async def tokens_page(request: web.Request) -> web.Response:
    """List the tokens this person may see; make one; the new one is shown once."""
    user = await access.require_page(request, access.FINANCE)
    authorities = await access.visible_authorities(request, user)
    fields = await _token_fields(authorities)
    status, made = 200, None
    form = forms.Form(
        fields, {"authority": authorities[0]["slug"] if len(authorities) == 1 else None}
    )
    if request.method == "POST":
        form = forms.read(fields, await request.post())
        authority = next(
            (a for a in authorities if a["slug"] == form.values.get("authority")), None
        )
        if form.ok and authority is not None:
            async with request.app[POOL].acquire() as con, con.transaction():
                token_id, made = await tokens.make(
                    con, authority["id"], str(form.values["name"]), user.id
                )
                await audit.record(
                    con,
                    request,
                    "api_token.create",
                    user=user,
                    authority_id=authority["id"],
                    detail={"token": token_id, "name": form.values["name"]},
                )
            form = forms.Form(fields, {"authority": authority["slug"]})
        else:
            status = 400
    revoked = "The token has been revoked." if request.query.get("revoked") else None
    page = await render(
        request,
        "finance_tokens.html",
        {
            "form": form,
            "tokens": await _token_list(request, user),
            "made": made,
            "saved": revoked,
            "base_url": f"{request.scheme}://{request.host}",
        },
        status=status,
    )
    page.headers["Cache-Control"] = "no-store"  # it may show a new token, once
    return page


async def token_revoke(request: web.Request) -> web.Response:
    user = await access.require_page(request, access.FINANCE)
    token_id = forms.path_id(request, "token", "There is no such token.")
    async with request.app[POOL].acquire() as con, con.transaction():
        row = await con.fetchrow(
            Q["api_token_revoke"], token_id, access.authority_of(user), user.id
        )
        if row is None:
            raise web.HTTPNotFound(text="There is no such token, or it was revoked already.")
        await audit.record(
            con,
            request,
            "api_token.revoke",
            user=user,
            authority_id=row["authority_id"],
            detail={"token": token_id, "name": row["name"]},
        )
    raise web.HTTPSeeOther("/finance/tokens?revoked=1")
