"""Finance: the usage export, as a page for staff and as an API for finance
systems, and the API tokens those systems use. An authority's staff and
tokens read through row-level security (access.reading_as, db.authority_scope)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

import asyncpg
from aiohttp import web

from signvideo import access, audit, auth, billing, forms, tokens
from signvideo.db import Q
from signvideo.keys import POOL
from signvideo.views import render

MAX_EXPORT_DAYS = 366
FORMATS = ("csv",)


class RangeError(ValueError):
    """A bad date range; `field` names the parameter at fault."""

    def __init__(self, message: str, field: str) -> None:
        super().__init__(message)
        self.field = field


def _parse_day(value: str | None, name: str) -> dt.date:
    if not value:
        raise RangeError(f"Enter a '{name}' date, like 2026-11-01.", name)
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise RangeError(
            f"The '{name}' date {value[:40]!r} is not a date; write it like 2026-11-01.", name
        ) from None


def date_range(query: Mapping[str, str]) -> tuple[dt.date, dt.date]:
    """The days from `from` to `to`, both included, checked."""
    first_day = _parse_day(query.get("from"), "from")
    last_day = _parse_day(query.get("to"), "to")
    if last_day < first_day:
        raise RangeError("The 'to' date is before the 'from' date.", "to")
    if (last_day - first_day).days >= MAX_EXPORT_DAYS:
        raise RangeError(f"Choose a range of at most {MAX_EXPORT_DAYS} days.", "from")
    return first_day, last_day


async def _authorities(request: web.Request, user: auth.User) -> list[Any]:
    """The authorities whose usage `user` may see (the database decides)."""
    async with access.reading_as(request, user) as con:
        rows: list[Any] = await con.fetch(Q["authorities_listed"])
    return rows


def _month_range(today: dt.date) -> tuple[str, str]:
    first = today.replace(day=1)
    return first.isoformat(), today.isoformat()


async def finance_page(request: web.Request) -> web.Response:
    user = await access.require_page(request, access.FINANCE)
    first, last = _month_range(dt.date.today())
    return await render(
        request,
        "finance.html",
        {
            "authorities": await _authorities(request, user),
            "default_from": first,
            "default_to": last,
            "error": None,
        },
    )


async def _stream_csv(
    request: web.Request,
    authority_id: int,
    slug: str,
    first_day: dt.date,
    last_day: dt.date,
) -> web.StreamResponse:
    """The usage CSV, read as that authority's staff (row-level security)."""
    filename = f"signvideo-usage-{slug}-{first_day}-to-{last_day}.csv"
    response = web.StreamResponse(
        headers={
            "Content-Type": "text/csv; charset=utf-8; header=present",
            "Content-Disposition": f'attachment; filename="{filename}"',
            "Cache-Control": "no-store",
        }
    )
    await response.prepare(request)
    async with access.reading_for(request, authority_id) as con:
        async for chunk in billing.usage_csv_chunks(con, authority_id, first_day, last_day):
            await response.write(chunk)
    await response.write_eof()
    return response


async def usage_csv(request: web.Request) -> web.StreamResponse:
    user = await access.require_page(request, access.FINANCE)
    allowed = await _authorities(request, user)
    query = request.query
    slug = query.get("authority", "")

    async def refuse(message: str, status: int, field: str = "authority") -> web.Response:
        first, last = _month_range(dt.date.today())
        return await render(
            request,
            "finance.html",
            {
                "authorities": allowed,
                "default_from": query.get("from", first)[:10],
                "default_to": query.get("to", last)[:10],
                "selected_authority": slug,
                "error": message,
                "error_field": field,
            },
            status=status,
        )

    if not slug:
        return await refuse("Choose an authority.", 400)
    authority = next((a for a in allowed if a["slug"] == slug), None)
    if authority is None:
        if await request.app[POOL].fetchrow(Q["authority_by_slug"], slug):
            return await refuse("Your account cannot see that authority's usage.", 403)
        return await refuse(f"There is no authority called {slug[:63]!r}.", 404)
    try:
        first_day, last_day = date_range(query)
    except RangeError as err:
        return await refuse(str(err), 400, err.field)
    await audit.record(
        request.app[POOL],
        request,
        "export.usage_csv",
        user=user,
        authority_id=authority["id"],
        detail={"from": first_day.isoformat(), "to": last_day.isoformat()},
    )
    return await _stream_csv(request, authority["id"], slug, first_day, last_day)


# The API ----------------------------------------------------------------------


async def usage_api(request: web.Request) -> web.StreamResponse:
    """GET /api/v1/authorities/{slug}/usage?from=&to=&format=csv, for a
    finance system (a bearer token of that authority) or signed-in staff."""
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
        first_day, last_day = date_range(request.query)
    except RangeError as err:
        raise web.HTTPBadRequest(text=str(err)) from err
    wanted = request.query.get("format", "csv")
    if wanted not in FORMATS:
        raise web.HTTPBadRequest(
            text=f"'format' must be one of: {', '.join(FORMATS)}; {wanted[:20]!r} is not."
        )
    await audit.record(
        request.app[POOL],
        request,
        "export.usage_api",
        user=user,
        actor=None if client is None else client.label,
        authority_id=authority_id,
        detail={"from": first_day.isoformat(), "to": last_day.isoformat(), "format": wanted},
    )
    return await _stream_csv(request, authority_id, slug, first_day, last_day)


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
    authorities = await _authorities(request, user)
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
