"""Monthly invoices and credits: a month's usage export adds up to its
invoice to the penny; issued invoices never change; numbers run in sequence
per authority; a late correction goes into the next open month."""

from __future__ import annotations

import asyncio
import csv
import datetime as dt
import io
from typing import Any

import asyncpg
import pytest
from aiohttp.test_utils import TestClient

from signvideo import auth, invoices
from signvideo.db import create_pool
from tests.integration.billing_data import at, ended_call
from tests.integration.conftest import add_authority, form_token, sign_in

NOVEMBER = dt.date(2026, 11, 1)


async def admin_user(pool: asyncpg.Pool) -> auth.User:
    row = await pool.fetchrow("SELECT * FROM users WHERE email = 'admin@demo.example'")
    return auth.User.from_row(row)


async def november(pool: asyncpg.Pool) -> dict[str, Any]:
    """Demo (150p a minute, 20 % VAT) with a 5,000p standing charge from
    November, and a month of calls in every band."""
    await pool.execute(
        """INSERT INTO rate_cards (authority_id, effective_from, in_hours_pence_per_minute,
                                   out_of_hours_pence_per_minute, bank_holiday_pence_per_minute,
                                   billing_increment_seconds, minimum_charge_pence,
                                   monthly_standing_charge_pence, vat_basis_points)
           SELECT id, '2026-11-01', 150, 180, 225, 60, 200, 5000, 2000
           FROM authorities WHERE slug = 'demo'"""
    )
    calls = {
        # Monday 10:00, 285 s: 5 minutes in hours = 750p.
        "in_hours": await ended_call(pool, "demo", at("2026-11-02 09:59:00"),
                                     at("2026-11-02 10:00:00"), at("2026-11-02 10:04:45")),
        # Saturday, 61 s: 2 minutes out of hours = 360p.
        "weekend": await ended_call(pool, "demo", at("2026-11-07 12:00:00"),
                                    at("2026-11-07 12:00:30"), at("2026-11-07 12:01:31")),
        # 20 s in hours: the 200p minimum.
        "short": await ended_call(pool, "demo", at("2026-11-03 14:00:00"),
                                  at("2026-11-03 14:00:05"), at("2026-11-03 14:00:25")),
        "abandoned": await ended_call(pool, "demo", at("2026-11-04 11:00:00"), None,
                                      at("2026-11-04 11:01:00"), "caller_left"),
        "lost": await ended_call(pool, "demo", at("2026-11-05 11:00:00"),
                                 at("2026-11-05 11:00:20"), at("2026-11-05 11:00:25"),
                                 "caller_disconnected"),
    }  # fmt: skip
    line = await pool.fetchval("SELECT id FROM ledger WHERE call_id = $1", calls["in_hours"])
    return {"calls": calls, "line": line}


@pytest.mark.parametrize(
    ("net", "basis_points", "vat"),
    [
        (150, 2000, 30),
        (153, 2000, 31),  # 30.6
        (-153, 2000, -31),  # a full credit cancels its charge's VAT
        (100, 1750, 18),  # 17.5: half away from zero
        (-100, 1750, -18),
        (102, 500, 5),  # 5.1
        (0, 2000, 0),
    ],
)
async def test_vat_per_line(pool: asyncpg.Pool, net: int, basis_points: int, vat: int) -> None:
    """The ledger's own rounding (vat_on, which its trigger uses)."""
    assert await pool.fetchval("SELECT vat_on($1, $2)", net, basis_points) == vat


async def test_a_months_export_adds_up_to_its_invoice_to_the_penny(
    client: TestClient[Any, Any], pool: asyncpg.Pool, seeded: None
) -> None:
    made = await november(pool)
    admin = await admin_user(pool)
    # A credit of 333p (VAT 66.6p: 67p) on the first call, while November is open.
    credit = await invoices.credit(pool, 1, admin, 333, "Interpreter joined late", made["line"])
    assert credit["billing_month"] == NOVEMBER
    invoice = await invoices.issue(pool, 1, NOVEMBER, admin)
    # 750 + 360 + 200 + 5000 standing - 333 credit = 5977; VAT 150 + 72 + 40 + 1000 - 67.
    assert (invoice["number"], invoice["net_pence"], invoice["vat_pence"]) == (1, 5977, 1195)
    assert invoice["gross_pence"] == 7172
    lines = invoice["lines"]
    assert [line["description"] for line in lines["lines"]] == [
        "Interpreting in hours at 150p a minute: 2 calls, 6 minutes charged",
        "Interpreting out of hours at 180p a minute: 1 call, 2 minutes charged",
        "Monthly standing charge",
        f"Credit for line {made['line']}: Interpreter joined late",
    ]
    assert lines["uncharged_calls"] == {"not_answered": 1, "technical_failure": 1}

    client.session.cookie_jar.clear()
    session = await sign_in(client, "finance@demo.example", "finance-demo")
    headers = {"Cookie": f"signvideo_session={session}"}
    export = await client.get(
        "/finance/usage?authority=demo&period=month&month=2026-11", headers=headers
    )
    rows = list(csv.DictReader(io.StringIO(await export.text(), newline="")))
    assert len(rows) == 7  # five calls, the standing charge, the credit
    assert {r["invoice_number"] for r in rows} == {"DEMO-0001"}
    for column, total in (("net_pence", 5977), ("vat_pence", 1195), ("gross_pence", 7172)):
        assert sum(int(r[column]) for r in rows) == total, column

    page = await (await client.get("/finance/invoices/demo/2026-11", headers=headers)).text()
    assert "Invoice DEMO-0001" in page and "£71.72" in page and "£59.77" in page
    assert "Issue invoice" not in page  # finance staff read; the operator issues


