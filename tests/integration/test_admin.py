"""The operator administrator's pages: authorities, closures, interpreters,
staff accounts, one-time password links; each change audited."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

import aiohttp
import asyncpg
import pytest
from aiohttp.test_utils import TestClient

from signvideo import access
from tests.integration.billing_data import at, ended_call
from tests.integration.conftest import (
    INTERPRETER_PASSWORD,
    Peer,
    add_interpreter,
    add_staff,
    form_token,
    sign_in,
)

Opener = Any


@dataclass(frozen=True)
class Admin:
    id: int
    session: str

    def back_on(self, client: TestClient[Any, Any]) -> None:
        """Sign the administrator in on `client` again (sign_in empties its jar)."""
        client.session.cookie_jar.update_cookies({"signvideo_session": self.session})


@pytest.fixture
async def admin(client: TestClient[Any, Any], pool: asyncpg.Pool) -> Admin:
    """An operator administrator signed in on `client` (its cookie jar)."""
    user_id = await add_staff(pool, "olu@example.org", access.OPERATOR_ADMIN)
    signed_in = Admin(user_id, await sign_in(client, "olu@example.org", INTERPRETER_PASSWORD))
    signed_in.back_on(client)
    return signed_in


async def post(client: TestClient[Any, Any], path: str, data: dict[str, Any]) -> Any:
    """Send a form as the browser would: with the token from the form's page."""
    token = await form_token(client, "/admin")
    fields = [
        (name, item)
        for name, value in {**data, "csrf_token": token}.items()
        for item in (value if isinstance(value, list) else [value])
    ]
    return await client.post(path, data=fields, allow_redirects=False)


AUTHORITY = {
    "name": "Leeds City Council",
    "slug": "leeds",
    "answer_seconds": "45",
    "languages": "BSL",
    "hours_mon": "09:00-12:30, 13:30-17:00",
    "hours_tue": "09:00-17:00",
    "time_zone": "Europe/London",
    "nation": "england-and-wales",
    "closed_on_bank_holidays": "yes",
    "max_queue_length": "30",
    "service_level_target_percent": "95",
}


async def test_an_authority_is_set_up_and_changed_with_every_mistake_named(
    client: TestClient[Any, Any], pool: asyncpg.Pool, admin: Admin
) -> None:
    wrong = await post(
        client,
        "/admin/authorities/new",
        {
            **AUTHORITY,
            "slug": "Leeds!",
            "answer_seconds": "five",
            "hours_mon": "9 till 5",
            "time_zone": "Mars/Olympus",
        },
    )
    assert wrong.status == 400
    page = await wrong.text()
    for words in (
        "Short name for links must be lower-case letters",
        "Guaranteed answer time in seconds must be a whole number",
        "Monday opening hours must be times like 09:00-17:00",
        "&#39;Mars/Olympus&#39; is not a time zone we know",
    ):
        assert words in page, words
    assert await pool.fetchval("SELECT count(*) FROM authorities WHERE slug = 'leeds'") == 0

    made = await post(client, "/admin/authorities/new", AUTHORITY)
    assert made.status == 303 and made.headers["Location"].startswith("/admin/authorities/leeds")
    row = await pool.fetchrow("SELECT * FROM authorities WHERE slug = 'leeds'")
    assert row["answer_seconds"] == 45 and row["max_queue_length"] == 30
    assert row["service_level_target_percent"] == 95
    assert row["opening_hours"]["mon"] == [["09:00", "12:30"], ["13:30", "17:00"]]
    assert row["opening_hours"]["wed"] == []
    again = await post(client, "/admin/authorities/new", AUTHORITY)
    assert again.status == 400 and "is taken" in await again.text()

    overlap = await post(
        client, "/admin/authorities/leeds", {**AUTHORITY, "hours_mon": "09:00-13:00, 12:00-17:00"}
    )
    assert overlap.status == 400 and "Check the opening hours" in await overlap.text()
    changed = await post(client, "/admin/authorities/leeds", {**AUTHORITY, "answer_seconds": "90"})
    assert changed.status == 303
    assert await pool.fetchval("SELECT answer_seconds FROM authorities WHERE slug = 'leeds'") == 90
    entry = await pool.fetchrow(
        "SELECT actor, detail FROM audit_log WHERE action = 'authority.update'"
    )
    assert entry["actor"] == "olu@example.org"
    assert entry["detail"]["before"]["answer_seconds"] == 45
    shown = await (await client.get("/admin/authorities/leeds?saved=saved")).text()
    assert "Your changes have been saved." in shown and 'value="90"' in shown


