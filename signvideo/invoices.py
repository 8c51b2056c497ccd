"""Monthly invoices and credits.

A month is open until its invoice is issued. Issuing adds the month's
standing charge, totals the month's ledger lines and numbers the invoice
next in the authority's sequence, in one transaction that holds the
authority's row: a line being written at that moment waits, then lands in
the next open month (the ledger's trigger). An issued invoice never changes;
a correction is a credit line, in the corrected line's month while it is
open, otherwise in the next open one. The usage export of a billing month
adds up to its invoice to the penny, because both sum the same lines.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping
from typing import Any

import asyncpg
from aiohttp import web

from signvideo import access, audit, auth, billing, exports, forms, hours
from signvideo.db import Q
from signvideo.forms import Field
from signvideo.keys import POOL
from signvideo.views import render

BAND_WORDS = {
    "in_hours": "in hours",
    "out_of_hours": "out of hours",
    "bank_holiday": "on bank holidays",
}


class InvoiceError(ValueError):
    """Why a month cannot be closed, or a credit given, in plain words."""


def local_month(time_zone: str, now: dt.datetime | None = None) -> dt.date:
    moment = (now or dt.datetime.now(dt.UTC)).astimezone(hours.zone(time_zone))
    return moment.date().replace(day=1)


def describe(row: Mapping[str, Any]) -> str:
    """An invoice line's words."""
    if row["kind"] == "standing_charge":
        return "Monthly standing charge"
    if row["kind"] == "credit":
        about = f" for line {row['credit_for']}" if row["credit_for"] else ""
        return f"Credit{about}: {row['reason']}"
    if row["rate_band"] is None:
        return "Calls not charged"
    minutes = row["charged_seconds"] / 60
    shown = f"{minutes:,.0f}" if minutes == int(minutes) else f"{minutes:,.1f}"
    calls = row["charged_lines"]
    return (
        f"Interpreting {BAND_WORDS[row['rate_band']]} at {row['rate_pence_per_minute']}p a "
        f"minute: {calls:,} call{'s' if calls != 1 else ''}, {shown} minutes charged"
    )


async def lines_of(con: asyncpg.Connection, authority_id: int, month: dt.date) -> dict[str, Any]:
    """A month's invoice lines and totals, as they stand."""
    lines = []
    net = vat = 0
    for row in await con.fetch(Q["invoice_lines"], authority_id, month):
        if row["kind"] == "call" and row["net_pence"] == 0:
            continue  # listed below as calls not charged
        lines.append(
            {
                "description": describe(row),
                "kind": row["kind"],
                "net_pence": row["net_pence"],
                "vat_percent": f"{row['vat_basis_points'] / 100:.2f}",
                "vat_pence": row["vat_pence"],
            }
        )
        net += row["net_pence"]
        vat += row["vat_pence"]
    uncharged = {
        r["reason"]: r["calls"] for r in await con.fetch(Q["uncharged_calls"], authority_id, month)
    }
    return {
        "lines": lines,
        "uncharged_calls": uncharged,
        "net_pence": net,
        "vat_pence": vat,
        "gross_pence": net + vat,
    }


async def issue(
    pool: asyncpg.Pool, authority_id: int, month: dt.date, user: auth.User
) -> asyncpg.Record:
    """Close the month and issue its invoice; InvoiceError says why not."""
    async with pool.acquire() as con, con.transaction():
        authority = await con.fetchrow(Q["authority_for_close"], authority_id)
        if authority is None:
            raise InvoiceError("There is no such authority.")
        if month >= local_month(authority["time_zone"]):
            raise InvoiceError(
                f"{month:%B %Y} has not ended yet in {authority['time_zone']}: a month is "
                "invoiced once it is over."
            )
        if await con.fetchrow(Q["invoice_of_month"], authority_id, month) is not None:
            raise InvoiceError(f"{month:%B %Y} has been invoiced already.")
        due = await con.fetchval(Q["next_month_to_issue"], authority_id)
        if due is None:
            raise InvoiceError("This authority has nothing to invoice yet.")
        if month < due:
            raise InvoiceError(
                f"Nothing was charged in {month:%B %Y}: invoices start with {due:%B %Y}."
            )
        if month > due:
            raise InvoiceError(f"Issue the invoice for {due:%B %Y} first.")
        card = await con.fetchrow(Q["card_on"], authority_id, month)
        if card is not None and card["monthly_standing_charge_pence"] > 0:
            start = dt.datetime.combine(month, dt.time(), hours.zone(authority["time_zone"]))
            await con.execute(
                Q["insert_standing_charge"],
                authority_id,
                month,
                start,
                card["id"],
                card["monthly_standing_charge_pence"],
                card["vat_basis_points"],
            )
        content = await lines_of(con, authority_id, month)
        invoice: asyncpg.Record = await con.fetchrow(
            Q["insert_invoice"],
            authority_id,
            month,
            user.id,
            content["net_pence"],
            content["vat_pence"],
            content,
        )
        await audit.record(
            con,
            None,
            "invoice.issue",
            user=user,
            authority_id=authority_id,
            detail={
                "month": month.isoformat(),
                "number": invoice["number"],
                "gross_pence": invoice["gross_pence"],
            },
        )
    return invoice


