"""Service-level reports, per authority and overall, by 15-minute interval,
day or month; and an authority's dashboard with pictures.

Terms (contact-centre practice; docs/reports.md says the same):
- offered: calls that joined the queue (and have since been answered or
  ended: a call still waiting is counted once it is settled);
- answered in the window: answered no later than the deadline set when the
  call joined (joining time plus the authority's answer window then);
- short abandon: a caller who left unanswered within the threshold
  (default 6 s); left out of both sides of the service level;
- service level: answered in the window / (offered - short abandons);
  abandons count against it;
- abandonment rate: abandoned (not short) / (offered - short abandons);
- average speed of answer: mean wait of answered calls; the longest wait is
  over every call, the 95th and 99th percentile waits over every call but
  short abandons.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import asyncpg
from aiohttp import web

from signvideo import access, auth, billing, exports, hours
from signvideo.db import Q
from signvideo.keys import CONFIG
from signvideo.views import render

# Times of reports across authorities are each call's own local time; their
# ranges are days in this zone.
OVERALL_TIME_ZONE = "Europe/London"
# The longest range, in days, for each grouping.
GROUPINGS = {"interval": 7, "day": 366, "month": 366}
GROUPING_WORDS = {"interval": "15 minutes", "day": "day", "month": "month"}


@dataclass(frozen=True)
class Figures:
    bucket: dt.datetime | None
    offered: int
    answered: int
    answered_in_window: int
    abandoned: int
    short_abandons: int
    average_answer_seconds: float | None
    longest_wait_seconds: float | None
    p95_wait_seconds: float | None
    p99_wait_seconds: float | None

    @property
    def counted(self) -> int:
        """Calls on both sides of the service level."""
        return self.offered - self.short_abandons

    @property
    def service_level_percent(self) -> float | None:
        return None if self.counted == 0 else 100 * self.answered_in_window / self.counted

    @property
    def abandonment_percent(self) -> float | None:
        return None if self.counted == 0 else 100 * self.abandoned / self.counted

    def as_json(self) -> dict[str, Any]:
        figures = asdict(self)
        figures["bucket"] = None if self.bucket is None else self.bucket.isoformat()
        for name in (
            "average_answer_seconds",
            "longest_wait_seconds",
            "p95_wait_seconds",
            "p99_wait_seconds",
        ):
            if figures[name] is not None:
                figures[name] = round(float(figures[name]), 1)
        level, abandoned = self.service_level_percent, self.abandonment_percent
        figures["service_level_percent"] = None if level is None else round(level, 1)
        figures["abandonment_percent"] = None if abandoned is None else round(abandoned, 1)
        return figures


def _figures(row: asyncpg.Record) -> Figures:
    def seconds(value: Any) -> float | None:
        return None if value is None else float(value)

    return Figures(
        row["bucket"],
        row["offered"],
        row["answered"],
        row["answered_in_window"],
        row["abandoned"],
        row["short_abandons"],
        seconds(row["average_answer_seconds"]),
        seconds(row["longest_wait_seconds"]),
        seconds(row["p95_wait_seconds"]),
        seconds(row["p99_wait_seconds"]),
    )


def local_range(
    first_day: dt.date, last_day: dt.date, time_zone: str
) -> tuple[dt.datetime, dt.datetime]:
    zone = hours.zone(time_zone)
    return (
        dt.datetime.combine(first_day, dt.time(), zone),
        dt.datetime.combine(last_day + dt.timedelta(days=1), dt.time(), zone),
    )


async def report(
    con: asyncpg.Connection,
    authority_id: int | None,
    start: dt.datetime,
    end: dt.datetime,
    by: str,
    short_abandon: float,
) -> tuple[list[Figures], Figures]:
    """(a row per interval, day or month; the whole range)."""
    rows = await con.fetch(Q["service_levels"], authority_id, start, end, by, short_abandon)
    # The grand total comes last; with no calls at all it is the only row.
    *periods, total = rows
    return [_figures(row) for row in periods], _figures(total)


@dataclass(frozen=True)
class Request:
    authority: asyncpg.Record | None
    first_day: dt.date
    last_day: dt.date
    by: str

    @property
    def time_zone(self) -> str:
        return OVERALL_TIME_ZONE if self.authority is None else self.authority["time_zone"]


class ReportError(ValueError):
    def __init__(self, message: str, field: str, status: int = 400) -> None:
        super().__init__(message)
        self.field = field
        self.status = status


async def read_request(request: web.Request, user: auth.User, query: Mapping[str, str]) -> Request:
    slug = query.get("authority", "all") or "all"
    authority = None
    if slug != "all":
        try:
            authority = await access.visible_authority(request, user, slug, "reports")
        except access.AuthorityRefused as refused:
            raise ReportError(str(refused), "authority", refused.status) from None
    elif access.authority_of(user) is not None:
        raise ReportError("Your account sees one authority's reports: choose it.", "authority", 403)
    by = query.get("by", "day")
    if by not in GROUPINGS:
        raise ReportError(f"'by' must be one of: {', '.join(GROUPINGS)}; {by[:20]!r} is not.", "by")
    today = dt.date.today()
    days = {
        "from": query.get("from", today.replace(day=1).isoformat()),
        "to": query.get("to", today.isoformat()),
    }
    try:
        _, first_day, last_day = exports.parse_range(days)
    except exports.SelectionError as err:
        raise ReportError(str(err), err.field) from None
    assert first_day is not None and last_day is not None
    if (last_day - first_day).days >= GROUPINGS[by]:
        raise ReportError(f"By {GROUPING_WORDS[by]}, choose at most {GROUPINGS[by]} days.", "from")
    return Request(authority, first_day, last_day, by)


async def _run(
    request: web.Request, user: auth.User, wanted: Request
) -> tuple[list[Figures], Figures]:
    start, end = local_range(wanted.first_day, wanted.last_day, wanted.time_zone)
    authority_id = None if wanted.authority is None else wanted.authority["id"]
    short = request.app[CONFIG].short_abandon
    async with access.reading_as(request, user) as con:
        return await report(con, authority_id, start, end, wanted.by, short)


async def report_page(request: web.Request) -> web.Response:
    user = await access.require_page(request, access.REPORTS)
    authorities = await access.visible_authorities(request, user)
    query = dict(request.query)
    if "authority" not in query and len(authorities) == 1:
        query["authority"] = authorities[0]["slug"]
    context: dict[str, Any] = {
        "authorities": authorities,
        "selected_authority": query.get("authority", "all")[:63],
        "by": query.get("by", "day")[:10],
        "groupings": GROUPING_WORDS,
        "default_from": query.get("from", dt.date.today().replace(day=1).isoformat())[:10],
        "default_to": query.get("to", dt.date.today().isoformat())[:10],
        "short_abandon": request.app[CONFIG].short_abandon,
        "error": None,
        "rows": [],
        "total": None,
    }
    try:
        wanted = await read_request(request, user, query)
    except ReportError as err:
        context.update(error=str(err), error_field=err.field)
        return await render(request, "service_levels.html", context, status=err.status)
    rows, total = await _run(request, user, wanted)
    context.update(rows=rows, total=total, wanted=wanted)
    return await render(request, "service_levels.html", context)


async def report_api(request: web.Request) -> web.Response:
    """GET /api/v1/service-levels?authority=&from=&to=&by=interval|day|month"""
    user = await access.require_api(request, access.REPORTS)
    try:
        wanted = await read_request(request, user, request.query)
    except ReportError as err:
        raise _http_error(err) from None
    rows, total = await _run(request, user, wanted)
    return web.json_response(
        {
            "authority": None if wanted.authority is None else wanted.authority["slug"],
            "time_zone": wanted.time_zone,
            "from": wanted.first_day.isoformat(),
            "to": wanted.last_day.isoformat(),
            "by": wanted.by,
            "short_abandon_seconds": request.app[CONFIG].short_abandon,
            "rows": [row.as_json() for row in rows],
            "total": total.as_json(),
        }
    )


def _http_error(err: ReportError) -> web.HTTPException:
    kinds: dict[int, type[web.HTTPException]] = {
        400: web.HTTPBadRequest,
        403: web.HTTPForbidden,
        404: web.HTTPNotFound,
    }
    return kinds[err.status](text=str(err))


# The dashboard -----------------------------------------------------------------


def bar_chart(
    values: Sequence[tuple[str, float | None]],
    *,
    maximum: float,
    target: float | None = None,
    unit: str = "",
    width: int = 640,
    height: int = 200,
) -> dict[str, Any]:
    """Bars (x, y, height, label) for an inline SVG; None is a gap."""
    count = max(len(values), 1)
    step = width / count
    scale = (height - 20) / maximum if maximum > 0 else 0
    bars = []
    for n, (label, value) in enumerate(values):
        bar_height = 0.0 if value is None else value * scale
        bars.append(
            {
                "x": round(n * step + step * 0.15, 1),
                "width": round(step * 0.7, 1),
                "y": round(height - bar_height, 1),
                "height": round(bar_height, 1),
                "label": label,
                "value": value,
                "text": "no calls" if value is None else f"{value:,.0f}{unit}",
            }
        )
    return {
        "bars": bars,
        "width": width,
        "height": height,
        "target_y": None if target is None else round(height - target * scale, 1),
    }


async def dashboard_page(request: web.Request) -> web.Response:
    user = await access.require_page(request, access.REPORTS)
    authorities = await access.visible_authorities(request, user)
    slug = request.query.get("authority") or (authorities[0]["slug"] if authorities else "")
    try:
        month = exports.parse_month(request.query.get("month") or dt.date.today().strftime("%Y-%m"))
        wanted = await read_request(request, user, {"authority": slug})
    except (exports.SelectionError, ReportError) as err:
        status = err.status if isinstance(err, ReportError) else 400
        raise _http_error(ReportError(str(err), "month", status)) from None
    if wanted.authority is None:
        raise web.HTTPBadRequest(
            text="The dashboard shows one authority at a time: choose one."
            if authorities
            else "There are no authorities set up yet, so there is nothing to show."
        )
    authority = wanted.authority
    last_day = billing.next_month(month) - dt.timedelta(days=1)
    start, end = local_range(month, last_day, authority["time_zone"])
    short = request.app[CONFIG].short_abandon
    async with access.reading_as(request, user) as con:
        days, total = await report(con, authority["id"], start, end, "day", short)
        used = {
            row["day"]: row
            for row in await con.fetch(Q["minutes_by_day"], authority["id"], start, end)
        }
    levels = {row.bucket.date(): row for row in days if row.bucket is not None}
    every_day = [month + dt.timedelta(days=n) for n in range((last_day - month).days + 1)]
    minutes = [(f"{d.day}", float(used[d]["minutes"]) if d in used else 0.0) for d in every_day]
    service = [
        (f"{d.day}", levels[d].service_level_percent if d in levels else None) for d in every_day
    ]
    target = authority["service_level_target_percent"]
    return await render(
        request,
        "dashboard.html",
        {
            "authorities": authorities,
            "authority": authority,
            "month": month,
            "days": every_day,
            "total": total,
            "target": target,
            "minutes_total": sum(value for _, value in minutes),
            "pence_total": sum(row["net_pence"] for row in used.values()),
            "minutes_chart": bar_chart(
                minutes, maximum=max([v for _, v in minutes] + [1.0]), unit=" min"
            ),
            "service_chart": bar_chart(service, maximum=100.0, target=float(target), unit="%"),
            "minutes": minutes,
            "service": service,
            "levels": levels,
        },
    )
