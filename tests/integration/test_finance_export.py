"""The finance usage export (CSV, XLSX, JSON) over HTTP, and pages' answers to
bad requests."""

from __future__ import annotations

import csv
import io
import json
import uuid
from typing import Any

import asyncpg
import openpyxl
import pytest
from aiohttp import ClientResponse
from aiohttp.test_utils import TestClient

from signvideo import exports
from signvideo.config import Config
from tests.integration.billing_data import at, ended_call
from tests.integration.conftest import add_interpreter, form_token, sign_in

RULES = Config(wrap_up=0)


async def a_month_of_calls(pool: asyncpg.Pool) -> dict[str, uuid.UUID]:
    """Demo's calls (150p a minute, whole minutes, 20 % VAT): three whose
    line is in November 2026 (GMT) and one in October (BST)."""
    return {
        "paid": await ended_call(
            pool, "demo", at("2026-11-02 10:00:00"), at("2026-11-02 10:00:45"),
            at("2026-11-02 10:05:30"), cost_centre="HOU",
        ),  # 285 s: 5 minutes, 750p + 150p VAT
        "abandoned": await ended_call(
            pool, "demo", at("2026-11-03 11:00:00"), None, at("2026-11-03 11:00:30"),
            "caller_left",
        ),
        "month_end": await ended_call(
            pool, "demo", at("2026-11-30 23:59:00"), at("2026-11-30 23:59:30"),
            at("2026-12-01 00:00:40"),
        ),  # 70 s: 2 minutes, 300p + 60p VAT, billed in November
        "october": await ended_call(
            pool, "demo", at("2026-10-24 09:00:00"), at("2026-10-24 09:00:10"),
            at("2026-10-24 09:01:10"),
        ),  # 60 s: 150p
    }  # fmt: skip


async def get(client: TestClient[Any, Any], path: str) -> ClientResponse:
    client.session.cookie_jar.clear()
    session = await sign_in(client, "finance@demo.example", "finance-demo")
    return await client.get(path, headers={"Cookie": f"signvideo_session={session}"})


async def test_a_months_csv(client: TestClient[Any, Any], pool: asyncpg.Pool, seeded: None) -> None:
    calls = await a_month_of_calls(pool)
    response = await get(client, "/finance/usage?authority=demo&period=month&month=2026-11")
    assert response.status == 200, await response.text()
    assert response.headers["Content-Type"] == "text/csv; charset=utf-8; header=present"
    assert 'filename="signvideo-usage-demo-2026-11.csv"' in response.headers["Content-Disposition"]
    body = await response.read()
    assert body.count(b"\r\n") == 4 and body.count(b"\n") == 4  # RFC 4180 line ends
    reader = csv.DictReader(io.StringIO(body.decode("utf-8"), newline=""))
    assert reader.fieldnames == list(exports.COLUMN_NOTES)
    rows = {row["call_id"]: row for row in reader}
    assert set(rows) == {str(calls[k]) for k in ("paid", "abandoned", "month_end")}
    paid = rows[str(calls["paid"])]
    assert {k: paid[k] for k in PAID_EXPECTED} == PAID_EXPECTED
    abandoned = rows[str(calls["abandoned"])]
    assert (abandoned["net_pence"], abandoned["zero_rated_reason"]) == ("0", "not_answered")
    assert (abandoned["answered_at_utc"], abandoned["queue_wait_seconds"]) == ("", "30")
    month_end = rows[str(calls["month_end"])]
    assert (month_end["billing_month"], month_end["net_pence"]) == ("2026-11", "300")
    assert month_end["ended_at_local"] == "2026-12-01T00:00:40+00:00"
    assert sum(int(r["gross_pence"]) for r in rows.values()) == 1260


PAID_EXPECTED = {
    "line_type": "call",
    "billing_month": "2026-11",
    "invoice_number": "",
    "authority": "demo",
    "cost_centre": "HOU",
    "language": "BSL",
    "queued_at_utc": "2026-11-02T10:00:00Z",
    "queued_at_local": "2026-11-02T10:00:00+00:00",
    "answered_at_utc": "2026-11-02T10:00:45Z",
    "ended_at_utc": "2026-11-02T10:05:30Z",
    "queue_wait_seconds": "45",
    "billable_seconds": "285",
    "charged_seconds": "300",
    "rate_band": "in_hours",
    "rate_pence_per_minute": "150",
    "billing_increment_seconds": "60",
    "minimum_charge_pence": "0",
    "net_pence": "750",
    "vat_rate_percent": "20.00",
    "vat_pence": "150",
    "gross_pence": "900",
    "end_reason": "caller_hung_up",
    "zero_rated_reason": "",
}