async def credit(
    pool: asyncpg.Pool,
    authority_id: int,
    user: auth.User,
    amount_pence: int,
    reason: str,
    line_id: int | None = None,
) -> asyncpg.Record:
    """A credit of `amount_pence` (positive: what is taken off), for one
    line or for the account; InvoiceError says why not."""
    if amount_pence <= 0:
        raise InvoiceError("A credit must be at least 1p.")
    async with pool.acquire() as con, con.transaction():
        # Not locked: the ledger's own trigger puts the line in an open month
        # and makes credits for one line take turns (migration 0012).
        authority = await con.fetchrow(Q["authority_by_id"], authority_id)
        if authority is None:
            raise InvoiceError("There is no such authority.")
        month = local_month(authority["time_zone"])
        call_id, vat_basis_points = None, None
        if line_id is not None:
            line = await con.fetchrow(Q["line_for_credit"], line_id)
            if line is None or line["authority_id"] != authority_id:
                raise InvoiceError(f"This authority has no line {line_id}.")
            if line["kind"] == "credit":
                raise InvoiceError(f"Line {line_id} is a credit itself; credit the charge.")
            if amount_pence > line["remaining_pence"]:
                raise InvoiceError(
                    f"Line {line_id} has {line['remaining_pence']}p left to credit; "
                    f"{amount_pence}p is more."
                )
            month, call_id = line["billing_month"], line["call_id"]
            vat_basis_points = line["vat_basis_points"]
        if vat_basis_points is None:
            today = dt.datetime.now(hours.zone(authority["time_zone"])).date()
            card = await con.fetchrow(Q["card_on"], authority_id, today)
            if card is None:
                raise InvoiceError(
                    "This authority has no rate card in force to take the VAT rate from; "
                    "credit a line instead, or add a rate card."
                )
            vat_basis_points = card["vat_basis_points"]
        try:
            async with con.transaction():
                row: asyncpg.Record = await con.fetchrow(
                    Q["insert_credit"],
                    authority_id,
                    call_id,
                    month,
                    -amount_pence,
                    vat_basis_points,
                    line_id,
                    reason,
                    user.id,
                    user.display_name,
                )
        except asyncpg.CheckViolationError as err:
            if "would exceed" not in str(err):
                raise InvoiceError(f"The credit was refused: {err}.") from None
            # Another credit for the same line was given a moment ago.
            raise InvoiceError(
                f"Line {line_id} has less left to credit than {amount_pence}p now: it was "
                "credited a moment ago. Look at it again."
            ) from None
        await audit.record(
            con,
            None,
            "ledger.credit",
            user=user,
            authority_id=authority_id,
            detail={
                "line": row["id"],
                "for": line_id,
                "pence": amount_pence,
                "reason": reason,
                "month": row["billing_month"].isoformat(),
            },
        )
    return row


# Pages ------------------------------------------------------------------------

CREDIT_FIELDS = (
    Field(
        "line",
        "Line number to correct",
        kind="number",
        required=False,
        hint="From the usage export's line_id column. Leave empty for a credit to the account.",
        minimum=1,
        maximum=2**62,
        width="input--medium",
    ),
    Field(
        "amount_pence",
        "Amount to credit, in pence, before VAT",
        kind="number",
        minimum=1,
        maximum=100_000_000,
        width="input--medium",
    ),
    Field("reason", "Reason", hint="The authority sees it on the invoice.", max_length=300),
)


