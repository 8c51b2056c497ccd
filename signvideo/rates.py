"""An authority's billing terms, for the operator's administrators: its rate
cards (effective-dated, never edited once made) and the cost centres its
calls can be charged to."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import asyncpg
from aiohttp import web

from signvideo import audit, forms
from signvideo.admin import _admin, _authority_row, _see_other
from signvideo.db import Q
from signvideo.forms import Field
from signvideo.hours import DAY_NAMES, zone
from signvideo.keys import POOL
from signvideo.views import render

CLOCK = r"([01]\d|2[0-3]):[0-5]\d"
WEEKDAYS = tuple((str(n), name) for n, name in enumerate(DAY_NAMES, start=1))


def _pence(name: str, label: str, hint: str = "", maximum: int = 100_000) -> Field:
    return Field(
        name, label, kind="number", hint=hint, minimum=0, maximum=maximum, width="input--short"
    )


RATE_CARD_FIELDS = (
    Field(
        "effective_from",
        "In force from",
        kind="date",
        hint="The first day, in the authority's time zone, on which calls are priced by this "
        "card. Today or later: calls already charged keep their price.",
        width="input--date",
    ),
    _pence("in_hours_pence_per_minute", "In-hours rate, pence a minute"),
    _pence("out_of_hours_pence_per_minute", "Out-of-hours rate, pence a minute"),
    _pence("bank_holiday_pence_per_minute", "Bank-holiday rate, pence a minute"),
    Field(
        "billing_increment_seconds",
        "Billing increment in seconds",
        kind="number",
        hint="Time is charged in steps of this many seconds, rounded up: 1 for per-second, "
        "60 for whole minutes, 900 for quarter hours.",
        minimum=1,
        maximum=3600,
        width="input--short",
    ),
    _pence("minimum_charge_pence", "Minimum charge per answered call, pence"),
    _pence(
        "monthly_standing_charge_pence",
        "Monthly standing charge, pence",
        hint="Added to each month's invoice. 0 for none.",
        maximum=10_000_000,
    ),
    Field(
        "vat_percent",
        "VAT rate, per cent",
        hint="Like 20, or 0 if the authority is not charged VAT.",
        pattern=r"100(\.0{1,2})?|\d{1,2}(\.\d{1,2})?",
        pattern_words="must be a per cent from 0 to 100, like 20 or 17.5",
        width="input--short",
    ),
    Field(
        "in_hours_days",
        "In-hours days",
        kind="checkboxes",
        required=False,
        hint="Calls answered on these days, between the times below, have the in-hours "
        "rate; bank holidays of the authority's nation have their own.",
        choices=WEEKDAYS,
    ),
    Field(
        "in_hours_start",
        "In hours from",
        hint="24-hour clock, like 09:00.",
        pattern=CLOCK,
        pattern_words="must be a time like 09:00",
        width="input--short",
    ),
    Field(
        "in_hours_end",
        "In hours until",
        hint="Like 17:00: a call answered at 17:00 is out of hours.",
        pattern=CLOCK + "|24:00",
        pattern_words="must be a time like 17:00",
        width="input--short",
    ),
    Field(
        "technical_grace_seconds",
        "Seconds a failed connection is free",
        kind="number",
        hint="A call whose connection fails within this many seconds of being answered is "
        "not charged.",
        minimum=0,
        maximum=300,
        width="input--short",
    ),
)

COST_CENTRE_FIELDS = (
    Field(
        "code",
        "Code",
        hint="As the authority's ledger knows it, like HOU or 4410. Letters, numbers, dots, "
        "hyphens and underscores.",
        pattern=r"[A-Za-z0-9][A-Za-z0-9._-]{0,31}",
        pattern_words="must be letters, numbers, dots, hyphens or underscores, up to 32",
        max_length=32,
        width="input--medium",
    ),
    Field("name", "Name callers see", hint="Like Housing.", max_length=100),
)

CARD_DEFAULTS: dict[str, forms.Value] = {
    "billing_increment_seconds": 60,
    "minimum_charge_pence": 0,
    "monthly_standing_charge_pence": 0,
    "vat_percent": "20",
    "in_hours_days": ["1", "2", "3", "4", "5"],
    "in_hours_start": "09:00",
    "in_hours_end": "17:00",
    "technical_grace_seconds": 10,
}


def _local_today(row: asyncpg.Record) -> dt.date:
    return dt.datetime.now(zone(row["time_zone"])).date()


async def _page(
    request: web.Request,
    row: asyncpg.Record,
    *,
    card_form: forms.Form | None = None,
    centre_form: forms.Form | None = None,
    status: int = 200,
) -> web.Response:
    pool = request.app[POOL]
    today = _local_today(row)
    cards = await pool.fetch(Q["admin_rate_cards"], row["id"])
    started = [c["id"] for c in cards if c["effective_from"] <= today]  # by date
    in_force = started[-1] if started else None
    saved = {
        "created": "The authority has been set up. Give it a rate card so that its calls "
        "are charged.",
        "card": "The rate card has been added.",
        "card_removed": "The rate card has been removed.",
        "centre": "The cost centre has been added.",
        "centre_changed": "The cost centre has been changed.",
    }.get(request.query.get("saved", ""))
    return await render(
        request,
        "admin/billing.html",
        {
            "authority": row,
            "cards": cards,
            "in_force": in_force,
            "today": today,
            "day_names": dict(WEEKDAYS),
            "centres": await pool.fetch(Q["admin_cost_centres"], row["id"]),
            "card_form": card_form or forms.Form(RATE_CARD_FIELDS, {**CARD_DEFAULTS}),
            "centre_form": centre_form or forms.Form(COST_CENTRE_FIELDS),
            "saved": saved,
        },
        status=status,
    )


async def billing_page(request: web.Request) -> web.Response:
    await _admin(request)
    return await _page(request, await _authority_row(request))


def _minutes(text: str) -> int:
    hours, minutes = text.split(":")
    return int(hours) * 60 + int(minutes)


def _clock(text: str) -> dt.time:
    """09:00 as a time; 24:00 as the end of the day."""
    if text == "24:00":
        return dt.time.max
    return dt.time(*divmod(_minutes(text), 60))


def _card_arguments(form: forms.Form) -> list[Any]:
    v = form.values
    return [
        v["effective_from"],
        v["in_hours_pence_per_minute"],
        v["out_of_hours_pence_per_minute"],
        v["bank_holiday_pence_per_minute"],
        v["billing_increment_seconds"],
        v["minimum_charge_pence"],
        v["monthly_standing_charge_pence"],
        int(Decimal(str(v["vat_percent"])) * 100),
        sorted(int(day) for day in v["in_hours_days"] or []),  # type: ignore[union-attr]
        _clock(str(v["in_hours_start"])),
        _clock(str(v["in_hours_end"])),
        v["technical_grace_seconds"],
    ]


async def rate_card_add(request: web.Request) -> web.Response:
    user = await _admin(request)
    row = await _authority_row(request)
    form = forms.read(RATE_CARD_FIELDS, await request.post())
    start, end = form.values.get("in_hours_start"), form.values.get("in_hours_end")
    clocks_ok = not {"in_hours_start", "in_hours_end"} & form.errors.keys()
    if (
        clocks_ok
        and isinstance(start, str)
        and isinstance(end, str)
        and start
        and end
        and _minutes(end) <= _minutes(start)
    ):
        form.errors["in_hours_end"] = "In hours until must be later than in hours from."
    first = form.values.get("effective_from")
    today = _local_today(row)
    if isinstance(first, dt.date) and first < today:
        form.errors["effective_from"] = (
            f"In force from must be today ({today.isoformat()}) or later: calls before it "
            "have been charged already."
        )
    if first == today and "effective_from" not in form.errors:
        midnight = dt.datetime.combine(today, dt.time(), zone(row["time_zone"]))
        if await request.app[POOL].fetchval(Q["admin_answered_since"], row["id"], midnight):
            form.errors["effective_from"] = (
                "Calls have been answered today under the card in force, so a new card can "
                "start tomorrow at the earliest: every call of a day is priced alike."
            )
    if not form.ok:
        return await _page(request, row, card_form=form, status=400)
    async with request.app[POOL].acquire() as con, con.transaction():
        card_id = await con.fetchval(
            Q["admin_rate_card_insert"], row["id"], *_card_arguments(form), user.id
        )
        if card_id is None:
            form.errors["effective_from"] = (
                f"There is already a rate card from {first}; remove it first, or choose "
                "another day."
            )
        else:
            await audit.record(
                con,
                request,
                "rate_card.add",
                user=user,
                authority_id=row["id"],
                detail={"card": card_id, **{k: str(v) for k, v in form.values.items()}},
            )
    if card_id is None:
        return await _page(request, row, card_form=form, status=400)
    raise _see_other(f"/admin/authorities/{row['slug']}/billing?saved=card")


async def rate_card_remove(request: web.Request) -> web.Response:
    user = await _admin(request)
    row = await _authority_row(request)
    card = forms.path_id(request, "card", "There is no such rate card.")
    async with request.app[POOL].acquire() as con, con.transaction():
        try:
            removed = await con.fetchrow(Q["admin_rate_card_delete"], card, row["id"])
        except asyncpg.ForeignKeyViolationError:
            raise web.HTTPConflict(
                text="Calls have been charged by this rate card, so it stays. To change "
                "prices, add a card from a later day."
            ) from None
        if removed is None:
            raise web.HTTPNotFound(text="There is no such rate card; it may have been removed.")
        await audit.record(
            con,
            request,
            "rate_card.remove",
            user=user,
            authority_id=row["id"],
            detail={k: str(v) for k, v in removed.items()},
        )
    raise _see_other(f"/admin/authorities/{row['slug']}/billing?saved=card_removed")


async def cost_centre_add(request: web.Request) -> web.Response:
    user = await _admin(request)
    row = await _authority_row(request)
    form = forms.read(COST_CENTRE_FIELDS, await request.post())
    if not form.ok:
        return await _page(request, row, centre_form=form, status=400)
    async with request.app[POOL].acquire() as con, con.transaction():
        added = await con.fetchval(
            Q["admin_cost_centre_insert"], row["id"], form.values["code"], form.values["name"]
        )
        if added is not None:
            await audit.record(
                con,
                request,
                "cost_centre.add",
                user=user,
                authority_id=row["id"],
                detail={"code": form.values["code"], "name": form.values["name"]},
            )
    if added is None:
        form.errors["code"] = f"The code {form.values['code']!r} is taken; choose another."
        return await _page(request, row, centre_form=form, status=400)
    raise _see_other(f"/admin/authorities/{row['slug']}/billing?saved=centre")


async def cost_centre_toggle(request: web.Request) -> web.Response:
    """A cost centre in use cannot be deleted; it can be taken off the list."""
    user = await _admin(request)
    row = await _authority_row(request)
    code = request.match_info["code"]
    async with request.app[POOL].acquire() as con, con.transaction():
        active = await con.fetchval(Q["admin_cost_centre_toggle"], row["id"], code)
        if active is None:
            raise web.HTTPNotFound(text=f"There is no cost centre {code[:32]!r}.")
        await audit.record(
            con,
            request,
            "cost_centre.offered" if active else "cost_centre.withdrawn",
            user=user,
            authority_id=row["id"],
            detail={"code": code},
        )
    raise _see_other(f"/admin/authorities/{row['slug']}/billing?saved=centre_changed")