CARD = {
    "effective_from": "2099-01-01",
    "in_hours_pence_per_minute": "160",
    "out_of_hours_pence_per_minute": "190",
    "bank_holiday_pence_per_minute": "240",
    "billing_increment_seconds": "30",
    "minimum_charge_pence": "200",
    "monthly_standing_charge_pence": "5000",
    "vat_percent": "17.5",
    "in_hours_days": ["1", "2", "3", "4", "5", "6"],
    "in_hours_start": "08:00",
    "in_hours_end": "20:00",
    "technical_grace_seconds": "15",
}


async def test_rate_cards_are_added_never_edited_and_removed_only_unused(
    client: TestClient[Any, Any], pool: asyncpg.Pool, admin: Admin
) -> None:
    page = await (await client.get("/admin/authorities/demo/billing")).text()
    assert "In force" in page and "150 in hours" in page
    wrong = await post(
        client,
        "/admin/authorities/demo/rate-cards",
        {
            **CARD,
            "effective_from": "2001-01-01",
            "vat_percent": "twenty",
            "in_hours_end": "07:00",
            "billing_increment_seconds": "0",
        },
    )
    assert wrong.status == 400
    text = await wrong.text()
    for words in (
        "In force from must be today",
        "VAT rate, per cent must be a per cent from 0 to 100",
        "In hours until must be later than in hours from",
        "Billing increment in seconds must be 1 or more",
    ):
        assert words in text, words
    added = await post(client, "/admin/authorities/demo/rate-cards", CARD)
    assert added.status == 303, await added.text()
    card = await pool.fetchrow("SELECT * FROM rate_cards WHERE effective_from = '2099-01-01'")
    assert card["vat_basis_points"] == 1750
    assert list(card["in_hours_days"]) == [1, 2, 3, 4, 5, 6]
    assert (card["in_hours_start"], card["in_hours_end"]) == (dt.time(8), dt.time(20))
    assert card["monthly_standing_charge_pence"] == 5000
    for vat in ("100.5", "101", "-1"):
        refused = await post(
            client, "/admin/authorities/demo/rate-cards", {**CARD, "vat_percent": vat}
        )
        assert refused.status == 400 and "must be a per cent" in await refused.text(), vat
    twice = await post(client, "/admin/authorities/demo/rate-cards", CARD)
    assert twice.status == 400 and "already a rate card from 2099-01-01" in await twice.text()
    with pytest.raises(asyncpg.RestrictViolationError):
        await pool.execute("UPDATE rate_cards SET in_hours_pence_per_minute = 1")

    # A card that has charged a call stays; an unused one can go.
    await ended_call(pool, "demo", at("2026-11-02 10:00:00"), at("2026-11-02 10:00:05"),
                     at("2026-11-02 10:01:00"))  # fmt: skip
    used = await pool.fetchval("SELECT id FROM rate_cards WHERE effective_from = '2000-01-01'")
    kept = await post(client, f"/admin/authorities/demo/rate-cards/{used}/remove", {})
    assert kept.status == 409 and "stays" in await kept.text()
    # A card from today, once today's calls have been priced by another, is refused.
    await pool.execute("UPDATE calls SET answered_at = now()")
    today = await post(
        client,
        "/admin/authorities/demo/rate-cards",
        {**CARD, "effective_from": dt.datetime.now(ZoneInfo("Europe/London")).date().isoformat()},
    )
    assert today.status == 400 and "start tomorrow at the earliest" in await today.text()
    gone = await post(client, f"/admin/authorities/demo/rate-cards/{card['id']}/remove", {})
    assert gone.status == 303
    assert await pool.fetchval("SELECT count(*) FROM rate_cards") == 1
    actions = [r["action"] for r in await pool.fetch("SELECT action FROM audit_log ORDER BY id")]
    assert actions[-2:] == ["rate_card.add", "rate_card.remove"]