async def _authority(request: web.Request, user: auth.User, slug: str) -> asyncpg.Record:
    try:
        return await access.visible_authority(request, user, slug, "invoices")
    except access.AuthorityRefused as refused:
        raise refused.http() from None


def _month(request: web.Request) -> dt.date:
    try:
        return exports.parse_month(request.match_info["month"])
    except exports.SelectionError as err:
        raise web.HTTPNotFound(text=str(err)) from None


async def invoices_page(request: web.Request) -> web.Response:
    user = await access.require_page(request, access.FINANCE)
    authority = await _authority(request, user, request.match_info["slug"])
    this_month = local_month(authority["time_zone"])
    async with access.reading_for(request, authority["id"]) as con:
        issued = await con.fetch(Q["invoices_listed"], authority["id"])
        due = await con.fetchval(Q["next_month_to_issue"], authority["id"])
        totals = {row["month"]: row for row in await con.fetch(Q["open_months"], authority["id"])}
    # Every month not yet invoiced, even a quiet one (its standing charge is due).
    months = set(totals)
    while due is not None and due <= this_month:
        months.add(due)
        due = billing.next_month(due)
    open_months = [(month, totals.get(month)) for month in sorted(months, reverse=True)]
    return await render(
        request,
        "invoices.html",
        {
            "authority": authority,
            "issued": issued,
            "open_months": open_months,
            "this_month": this_month,
            "zone": hours.zone(authority["time_zone"]),
            "can_issue": user.role in access.ADMIN,
            "message": request.query.get("message", "")[:200] or None,
        },
    )


async def invoice_page(
    request: web.Request, credit_form: forms.Form | None = None, status: int = 200
) -> web.Response:
    user = await access.require_page(request, access.FINANCE)
    authority = await _authority(request, user, request.match_info["slug"])
    month = _month(request)
    async with access.reading_for(request, authority["id"]) as con:
        invoice = await con.fetchrow(Q["invoice_of_month"], authority["id"], month)
        due = await con.fetchval(Q["next_month_to_issue"], authority["id"])
        content = (
            json.loads(invoice["lines"]) if invoice and isinstance(invoice["lines"], str)
            else invoice["lines"] if invoice else await lines_of(con, authority["id"], month)
        )  # fmt: skip
    return await render(
        request,
        "invoice.html",
        {
            "authority": authority,
            "month": month,
            "invoice": invoice,
            "content": content,
            "reference": None
            if invoice is None
            else f"{authority['slug'].upper()}-{invoice['number']:04d}",
            "can_issue": user.role in access.ADMIN,
            "ended": month < local_month(authority["time_zone"]),
            "due": due,
            "zone": hours.zone(authority["time_zone"]),
            "credit_form": credit_form or forms.Form(CREDIT_FIELDS),
        },
        status=status,
    )


async def invoice_issue(request: web.Request) -> web.Response:
    user = await access.require_page(request, access.ADMIN)
    authority = await _authority(request, user, request.match_info["slug"])
    month = _month(request)
    try:
        await issue(request.app[POOL], authority["id"], month, user)
    except InvoiceError as err:
        raise web.HTTPConflict(text=str(err)) from None
    raise web.HTTPSeeOther(f"/finance/invoices/{authority['slug']}/{month:%Y-%m}")


async def credit_add(request: web.Request) -> web.Response:
    user = await access.require_page(request, access.ADMIN)
    authority = await _authority(request, user, request.match_info["slug"])
    form = forms.read(CREDIT_FIELDS, await request.post())
    if form.ok:
        line = form.values.get("line")
        try:
            row = await credit(
                request.app[POOL],
                authority["id"],
                user,
                int(str(form.values["amount_pence"])),
                str(form.values["reason"]),
                int(str(line)) if line not in (None, "") else None,
            )
        except InvoiceError as err:
            form.errors["line" if "line" in str(err).lower() else "amount_pence"] = str(err)
        else:
            raise web.HTTPSeeOther(
                f"/finance/invoices/{authority['slug']}/{row['billing_month']:%Y-%m}"
            )
    return await invoice_page(request, credit_form=form, status=400)