async def test_an_issued_month_never_changes_and_late_lines_go_to_the_next(
    pool: asyncpg.Pool, seeded: None
) -> None:
    made = await november(pool)
    admin = await admin_user(pool)
    first = await invoices.issue(pool, 1, NOVEMBER, admin)
    with pytest.raises(invoices.InvoiceError, match="invoiced already"):
        await invoices.issue(pool, 1, NOVEMBER, admin)
    late = await invoices.credit(pool, 1, admin, 100, "Late correction", made["line"])
    assert late["billing_month"] == dt.date(2026, 12, 1)
    # A call answered in November but rated after the close lands in December too.
    call = await ended_call(pool, "demo", at("2026-11-30 23:50:00"), at("2026-11-30 23:55:00"),
                            at("2026-12-01 00:05:00"))  # fmt: skip
    assert await pool.fetchval(
        "SELECT billing_month FROM ledger WHERE call_id = $1 AND kind = 'call'", call
    ) == dt.date(2026, 12, 1)
    again = await pool.fetchrow("SELECT * FROM invoices WHERE id = $1", first["id"])
    assert dict(again) == dict(first)
    for statement in ("UPDATE invoices SET net_pence = 0", "DELETE FROM invoices"):
        with pytest.raises(asyncpg.RestrictViolationError, match="append-only"):
            await pool.execute(statement)
    # Credits never take back more than was charged.
    with pytest.raises(invoices.InvoiceError, match="has 650p left to credit"):
        await invoices.credit(pool, 1, admin, 651, "Too much", made["line"])
    with pytest.raises(asyncpg.CheckViolationError, match="would exceed"):
        await pool.execute(
            """INSERT INTO ledger (authority_id, kind, billing_month, service_at, net_pence,
                                   vat_basis_points, credit_for, reason, author_id)
               VALUES (1, 'credit', '2026-12-01', now(), -651, 2000, $1, 'x', $2)""",
            made["line"],
            admin.id,
        )


async def test_invoices_are_numbered_in_sequence_per_authority(
    pool: asyncpg.Pool, seeded: None
) -> None:
    admin = await admin_user(pool)
    await add_authority(pool, "other")
    other = await pool.fetchval("SELECT id FROM authorities WHERE slug = 'other'")
    for month in ("2026-09-10", "2026-10-10"):
        for slug in ("demo", "other"):
            await ended_call(pool, slug, at(f"{month} 10:00:00"), at(f"{month} 10:00:10"),
                             at(f"{month} 10:02:00"))  # fmt: skip
    with pytest.raises(invoices.InvoiceError, match="Issue the invoice for September 2026 first"):
        await invoices.issue(pool, 1, dt.date(2026, 10, 1), admin)
    with pytest.raises(invoices.InvoiceError, match="has not ended yet"):
        await invoices.issue(pool, 1, dt.date(2999, 1, 1), admin)
    numbers = [
        (await invoices.issue(pool, authority, dt.date(2026, month, 1), admin))["number"]
        for authority, month in ((1, 9), (other, 9), (1, 10), (other, 10))
    ]
    assert numbers == [1, 1, 2, 2]


async def test_closing_waits_for_a_line_being_written_which_then_moves_on(
    database_url: str, pool: asyncpg.Pool, seeded: None
) -> None:
    """A charge written while its month is being closed: one or the other
    goes first, and the invoice and the line never disagree."""
    admin = await admin_user(pool)
    await november(pool)
    writer = await create_pool(database_url, min_size=1, max_size=1)
    try:
        async with writer.acquire() as con:
            transaction = con.transaction()
            await transaction.start()
            await con.execute(
                """INSERT INTO ledger (authority_id, kind, billing_month, service_at,
                                       net_pence, vat_basis_points)
                   VALUES (1, 'standing_charge', '2026-11-01', now(), 0, 2000)"""
            )
            closing = asyncio.create_task(invoices.issue(pool, 1, NOVEMBER, admin))
            await asyncio.sleep(0.3)
            assert not closing.done()  # waits for the line's transaction
            await transaction.commit()
        invoice = await closing
    finally:
        await writer.close()
    total = await pool.fetchval(
        "SELECT sum(net_pence) FROM ledger WHERE authority_id = 1 AND billing_month = $1",
        NOVEMBER,
    )
    assert invoice["net_pence"] == total