async def test_a_range_of_days_in_local_time(
    client: TestClient[Any, Any], pool: asyncpg.Pool, seeded: None
) -> None:
    calls = await a_month_of_calls(pool)
    response = await get(
        client, "/finance/usage?authority=demo&period=dates&from=2026-10-24&to=2026-10-24"
    )
    rows = list(csv.DictReader(io.StringIO(await response.text(), newline="")))
    assert [r["call_id"] for r in rows] == [str(calls["october"])]
    assert rows[0]["answered_at_local"] == "2026-10-24T10:00:10+01:00"
    assert rows[0]["answered_at_utc"] == "2026-10-24T09:00:10Z"
    # 1 December local is the month-end call's end, not its answer: not in it.
    response = await get(
        client, "/finance/usage?authority=demo&period=dates&from=2026-12-01&to=2026-12-31"
    )
    assert (await response.text()).count("\r\n") == 1


async def test_the_spreadsheet_and_json_say_what_the_csv_says(
    client: TestClient[Any, Any], pool: asyncpg.Pool, seeded: None
) -> None:
    await a_month_of_calls(pool)
    query = "/finance/usage?authority=demo&period=month&month=2026-11&format="
    rows = list(csv.DictReader(io.StringIO(await (await get(client, query + "csv")).text())))

    response = await get(client, query + "xlsx")
    assert response.status == 200
    assert response.headers["Content-Type"] == exports.MEDIA_TYPES["xlsx"]
    book = openpyxl.load_workbook(io.BytesIO(await response.read()), read_only=True)
    sheet = list(book["Usage"].iter_rows(values_only=True))
    assert list(sheet[0]) == list(exports.COLUMN_NOTES)
    as_text = [
        {name: "" if v is None else str(v) for name, v in zip(sheet[0], line, strict=True)}
        for line in sheet[1:]
    ]
    assert as_text == rows
    assert isinstance(sheet[1][list(exports.COLUMN_NOTES).index("net_pence")], int)

    response = await get(client, query + "json")
    assert response.headers["Content-Type"].startswith("application/json")
    document = json.loads(await response.read())
    assert list(document) == [
        "format", "version", "authority", "time_zone", "month", "from", "to", "lines", "totals",
    ]  # fmt: skip
    assert (document["format"], document["version"], document["month"]) == (
        "signvideo-usage",
        1,
        "2026-11",
    )
    assert [list(line) for line in document["lines"]] == [list(exports.COLUMN_NOTES)] * 3
    assert [
        {k: "" if v is None else str(v) for k, v in line.items()} for line in document["lines"]
    ] == rows
    assert document["totals"] == {
        "lines": 3,
        "net_pence": 1050,
        "vat_pence": 210,
        "gross_pence": 1260,
    }


async def test_free_text_stays_on_one_line_and_is_never_a_formula(
    client: TestClient[Any, Any], pool: asyncpg.Pool, seeded: None
) -> None:
    calls = await a_month_of_calls(pool)
    await pool.execute(
        """INSERT INTO ledger (authority_id, kind, billing_month, service_at, net_pence,
                               vat_basis_points, credit_for, reason, author_id, author_name)
           SELECT l.authority_id, 'credit', '2026-11-01', '2026-11-20 12:00Z', -750, 2000,
                  l.id, E'=HYPERLINK("x")\nsecond line, "quoted"', u.id, '@Ada'
           FROM ledger l, users u
           WHERE l.call_id = $1 AND u.email = 'admin@demo.example'""",
        calls["paid"],
    )
    response = await get(client, "/finance/usage?authority=demo&period=month&month=2026-11")
    body = await response.text()
    rows = list(csv.DictReader(io.StringIO(body, newline="")))
    credit = next(r for r in rows if r["line_type"] == "credit")
    assert credit["credit_reason"] == '\'=HYPERLINK("x") second line, "quoted"'
    assert credit["credited_by"] == "'@Ada"
    assert (credit["net_pence"], credit["vat_pence"]) == ("-750", "-150")
    assert sum(int(r["gross_pence"]) for r in rows) == 1260 - 900


