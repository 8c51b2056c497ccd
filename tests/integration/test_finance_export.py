"""The finance usage export over HTTP, and pages' answers to bad requests."""

from __future__ import annotations

import csv
import datetime as dt
import io
from typing import Any

import asyncpg
import pytest
from aiohttp.test_utils import TestClient

from signvideo import routing
from signvideo.billing import USAGE_COLUMNS
from signvideo.config import Config
from tests.integration.conftest import add_interpreter, form_token, sign_in

RULES = Config(wrap_up=0)


async def finished_calls(pool: asyncpg.Pool) -> tuple[str, str]:
    user_id = await add_interpreter(pool, "ann@example.org")
    answered = await routing.join_queue(pool, "demo")
    abandoned = await routing.join_queue(pool, "demo")
    await routing.set_state(pool, user_id, "available")
    await routing.match_waiting(pool, RULES)
    await routing.accept(pool, user_id, "Ann", answered.call_id, [])
    await pool.execute(
        "UPDATE calls SET queued_at = now() - interval '170 s', "
        "answered_at = now() - interval '125 s' WHERE id = $1",
        answered.call_id,
    )
    await routing.end_call(pool, answered.call_id, "caller_hung_up", "caller", RULES)
    await routing.end_call(pool, abandoned.call_id, "caller_left", "caller", RULES)
    return str(answered.call_id), str(abandoned.call_id)


async def test_usage_csv_holds_each_call(client: TestClient[Any, Any], pool: asyncpg.Pool) -> None:
    answered, abandoned = await finished_calls(pool)
    await sign_in(client, "finance@demo.example", "finance-demo")
    today = dt.date.today().isoformat()
    client.session.cookie_jar.clear()
    session = await sign_in(client, "finance@demo.example", "finance-demo")
    response = await client.get(
        f"/finance/usage.csv?authority=demo&from={today}&to={today}",
        headers={"Cookie": f"signvideo_session={session}"},
    )
    assert response.status == 200, await response.text()
    assert response.headers["Content-Type"].startswith("text/csv")
    assert "attachment" in response.headers["Content-Disposition"]
    text = await response.text()
    assert text.startswith(",".join(USAGE_COLUMNS) + "\r\n")
    rows = {r["call_id"]: r for r in csv.DictReader(io.StringIO(text))}
    assert set(rows) == {answered, abandoned}
    paid = rows[answered]
    assert int(paid["billable_seconds"]) in (125, 126)
    assert paid["charge_pence"] == "450"  # three minutes started at 150 p
    assert int(paid["queue_wait_seconds"]) >= 45
    assert paid["end_reason"] == "caller_hung_up"
    assert paid["queued_at"].endswith("Z") and paid["answered_at"].endswith("Z")
    assert rows[abandoned]["charge_pence"] == "0"
    assert rows[abandoned]["answered_at"] == ""

    # A range that ends before today leaves today's calls out.
    yesterday = (dt.date.today() - dt.timedelta(days=1)).isoformat()
    response = await client.get(
        f"/finance/usage.csv?authority=demo&from={yesterday}&to={yesterday}",
        headers={"Cookie": f"signvideo_session={session}"},
    )
    assert (await response.text()).count("\r\n") == 1


@pytest.mark.parametrize(
    ("query", "status", "says"),
    [
        ("authority=demo&from=2026-11-30&to=2026-11-01", 400, "before the"),
        ("authority=demo&from=yesterday&to=2026-11-01", 400, "is not a date"),
        ("authority=demo&from=2026-02-30&to=2026-03-01", 400, "is not a date"),
        ("authority=demo&to=2026-11-01", 400, "Enter a"),
        ("authority=demo&from=2020-01-01&to=2026-11-01", 400, "at most 366 days"),
        ("from=2026-11-01&to=2026-11-30", 400, "Choose an authority"),
        ("authority=atlantis&from=2026-11-01&to=2026-11-30", 404, "no authority called"),
    ],
)
async def test_bad_export_requests_say_what_is_wrong(
    client: TestClient[Any, Any], query: str, status: int, says: str
) -> None:
    session = await sign_in(client, "finance@demo.example", "finance-demo")
    response = await client.get(
        f"/finance/usage.csv?{query}", headers={"Cookie": f"signvideo_session={session}"}
    )
    assert response.status == status
    assert says in await response.text()


async def test_export_needs_a_finance_account(
    client: TestClient[Any, Any], pool: asyncpg.Pool
) -> None:
    response = await client.get("/finance/usage.csv?authority=demo", allow_redirects=False)
    assert response.status == 303
    assert response.headers["Location"].startswith("/login?next=/finance/usage.csv")
    await add_interpreter(pool, "ann@example.org")
    from tests.integration.conftest import INTERPRETER_PASSWORD

    session = await sign_in(client, "ann@example.org", INTERPRETER_PASSWORD)
    response = await client.get(
        "/finance/usage.csv?authority=demo", headers={"Cookie": f"signvideo_session={session}"}
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
    session = await sign_in(client, "finance@demo.example", "finance-demo")
    response = await client.get(
        "/finance/usage.csv?authority=demo&from=2026-11-30&to=2026-11-01",
        headers={"Cookie": f"signvideo_session={session}"},
    )
    page = await response.text()
    assert 'href="#to"' in page
    assert '<option value="demo" selected>' in page
    assert 'value="2026-11-30"' in page