async def test_credit_form_names_its_mistakes(
    client: TestClient[Any, Any], pool: asyncpg.Pool, seeded: None
) -> None:
    made = await november(pool)
    session = await sign_in(client, "admin@demo.example", "admin-demo")
    client.session.cookie_jar.update_cookies({"signvideo_session": session})
    token = await form_token(client, "/finance/invoices/demo/2026-11")
    path = "/finance/invoices/demo/2026-11/credits"
    for data, says in (
        ({"amount_pence": "0", "reason": "x"}, "must be 1 or more"),
        ({"amount_pence": "10", "reason": ""}, "Enter reason"),
        ({"line": "999999", "amount_pence": "10", "reason": "x"}, "has no line 999999"),
        ({"line": str(made["line"]), "amount_pence": "5000", "reason": "x"}, "750p left"),
    ):
        response = await client.post(path, data={**data, "csrf_token": token})
        assert response.status == 400
        assert says in await response.text(), says
    done = await client.post(
        path,
        data={
            "line": str(made["line"]),
            "amount_pence": "50",
            "reason": "Sorry",
            "csrf_token": token,
        },
        allow_redirects=False,
    )
    assert done.status == 303 and done.headers["Location"] == "/finance/invoices/demo/2026-11"
    page = await (await client.get("/finance/invoices/demo/2026-11")).text()
    assert "Draft for November 2026" in page and "Credit for line" in page


async def test_a_quiet_month_is_invoiced_for_its_standing_charge_in_turn(
    pool: asyncpg.Pool, seeded: None
) -> None:
    """From August a 2,000p standing charge; calls only in October: August and
    September are still invoiced, in order, before October."""
    admin = await admin_user(pool)
    await pool.execute(
        """INSERT INTO rate_cards (authority_id, effective_from, in_hours_pence_per_minute,
                                   out_of_hours_pence_per_minute, bank_holiday_pence_per_minute,
                                   billing_increment_seconds, monthly_standing_charge_pence)
           VALUES (1, '2026-08-01', 150, 150, 150, 60, 2000)"""
    )
    await ended_call(pool, "demo", at("2026-10-05 10:00:00"), at("2026-10-05 10:00:10"),
                     at("2026-10-05 10:01:10"))  # fmt: skip
    with pytest.raises(invoices.InvoiceError, match="Issue the invoice for August 2026 first"):
        await invoices.issue(pool, 1, dt.date(2026, 10, 1), admin)
    with pytest.raises(invoices.InvoiceError, match="invoices start with August 2026"):
        await invoices.issue(pool, 1, dt.date(2026, 7, 1), admin)
    august = await invoices.issue(pool, 1, dt.date(2026, 8, 1), admin)
    assert (august["number"], august["net_pence"], august["vat_pence"]) == (1, 2000, 400)
    september = await invoices.issue(pool, 1, dt.date(2026, 9, 1), admin)
    october = await invoices.issue(pool, 1, dt.date(2026, 10, 1), admin)
    assert (september["number"], october["number"]) == (2, 3)
    assert october["net_pence"] == 2000 + 150


async def test_two_credits_at_once_never_take_back_more_than_the_charge(
    database_url: str, pool: asyncpg.Pool, seeded: None
) -> None:
    """The database's own check, without the service's lock: the second of
    two concurrent credits waits for the first and then sees it."""
    made = await november(pool)
    admin = await admin_user(pool)
    insert = """INSERT INTO ledger (authority_id, kind, billing_month, service_at, net_pence,
                                    vat_basis_points, credit_for, reason, author_id)
                VALUES (1, 'credit', '2026-11-01', now(), -500, 2000, $1, 'x', $2)"""
    other = await create_pool(database_url, min_size=1, max_size=1)
    try:
        async with other.acquire() as con:
            transaction = con.transaction()
            await transaction.start()
            await con.execute(insert, made["line"], admin.id)
            second = asyncio.create_task(pool.execute(insert, made["line"], admin.id))
            await asyncio.sleep(0.3)
            assert not second.done()
            await transaction.commit()
        with pytest.raises(asyncpg.CheckViolationError, match="would exceed"):
            await second
    finally:
        await other.close()
    assert (
        await pool.fetchval("SELECT sum(net_pence) FROM ledger WHERE credit_for = $1", made["line"])
        == -500
    )