async def test_cost_centres_are_added_and_withdrawn(
    client: TestClient[Any, Any], pool: asyncpg.Pool, admin: Admin
) -> None:
    bad = await post(
        client, "/admin/authorities/demo/cost-centres", {"code": "=SUM(A1)", "name": ""}
    )
    assert bad.status == 400
    text = await bad.text()
    assert "Code must be letters, numbers" in text and "Enter name callers see" in text
    taken = await post(
        client, "/admin/authorities/demo/cost-centres", {"code": "HOU", "name": "Homes"}
    )
    assert taken.status == 400 and "is taken" in await taken.text()
    added = await post(
        client, "/admin/authorities/demo/cost-centres", {"code": "PARK-1", "name": "Parks"}
    )
    assert added.status == 303
    toggled = await post(client, "/admin/authorities/demo/cost-centres/PARK-1/toggle", {})
    assert toggled.status == 303
    assert await pool.fetchval("SELECT active FROM cost_centres WHERE code = 'PARK-1'") is False


async def test_a_closure_turns_callers_away_until_it_is_removed(
    client: TestClient[Any, Any], pool: asyncpg.Pool, admin: Admin, open_caller: Opener
) -> None:
    today = dt.date.today()
    backwards = await post(
        client,
        "/admin/authorities/demo/closures",
        {
            "first_day": today.isoformat(),
            "last_day": (today - dt.timedelta(days=1)).isoformat(),
            "reason": "x",
        },
    )
    assert backwards.status == 400
    assert "must be on or after the first day" in await backwards.text()
    added = await post(
        client,
        "/admin/authorities/demo/closures",
        {"first_day": today.isoformat(), "last_day": today.isoformat(), "reason": "a fire drill"},
    )
    assert added.status == 303
    caller: Peer = await open_caller()
    await caller.send(type="join", authority="demo")
    error = await caller.expect("error")
    assert error["code"] == "closed" and "a fire drill" in error["message"]

    closure = await pool.fetchval("SELECT id FROM authority_closures")
    removed = await post(client, f"/admin/authorities/demo/closures/{closure}/remove", {})
    assert removed.status == 303
    await caller.send(type="join", authority="demo")
    await caller.expect("queued")
    actions = await pool.fetch("SELECT action FROM audit_log WHERE action LIKE 'closure.%'")
    assert [r["action"] for r in actions] == ["closure.add", "closure.remove"]


async def test_an_interpreters_skills_and_registration(
    client: TestClient[Any, Any], pool: asyncpg.Pool, admin: Admin
) -> None:
    ann = await add_interpreter(pool, "ann@example.org")
    none_chosen = await post(client, f"/admin/interpreters/{ann}", {"register_body": "NRCPD"})
    assert none_chosen.status == 400
    page = await none_chosen.text()
    assert "Choose at least one of the sign languages." in page
    assert "Choose register category." in page
    form = {
        "languages": ["BSL", "ISL"],
        "specialisms": ["health", "mental-health"],
        "register_body": "SRLPDC",
        "category": "trainee",
        "registration_number": "T-1234",
        "registration_expires": "2027-06-30",
    }
    token = await form_token(client, "/admin")
    data = [(k, v) for k, vs in form.items() for v in (vs if isinstance(vs, list) else [vs])]
    saved = await client.post(
        f"/admin/interpreters/{ann}", data=[*data, ("csrf_token", token)], allow_redirects=False
    )
    assert saved.status == 303
    row = await pool.fetchrow("SELECT * FROM interpreters WHERE user_id = $1", ann)
    assert list(row["languages"]) == ["BSL", "ISL"]
    assert list(row["specialisms"]) == ["health", "mental-health"]
    assert (row["category"], row["register_body"]) == ("trainee", "SRLPDC")
    assert row["registration_expires"] == dt.date(2027, 6, 30)
    listing = await (await client.get("/admin/interpreters")).text()
    assert "T-1234" in listing and "until 2027-06-30" in listing
    assert await pool.fetchval("SELECT count(*) FROM audit_log WHERE action = 'interpreter.update'")


