"""Service-level figures against ones worked out by hand for a constructed
day of calls (Monday 2 November 2026, GMT; demo answers within 60 s)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import asyncpg
import pytest
from aiohttp.test_utils import TestClient

from tests.integration.billing_data import ended_call
from tests.integration.conftest import add_authority, sign_in

DAY = dt.datetime(2026, 11, 2, tzinfo=dt.UTC)

# (joined at, seconds until answered or None, seconds until the call ended)
CALLS = [
    ("10:00:00", 10, 100),  # in time
    ("10:05:00", 45, 100),  # in time
    ("10:10:00", 60, 100),  # in time: exactly at the deadline
    ("10:20:00", 90, 200),  # late
    ("10:40:00", None, 3),  # short abandon
    ("11:00:00", None, 6),  # short abandon: at the threshold
    ("11:10:00", None, 30),  # abandoned
    ("11:20:00", 20, 100),  # in time
    ("11:30:00", 120, 200),  # late
    ("14:00:00", None, 200),  # abandoned
]


async def constructed_day(pool: asyncpg.Pool) -> None:
    for joined, answered, ended in CALLS:
        start = DAY + (dt.datetime.strptime(joined, "%H:%M:%S") - dt.datetime(1900, 1, 1))
        answer = None if answered is None else start + dt.timedelta(seconds=answered)
        end = start + dt.timedelta(seconds=ended)
        await ended_call(pool, "demo", start, answer, end, "caller_left" if answer is None else
                         "caller_hung_up")  # fmt: skip
    # Another authority's call, seen only in the figures for all.
    await add_authority(pool, "other")
    await ended_call(pool, "other", DAY + dt.timedelta(hours=9), None,
                     DAY + dt.timedelta(hours=9, seconds=40), "caller_left")  # fmt: skip


async def levels(client: TestClient[Any, Any], query: str, who: str = "admin") -> Any:
    client.session.cookie_jar.clear()
    email, password = {
        "admin": ("admin@demo.example", "admin-demo"),
        "finance": ("finance@demo.example", "finance-demo"),
    }[who]
    session = await sign_in(client, email, password)
    response = await client.get(
        f"/api/v1/service-levels?{query}", headers={"Cookie": f"signvideo_session={session}"}
    )
    return response.status, await response.json()


async def test_a_day_by_hand(
    client: TestClient[Any, Any], pool: asyncpg.Pool, seeded: None
) -> None:
    await constructed_day(pool)
    status, report = await levels(client, "authority=demo&from=2026-11-02&to=2026-11-02&by=day")
    assert status == 200, report
    assert report["total"] == {
        "bucket": None,
        "offered": 10,
        "answered": 6,
        "answered_in_window": 4,
        "abandoned": 2,
        "short_abandons": 2,
        # 4 in time of 10 - 2 short abandons; 2 abandons of 8.
        "service_level_percent": 50.0,
        "abandonment_percent": 25.0,
        # (10 + 45 + 60 + 90 + 20 + 120) / 6
        "average_answer_seconds": 57.5,
        "longest_wait_seconds": 200.0,
        # Waits but short abandons, in order: 10 20 30 45 60 90 120 200;
        # interpolated at 0.95 x 7 = 6.65 and 0.99 x 7 = 6.93 places.
        "p95_wait_seconds": 172.0,
        "p99_wait_seconds": 194.4,
    }
    assert [row["bucket"] for row in report["rows"]] == ["2026-11-02T00:00:00"]
    assert report["rows"][0]["service_level_percent"] == 50.0


async def test_by_quarter_hour_and_for_everyone(
    client: TestClient[Any, Any], pool: asyncpg.Pool, seeded: None
) -> None:
    await constructed_day(pool)
    _, report = await levels(client, "authority=demo&from=2026-11-02&to=2026-11-02&by=interval")
    rows = {row["bucket"][11:16]: row for row in report["rows"]}
    assert list(rows) == ["10:00", "10:15", "10:30", "11:00", "11:15", "11:30", "14:00"]
    assert (rows["10:00"]["offered"], rows["10:00"]["service_level_percent"]) == (3, 100.0)
    assert rows["10:15"]["service_level_percent"] == 0.0
    assert (rows["10:30"]["short_abandons"], rows["10:30"]["service_level_percent"]) == (1, None)
    assert (rows["11:00"]["abandoned"], rows["11:00"]["service_level_percent"]) == (1, 0.0)
    _, everyone = await levels(client, "from=2026-11-02&to=2026-11-02&by=month")
    assert everyone["authority"] is None
    assert (everyone["total"]["offered"], everyone["total"]["abandoned"]) == (11, 3)
    assert everyone["rows"][0]["bucket"] == "2026-11-01T00:00:00"


@pytest.mark.parametrize(
    ("query", "who", "status", "says"),
    [
        ("authority=demo&by=week", "admin", 400, "'by' must be one of"),
        ("authority=demo&from=2026-11-01&to=2026-11-30&by=interval", "admin", 400, "at most 7"),
        ("authority=demo&from=2026-13-01&to=2026-11-30", "admin", 400, "is not a date"),
        ("authority=atlantis", "admin", 404, "no authority called"),
        ("authority=all", "finance", 403, "choose it"),
        ("authority=other", "finance", 403, "cannot see"),
    ],
)
async def test_bad_report_requests_say_what_is_wrong(
    client: TestClient[Any, Any],
    pool: asyncpg.Pool,
    seeded: None,
    query: str,
    who: str,
    status: int,
    says: str,
) -> None:
    await add_authority(pool, "other")
    got, body = await levels(client, query, who)
    assert got == status
    assert says in body["error"]


async def test_the_pages_show_the_figures(
    client: TestClient[Any, Any], pool: asyncpg.Pool, seeded: None
) -> None:
    await constructed_day(pool)
    client.session.cookie_jar.clear()
    session = await sign_in(client, "finance@demo.example", "finance-demo")
    headers = {"Cookie": f"signvideo_session={session}"}
    page = await client.get(
        "/reports/service-levels?authority=demo&from=2026-11-02&to=2026-11-02&by=day",
        headers=headers,
    )
    text = await page.text()
    assert page.status == 200 and "50.0%" in text and "172 s" in text
    dashboard = await client.get("/reports/dashboard?month=2026-11", headers=headers)
    text = await dashboard.text()
    assert dashboard.status == 200
    assert "Demo Borough Council: November 2026" in text
    assert "promised: 90%" in text and "50%" in text
    assert "Day 2: 50%" in text  # the service-level bar for the constructed day
    for query, says in (
        ("authority=all", "one authority at a time"),
        ("month=0000-01", "between the years"),
        ("month=9999-12", "between the years"),
    ):
        client.session.cookie_jar.clear()
        admin = await sign_in(client, "admin@demo.example", "admin-demo")
        refused = await client.get(
            f"/reports/dashboard?{query}", headers={"Cookie": f"signvideo_session={admin}"}
        )
        assert refused.status == 400 and says in await refused.text(), query
