"""Finance systems read an authority's usage with an API token: made by its
staff, shown once, stored hashed, limited to that authority, revocable."""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
from typing import Any

import asyncpg
from aiohttp.test_utils import TestClient

from signvideo import access
from tests.integration.conftest import (
    INTERPRETER_PASSWORD,
    add_authority,
    add_staff,
    form_token,
    sign_in,
)
from tests.integration.test_access import add_calls

TODAY = dt.date.today().isoformat()
USAGE = f"/api/v1/authorities/demo/usage?from={TODAY}&to={TODAY}"


async def make_token(client: TestClient[Any, Any], name: str, authority: str = "demo") -> str:
    token = await form_token(client, "/finance/tokens")
    page = await client.post(
        "/finance/tokens", data={"name": name, "authority": authority, "csrf_token": token}
    )
    assert page.status == 200, await page.text()
    found = re.search(r'id="token">(svt_[A-Za-z0-9_-]+)<', await page.text())
    assert found, "the new token is shown"
    return found.group(1)


async def test_a_finance_system_reads_its_usage_with_a_token(
    client: TestClient[Any, Any], pool: asyncpg.Pool, seeded: None
) -> None:
    await add_authority(pool, "other")
    await add_calls(pool)
    await add_staff(pool, "fin@demo.example.org", access.AUTHORITY_FINANCE, "demo")
    session = await sign_in(client, "fin@demo.example.org", INTERPRETER_PASSWORD)
    client.session.cookie_jar.update_cookies({"signvideo_session": session})
    token = await make_token(client, "Monthly import")
    # Only a hash is kept; the page lists the token by its first characters.
    stored = await pool.fetchrow("SELECT token_sha256, shown_prefix FROM api_tokens")
    assert token.encode() not in stored["token_sha256"] and token.startswith(stored["shown_prefix"])
    listing = await (await client.get("/finance/tokens")).text()
    assert token not in listing and stored["shown_prefix"] in listing and "Never" in listing

    client.session.cookie_jar.clear()  # the finance system has no session
    bearer = {"Authorization": f"Bearer {token}"}
    usage = await client.get(USAGE, headers=bearer)
    assert usage.status == 200 and usage.content_type == "text/csv"
    rows = list(csv.DictReader(io.StringIO(await usage.text())))
    assert [r["authority"] for r in rows] == ["demo"]
    assert await pool.fetchval("SELECT last_used_at FROM api_tokens") is not None
    entry = await pool.fetchrow(
        "SELECT actor, detail FROM audit_log WHERE action = 'export.usage_api'"
    )
    assert entry["actor"].startswith("API token svt_") and "Monthly import" in entry["actor"]

    theirs = await client.get(USAGE.replace("/demo/", "/other/"), headers=bearer)
    assert theirs.status == 403
    assert (await theirs.json())["error"] == "This API token is for another authority's usage."
    for query, words in (
        (f"?from={TODAY}", "Enter a 'to' date"),
        (f"?from={TODAY}&to=2020-01-01", "before the 'from' date"),
        (f"?from={TODAY}&to={TODAY}&format=pdf", "'format' must be one of: csv"),
    ):
        bad = await client.get("/api/v1/authorities/demo/usage" + query, headers=bearer)
        assert bad.status == 400 and words in (await bad.json())["error"], query
    missing = await client.get(USAGE.replace("/demo/", "/atlantis/"), headers=bearer)
    assert missing.status == 404 and "atlantis" in (await missing.json())["error"]


async def test_bad_and_revoked_tokens_are_refused(
    client: TestClient[Any, Any], pool: asyncpg.Pool, seeded: None
) -> None:
    await add_authority(pool, "other")
    await add_staff(pool, "fin@demo.example.org", access.AUTHORITY_FINANCE, "demo")
    await add_staff(pool, "fin@other.example.org", access.AUTHORITY_FINANCE, "other")
    demo_session = await sign_in(client, "fin@demo.example.org", INTERPRETER_PASSWORD)
    other_session = await sign_in(client, "fin@other.example.org", INTERPRETER_PASSWORD)
    client.session.cookie_jar.update_cookies({"signvideo_session": demo_session})
    token = await make_token(client, "Import")
    token_id = await pool.fetchval("SELECT id FROM api_tokens")

    client.session.cookie_jar.clear()
    for header in ("Basic abc", "Bearer not-a-token", "Bearer svt_" + "A" * 43):
        refused = await client.get(USAGE, headers={"Authorization": header})
        assert refused.status == 401, header
        assert refused.headers["WWW-Authenticate"].startswith("Bearer")
        assert "token" in (await refused.json())["error"]
    assert (await client.get(USAGE, headers={"Authorization": f"Bearer {token}"})).status == 200

    # Another authority's staff neither see nor revoke it.
    client.session.cookie_jar.update_cookies({"signvideo_session": other_session})
    assert "Import" not in await (await client.get("/finance/tokens")).text()
    csrf = await form_token(client, "/finance/tokens")
    stranger = await client.post(
        f"/finance/tokens/{token_id}/revoke", data={"csrf_token": csrf}, allow_redirects=False
    )
    assert stranger.status == 404
    client.session.cookie_jar.clear()
    client.session.cookie_jar.update_cookies({"signvideo_session": demo_session})
    csrf = await form_token(client, "/finance/tokens")
    revoked = await client.post(
        f"/finance/tokens/{token_id}/revoke", data={"csrf_token": csrf}, allow_redirects=False
    )
    assert revoked.status == 303
    assert "Revoked" in await (await client.get("/finance/tokens")).text()
    client.session.cookie_jar.clear()
    after = await client.get(USAGE, headers={"Authorization": f"Bearer {token}"})
    assert after.status == 401 and "revoked" in (await after.json())["error"]
    actions = [r["action"] for r in await pool.fetch("SELECT action FROM audit_log ORDER BY id")]
    assert "api_token.create" in actions and "api_token.revoke" in actions


async def test_api_errors_are_json(client: TestClient[Any, Any]) -> None:
    nothing = await client.get("/api/v1/nothing-here")
    assert nothing.status == 404
    assert (await nothing.json())["error"].startswith("There is nothing at this address")
    signed_out = await client.get("/api/v1/queues")
    assert signed_out.status == 401 and "Sign in" in (await signed_out.json())["error"]


async def test_characters_the_database_cannot_hold_are_refused_plainly(
    client: TestClient[Any, Any], seeded: None
) -> None:
    """A NUL anywhere in an address, query or form is a 400 or 404 with words, never a 500."""
    for path in (
        "/api/v1/authorities/%00/availability",
        "/api/v1/authorities/demo/usage?from=%00&to=x",
        "/call/de%00mo",
        "/finance/usage?authority=%00",
    ):
        answer = await client.get(path, allow_redirects=False)
        assert answer.status in (303, 400, 404), (path, answer.status)
    token = await form_token(client)
    login = await client.post(
        "/login", data={"email": "a\x00@example.org", "password": "x", "csrf_token": token}
    )
    assert login.status == 400 and "not allowed" in await login.text()