@pytest.mark.parametrize(
    ("query", "status", "says"),
    [
        ("authority=demo&period=dates&from=2026-11-30&to=2026-11-01", 400, "before the"),
        ("authority=demo&period=dates&from=yesterday&to=2026-11-01", 400, "is not a date"),
        ("authority=demo&period=dates&from=2026-02-30&to=2026-03-01", 400, "is not a date"),
        ("authority=demo&period=dates&to=2026-11-01", 400, "Enter a"),
        ("authority=demo&period=dates&from=2020-01-01&to=2026-11-01", 400, "at most 366 days"),
        ("authority=demo&period=month&month=2026-13", 400, "is not a month"),
        ("authority=demo&period=month&month=0000-01", 400, "between the years 2000 and 2999"),
        ("authority=demo&period=dates&from=9999-12-31&to=9999-12-31", 400, "between the years"),
        ("authority=demo&period=dates&from=0001-01-01&to=0001-01-02", 400, "between the years"),
        ("authority=demo&period=month&month=", 400, "month&#39;, like 2026-11"),
        ("authority=demo&period=month&month=2026-11&format=pdf", 400, "must be one of"),
        ("period=month&month=2026-11", 400, "Choose an authority"),
        ("authority=atlantis&month=2026-11", 404, "no authority called"),
    ],
)
async def test_bad_export_requests_say_what_is_wrong(
    client: TestClient[Any, Any], query: str, status: int, says: str
) -> None:
    response = await get(client, f"/finance/usage?{query}")
    assert response.status == status
    assert says in await response.text()


@pytest.mark.parametrize(
    ("query", "status", "says"),
    [
        ("month=2026-11&from=2026-11-01&to=2026-11-02", 400, "not both"),
        ("month=26-11", 400, "is not a month"),
        ("month=0000-01&format=xlsx", 400, "between the years"),
        ("from=2026-01-01&to=9999-12-31", 400, "between the years"),
        ("from=2026-11-01", 400, "Enter a 'to' date"),
        ("month=2026-11&format=xml", 400, "must be one of: csv, xlsx, json"),
    ],
)
async def test_bad_api_requests_say_what_is_wrong(
    client: TestClient[Any, Any], query: str, status: int, says: str
) -> None:
    response = await get(client, f"/api/v1/authorities/demo/usage?{query}")
    assert response.status == status
    assert says in (await response.json())["error"]


async def test_export_needs_a_finance_account(
    client: TestClient[Any, Any], pool: asyncpg.Pool
) -> None:
    response = await client.get("/finance/usage?authority=demo", allow_redirects=False)
    assert response.status == 303
    assert response.headers["Location"].startswith("/login?next=/finance/usage")
    await add_interpreter(pool, "ann@example.org")
    from tests.integration.conftest import INTERPRETER_PASSWORD

    session = await sign_in(client, "ann@example.org", INTERPRETER_PASSWORD)
    response = await client.get(
        "/finance/usage?authority=demo", headers={"Cookie": f"signvideo_session={session}"}
    )
    assert response.status == 403


async def test_pages_answer_plainly(client: TestClient[Any, Any]) -> None:
    response = await client.get("/call/atlantis", headers={"Accept": "text/html"})
    assert response.status == 404
    assert "Check the link" in await response.text()
    assert (await client.get("/call/demo")).status == 200
    assert (await client.get("/no/such/page", headers={"Accept": "text/html"})).status == 404
    token = await form_token(client)
    bad_login = await client.post(
        "/login", data={"email": "x@example.org", "password": "nope", "csrf_token": token}
    )
    assert bad_login.status == 401
    assert "not right" in await bad_login.text()
    empty_login = await client.post("/login", data={"csrf_token": token})
    assert empty_login.status == 400
    assert (await client.get("/console", allow_redirects=False)).status == 303
    big = await client.post("/login", data={"email": "a@b", "password": "x" * 100_000})
    assert big.status == 413
    # A form that says it is multipart but gives no boundary (schemathesis found it).
    broken = await client.post("/login", data=b"x", headers={"Content-Type": "multipart/form-data"})
    assert broken.status == 400 and "could not be read" in await broken.text()


async def test_metrics_report_waiting_callers_and_sockets(
    client: TestClient[Any, Any], pool: asyncpg.Pool
) -> None:
    ws = await client.ws_connect("/ws/caller")
    await ws.send_json({"type": "join", "authority": "demo"})
    assert (await ws.receive_json(timeout=5))["type"] == "queued"
    text = await (await client.get("/metrics")).text()
    assert "signvideo_waiting_callers 1.0" in text
    assert 'signvideo_websockets_open{kind="caller"} 1.0' in text
    await ws.close()


async def test_export_error_points_at_the_field_and_keeps_the_choice(
    client: TestClient[Any, Any],
) -> None:
    response = await get(
        client, "/finance/usage?authority=demo&period=dates&from=2026-11-30&to=2026-11-01"
    )
    page = await response.text()
    assert 'href="#to"' in page
    assert '<option value="demo" selected>' in page
    assert 'value="2026-11-30"' in page