async def test_a_new_account_sets_its_password_through_a_one_time_link(
    client: TestClient[Any, Any], pool: asyncpg.Pool, admin: Admin
) -> None:
    missing = await post(
        client,
        "/admin/users/new",
        {"email": "fay@leeds.example.org", "display_name": "Fay", "role": "authority_finance"},
    )
    assert missing.status == 400
    assert "Choose the authority this person works for." in await missing.text()
    made = await post(
        client,
        "/admin/users/new",
        {
            "email": "Fay@Demo.example.org",
            "display_name": "Fay",
            "role": "authority_finance",
            "authority": "demo",
        },
    )
    assert made.status == 200
    link = re.search(r'id="link">([^<]+)<', await made.text())
    assert link, "the link is shown"
    path = "/password/" + link.group(1).rsplit("/password/", 1)[1]
    assert await pool.fetchval("SELECT count(*) FROM password_links") == 1
    assert await pool.fetchval("SELECT token_sha256 FROM password_links") != path.encode()

    # A browser known to the account (whoever had a password before): a new
    # password makes it a stranger again.
    await pool.execute(
        "INSERT INTO trusted_devices (user_id, token_sha256) "
        "SELECT id, '\\x00' FROM users WHERE email = 'fay@demo.example.org'"
    )
    # The person opens the link in their own browser: no admin cookie.
    client.session.cookie_jar.clear()
    page = await client.get(path)
    assert page.status == 200 and "fay@demo.example.org" in await page.text()
    token = await form_token(client, path)
    short = await client.post(
        path, data={"password": "short", "confirm": "short", "csrf_token": token}
    )
    assert short.status == 400 and "at least 12 characters" in await short.text()
    differ = await client.post(
        path,
        data={"password": "correct horse battery", "confirm": "correct horse", "csrf_token": token},
    )
    assert differ.status == 400 and "not the same" in await differ.text()
    done = await client.post(
        path,
        data={
            "password": "correct horse battery",
            "confirm": "correct horse battery",
            "csrf_token": token,
        },
        allow_redirects=False,
    )
    assert done.status == 303 and done.headers["Location"] == "/finance"
    assert "signvideo_session" in done.cookies and "signvideo_device" in done.cookies
    devices = await pool.fetch(
        "SELECT token_sha256 FROM trusted_devices d JOIN users u ON u.id = d.user_id "
        "WHERE u.email = 'fay@demo.example.org'"
    )
    assert [d["token_sha256"] for d in devices] != [b"\x00"] and len(devices) == 1
    spent = await client.get(path)
    assert spent.status == 410 and "has been used already" in await spent.text()
    assert await sign_in(client, "fay@demo.example.org", "correct horse battery")
    admin.back_on(client)
    actions = [r["action"] for r in await pool.fetch("SELECT action FROM audit_log ORDER BY id")]
    assert "user.create" in actions and "password_link.issue" in actions
    assert "password.set" in actions


async def test_an_expired_link_does_not_work(
    client: TestClient[Any, Any], pool: asyncpg.Pool, admin: Admin
) -> None:
    sam = await add_staff(pool, "sam@example.org", access.SUPERVISOR)
    made = await post(client, f"/admin/users/{sam}/link", {})
    link = re.search(r'id="link">[^<]*(/password/[^<]+)<', await made.text())
    assert link
    # A second link stops the first from working.
    second = await post(client, f"/admin/users/{sam}/link", {})
    newer = re.search(r'id="link">[^<]*(/password/[^<]+)<', await second.text())
    assert newer and second.headers["Cache-Control"] == "no-store"
    replaced = await client.get(link.group(1))
    assert replaced.status == 410 and "a newer one has been made" in await replaced.text()
    await pool.execute("UPDATE password_links SET expires_at = now() - interval '1 second'")
    expired = await client.get(newer.group(1))
    assert expired.status == 410 and "expired" in await expired.text()
    unknown = await client.get("/password/" + "A" * 43)
    assert unknown.status == 404 and "not one we made" in await unknown.text()


async def test_signing_an_interpreter_out_closes_their_open_console(
    client: TestClient[Any, Any], pool: asyncpg.Pool, admin: Admin
) -> None:
    ann = await add_interpreter(pool, "ann@example.org")
    session = await sign_in(client, "ann@example.org", INTERPRETER_PASSWORD)
    console = Peer(
        await client.ws_connect("/ws/console", headers={"Cookie": f"signvideo_session={session}"})
    )
    await console.expect("state")
    admin.back_on(client)
    assert (await post(client, f"/admin/users/{ann}/sign-out", {})).status == 303
    told = await console.expect("signed_out", timeout=10)
    assert told["message"] == "You were signed out by an administrator."
    closing = await console.ws.receive(timeout=10)
    assert closing.type.name == "CLOSE" and console.ws.close_code == 4001
    client.session.cookie_jar.clear()
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        await client.ws_connect("/ws/console", headers={"Cookie": f"signvideo_session={session}"})
    assert refused.value.status == 401


async def test_roles_change_and_people_can_be_signed_out_everywhere(
    client: TestClient[Any, Any], pool: asyncpg.Pool, admin: Admin
) -> None:
    sam = await add_staff(pool, "sam@example.org", access.SUPERVISOR)
    sams_session = await sign_in(client, "sam@example.org", INTERPRETER_PASSWORD)
    admin.back_on(client)
    wrong = await post(
        client,
        f"/admin/users/{sam}",
        {"display_name": "Sam", "role": "supervisor", "authority": "demo"},
    )
    assert wrong.status == 400 and "Only authority administrators" in await wrong.text()
    own = await post(
        client, f"/admin/users/{admin.id}", {"display_name": "Olu", "role": "interpreter"}
    )
    assert own.status == 400 and "cannot change your own role" in await own.text()
    changed = await post(
        client, f"/admin/users/{sam}", {"display_name": "Sam Jones", "role": "interpreter"}
    )
    assert changed.status == 303
    assert await pool.fetchval("SELECT role FROM users WHERE id = $1", sam) == "interpreter"
    assert await pool.fetchval("SELECT count(*) FROM interpreters WHERE user_id = $1", sam) == 1

    async def sams_console() -> int:
        client.session.cookie_jar.clear()
        client.session.cookie_jar.update_cookies({"signvideo_session": sams_session})
        response = await client.get("/console", allow_redirects=False)
        admin.back_on(client)
        return response.status

    # A new role signs them out: they sign in again, with what the new role allows.
    assert await sams_console() == 303
    sams_session = await sign_in(client, "sam@example.org", INTERPRETER_PASSWORD)
    admin.back_on(client)
    assert await sams_console() == 200
    sams_devices = "SELECT count(*) FROM trusted_devices WHERE user_id = $1"
    known = await pool.fetchval(sams_devices, sam)
    assert known >= 1
    signed_out = await post(client, f"/admin/users/{sam}/sign-out", {})
    assert signed_out.status == 303
    # The browsers they used stay known: someone guessing their password
    # must not keep them out (test_access).
    assert await pool.fetchval(sams_devices, sam) == known
    assert await sams_console() == 303
    entry = await pool.fetchrow("SELECT detail FROM audit_log WHERE action = 'user.update'")
    assert entry["detail"]["before"]["role"] == "supervisor"
