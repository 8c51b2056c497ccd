"""Who may open what, and whose data they see: every route with every role,
the database's own isolation between authorities, form protection, sign-in
throttling and the audit log."""

from __future__ import annotations

import csv
import dataclasses
import datetime as dt
import io
import os
import re
import secrets
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg
import pytest
from aiohttp import WSServerHandshakeError
from aiohttp.test_utils import TestClient

from signvideo import access, auth
from signvideo.app import create_app
from signvideo.auth import ACCOUNT_FAILURE_LIMIT, ADDRESS_FAILURE_LIMIT
from signvideo.config import Config
from signvideo.db import authority_scope
from tests.integration.conftest import (
    INTERPRETER_PASSWORD,
    add_authority,
    add_interpreter,
    add_staff,
    form_token,
    sign_in,
)

ANONYMOUS = "anonymous"
# One account for each role; the authority's roles belong to "demo".
ACCOUNTS = {
    access.OPERATOR_ADMIN: "olu@example.org",
    access.SUPERVISOR: "sue@example.org",
    access.INTERPRETER: "ian@example.org",
    access.AUTHORITY_ADMIN: "ada@demo.example.org",
    access.AUTHORITY_FINANCE: "fin@demo.example.org",
}
EVERYONE = (ANONYMOUS, *access.ROLES)
TODAY = dt.date.today().isoformat()


def allowed(roles: tuple[str, ...], yes: int, signed_out: int) -> dict[str, int]:
    """The status each of EVERYONE gets: `yes` for `roles`, 403 for other
    staff, `signed_out` for someone not signed in."""
    return {
        who: yes if who in roles else (signed_out if who == ANONYMOUS else 403) for who in EVERYONE
    }


PUBLIC = dict.fromkeys(EVERYONE, 200)
# Account ids for the paths below, filled in by the `sessions` fixture.
IDS: dict[str, int] = {}
# Every route of the service: (method, path as registered) -> (path to try,
# the status each of EVERYONE gets). A route missing here fails the test.
RULES: dict[tuple[str, str], tuple[str, dict[str, int]]] = {
    ("GET", "/"): ("/", PUBLIC),
    ("GET", "/help"): ("/help", PUBLIC),
    ("GET", "/privacy"): ("/privacy", PUBLIC),
    ("GET", "/call/{slug}"): ("/call/demo", PUBLIC),
    ("GET", "/call/{slug}/ended"): ("/call/demo/ended", PUBLIC),
    ("GET", "/login"): ("/login", PUBLIC),
    ("GET", "/console"): ("/console", allowed(access.CONSOLE, 200, 303)),
    ("GET", "/finance"): ("/finance", allowed(access.FINANCE, 200, 303)),
    ("GET", "/finance/usage"): (
        f"/finance/usage?authority=demo&period=dates&from={TODAY}&to={TODAY}",
        allowed(access.FINANCE, 200, 303),
    ),
    ("*", "/finance/tokens"): ("/finance/tokens", allowed(access.FINANCE, 200, 303)),
    ("POST", "/finance/tokens/{token}/revoke"): (
        "/finance/tokens/999999/revoke",
        allowed(access.FINANCE, 404, 303),
    ),
    ("GET", "/reports/service-levels"): (
        "/reports/service-levels?authority=demo",
        allowed(access.REPORTS, 200, 303),
    ),
    ("GET", "/reports/dashboard"): (
        "/reports/dashboard?authority=demo",
        allowed(access.REPORTS, 200, 303),
    ),
    # Anyone may rate their call; without a choice the form is refused.
    ("POST", "/call/{slug}/rating"): ("/call/demo/rating", dict.fromkeys(EVERYONE, 400)),
    # Anyone may check their video; an empty body is refused with the reason.
    ("POST", "/api/v1/video-check"): ("/api/v1/video-check", dict.fromkeys(EVERYONE, 400)),
    ("GET", "/api/v1/service-levels"): (
        "/api/v1/service-levels?authority=demo",
        allowed(access.REPORTS, 200, 401),
    ),
    ("GET", "/finance/invoices/{slug}"): (
        "/finance/invoices/demo",
        allowed(access.FINANCE, 200, 303),
    ),
    ("GET", "/finance/invoices/{slug}/{month}"): (
        "/finance/invoices/demo/2026-11",
        allowed(access.FINANCE, 200, 303),
    ),
    # A month still to come cannot be invoiced: 409 says so.
    ("POST", "/finance/invoices/{slug}/{month}/issue"): (
        "/finance/invoices/demo/2999-01/issue",
        allowed(access.ADMIN, 409, 303),
    ),
    ("POST", "/finance/invoices/{slug}/{month}/credits"): (
        "/finance/invoices/demo/2026-11/credits",
        allowed(access.ADMIN, 400, 303),
    ),
    ("GET", "/api/v1/authorities/{slug}/usage"): (
        f"/api/v1/authorities/demo/usage?from={TODAY}&to={TODAY}",
        allowed(access.FINANCE, 200, 401),
    ),
    ("GET", "/admin"): ("/admin", allowed(access.ADMIN, 200, 303)),
    ("GET", "/admin/audit"): ("/admin/audit", allowed(access.AUDIT, 200, 303)),
    ("GET", "/admin/authorities"): ("/admin/authorities", allowed(access.ADMIN, 200, 303)),
    ("*", "/admin/authorities/new"): ("/admin/authorities/new", allowed(access.ADMIN, 200, 303)),
    ("*", "/admin/authorities/{slug}"): (
        "/admin/authorities/demo",
        allowed(access.ADMIN, 200, 303),
    ),
    # The matrix's form has none of the closure's fields: 400 says which are missing.
    ("POST", "/admin/authorities/{slug}/closures"): (
        "/admin/authorities/demo/closures",
        allowed(access.ADMIN, 400, 303),
    ),
    ("POST", "/admin/authorities/{slug}/closures/{closure}/remove"): (
        "/admin/authorities/demo/closures/999999/remove",
        allowed(access.ADMIN, 404, 303),
    ),
    ("GET", "/admin/authorities/{slug}/billing"): (
        "/admin/authorities/demo/billing",
        allowed(access.ADMIN, 200, 303),
    ),
    ("POST", "/admin/authorities/{slug}/rate-cards"): (
        "/admin/authorities/demo/rate-cards",
        allowed(access.ADMIN, 400, 303),
    ),
    ("POST", "/admin/authorities/{slug}/rate-cards/{card}/remove"): (
        "/admin/authorities/demo/rate-cards/999999/remove",
        allowed(access.ADMIN, 404, 303),
    ),
    ("POST", "/admin/authorities/{slug}/cost-centres"): (
        "/admin/authorities/demo/cost-centres",
        allowed(access.ADMIN, 400, 303),
    ),
    ("POST", "/admin/authorities/{slug}/cost-centres/{code}/toggle"): (
        "/admin/authorities/demo/cost-centres/NOPE/toggle",
        allowed(access.ADMIN, 404, 303),
    ),
    ("GET", "/admin/interpreters"): ("/admin/interpreters", allowed(access.ADMIN, 200, 303)),
    ("*", "/admin/interpreters/{user}"): (
        "/admin/interpreters/{interpreter}",
        allowed(access.ADMIN, 200, 303),
    ),
    ("GET", "/admin/users"): ("/admin/users", allowed(access.ADMIN, 200, 303)),
    ("*", "/admin/users/new"): ("/admin/users/new", allowed(access.ADMIN, 200, 303)),
    ("*", "/admin/users/{user}"): ("/admin/users/{spare}", allowed(access.ADMIN, 200, 303)),
    ("POST", "/admin/users/{user}/link"): (
        "/admin/users/{spare}/link",
        allowed(access.ADMIN, 200, 303),
    ),
    ("POST", "/admin/users/{user}/sign-out"): (
        "/admin/users/{spare}/sign-out",
        allowed(access.ADMIN, 303, 303),
    ),
    ("*", "/admin/identity-providers"): (
        "/admin/identity-providers",
        allowed(access.ADMIN, 200, 303),
    ),
    ("POST", "/admin/identity-providers/{provider}/remove"): (
        "/admin/identity-providers/999999/remove",
        allowed(access.ADMIN, 404, 303),
    ),
    ("GET", "/login/oidc/callback"): ("/login/oidc/callback", dict.fromkeys(EVERYONE, 400)),
    ("GET", "/login/oidc/{provider}"): ("/login/oidc/999999", dict.fromkeys(EVERYONE, 404)),
    ("*", "/password/{token}"): ("/password/" + "x" * 43, dict.fromkeys(EVERYONE, 404)),
    ("GET", "/api/v1/queues"): ("/api/v1/queues", allowed(access.QUEUES, 200, 401)),
    ("GET", "/api/v1/authorities/{slug}/availability"): (
        "/api/v1/authorities/demo/availability",
        PUBLIC,
    ),
    ("GET", "/healthz"): ("/healthz", PUBLIC),
    ("GET", "/api/openapi.json"): ("/api/openapi.json", PUBLIC),
    ("GET", "/metrics"): ("/metrics", PUBLIC),
    ("GET", "/static"): ("/static/style.css", PUBLIC),
    # Sockets: 101 is the upgrade to a WebSocket.
    ("GET", "/ws/caller"): ("/ws/caller", dict.fromkeys(EVERYONE, 101)),
    ("GET", "/ws/console"): ("/ws/console", allowed(access.CONSOLE, 101, 401)),
    ("GET", "/ws/guest"): ("/ws/guest", dict.fromkeys(EVERYONE, 101)),
    # Anyone with a link may use it; an unknown link is 404 for all.
    ("GET", "/guest/{token}"): ("/guest/" + "x" * 32, dict.fromkeys(EVERYONE, 404)),
    # Forms, each sent with its page's token (the token itself is tested below).
    ("POST", "/login"): ("/login", dict.fromkeys(EVERYONE, 401)),  # a wrong password
    ("POST", "/logout"): ("/logout", dict.fromkeys(EVERYONE, 303)),
}


@pytest.fixture
async def sessions(pool: asyncpg.Pool, client: TestClient[Any, Any]) -> dict[str, str]:
    """A signed-in session for each role, and a second authority with its own staff."""
    await add_authority(pool, "other")
    await add_staff(pool, "fin@other.example.org", access.AUTHORITY_FINANCE, "other")
    made = {}
    for role, email in ACCOUNTS.items():
        if role == access.INTERPRETER:
            IDS["interpreter"] = await add_interpreter(pool, email)
        else:
            authority = "demo" if role in access.AUTHORITY_ROLES else None
            await add_staff(pool, email, role, authority)
        made[role] = await sign_in(client, email, INTERPRETER_PASSWORD)
    # An account for the routes that change one (links, signing out).
    IDS["spare"] = await add_staff(pool, "spare@example.org", access.SUPERVISOR)
    made["other-finance"] = await sign_in(client, "fin@other.example.org", INTERPRETER_PASSWORD)
    return made


async def status_of(
    client: TestClient[Any, Any], method: str, path: str, session: str | None
) -> int:
    cookies = {} if session is None else {"signvideo_session": session}
    client.session.cookie_jar.clear()
    client.session.cookie_jar.update_cookies(cookies)
    if path.startswith("/ws/"):
        try:
            ws = await client.ws_connect(path)
        except WSServerHandshakeError as refused:
            return refused.status
        await ws.close()
        return 101
    if method == "POST":  # "*" routes are tried with GET
        token = await form_token(client)
        # A new name each time, so that no account reaches the failure limit.
        data = {
            "csrf_token": token,
            "email": f"{secrets.token_hex(4)}@example.org",
            "password": "x",
        }
        response = await client.post(path, data=data, allow_redirects=False)
    else:
        response = await client.get(path, allow_redirects=False)
    return response.status


async def test_every_route_with_every_role(
    client: TestClient[Any, Any], sessions: dict[str, str]
) -> None:
    registered = set()
    for route in client.app.router.routes():
        info = route.resource.get_info() if route.resource else {}
        path = info.get("path") or info.get("formatter") or info.get("prefix")
        if route.method == "HEAD":
            continue
        registered.add((route.method, path))
    assert registered == set(RULES), "every route needs a rule here"
    wrong = []
    for (method, _), (path, expected) in sorted(RULES.items()):
        for who in EVERYONE:
            got = await status_of(client, method, path.format(**IDS), sessions.get(who))
            if got != expected[who]:
                wrong.append(f"{method} {path} as {who}: {got}, expected {expected[who]}")
    assert not wrong, "\n".join(wrong)


async def test_an_authoritys_staff_see_only_their_own(
    client: TestClient[Any, Any], pool: asyncpg.Pool, sessions: dict[str, str]
) -> None:
    await add_calls(pool)

    def as_(who: str) -> dict[str, str]:
        return {"Cookie": f"signvideo_session={sessions[who]}"}

    finance = await (await client.get("/finance", headers=as_(access.AUTHORITY_FINANCE))).text()
    assert "Demo Borough Council" in finance and "Other" not in finance
    everything = await (await client.get("/finance", headers=as_(access.OPERATOR_ADMIN))).text()
    assert "Demo Borough Council" in everything and "Other" in everything

    export = f"&from={TODAY}&to={TODAY}"
    theirs = await client.get(
        "/finance/usage?authority=other&period=dates" + export,
        headers=as_(access.AUTHORITY_FINANCE),
    )
    assert theirs.status == 403
    assert "cannot see that authority" in await theirs.text()
    own = await client.get(
        "/finance/usage?authority=other&period=dates" + export, headers=as_("other-finance")
    )
    rows = list(csv.DictReader(io.StringIO(await own.text())))
    assert [r["authority"] for r in rows] == ["other"]

    queues = await client.get("/api/v1/queues", headers=as_(access.AUTHORITY_ADMIN))
    assert [a["slug"] for a in (await queues.json())["authorities"]] == ["demo"]
    queues = await client.get("/api/v1/queues", headers=as_(access.SUPERVISOR))
    assert [a["slug"] for a in (await queues.json())["authorities"]] == ["demo", "other"]


async def add_calls(pool: asyncpg.Pool) -> None:
    """One ended, charged call for each authority."""
    for slug in ("demo", "other"):
        await pool.execute(
            """WITH c AS (
                   INSERT INTO calls (authority_id, token_sha256, state, language, deadline_at,
                                      answered_at, ended_at, end_reason)
                   SELECT id, $2, 'ended', 'BSL', now(), now(), now(), 'caller_hung_up'
                   FROM authorities WHERE slug = $1 RETURNING id, authority_id)
               INSERT INTO ledger (call_id, authority_id, kind, billing_month, service_at,
                                   billable_seconds, charged_seconds, net_pence,
                                   vat_basis_points)
               SELECT id, authority_id, 'call', date_trunc('month', now())::date, now(),
                      60, 60, 100, 2000 FROM c""",
            slug,
            os.urandom(32),
        )


async def test_the_database_keeps_authorities_apart(pool: asyncpg.Pool, seeded: None) -> None:
    """Read as an authority's staff, a query that forgets to say which
    authority still sees only that authority's rows; with no authority
    named, it sees nothing; and it can change nothing."""
    await add_authority(pool, "other")
    await add_calls(pool)
    demo = await pool.fetchval("SELECT id FROM authorities WHERE slug = 'demo'")
    async with pool.acquire() as con, con.transaction():
        await authority_scope(con, demo)
        assert await con.fetchval("SELECT count(*) FROM calls") == 1
        assert await con.fetchval("SELECT count(*) FROM ledger") == 1
        assert await con.fetch("SELECT slug FROM authorities") == [("demo",)]
        assert {r["authority_id"] for r in await con.fetch("SELECT authority_id FROM calls")} == {
            demo
        }
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await con.execute("UPDATE calls SET end_reason = 'x'")
    async with pool.acquire() as con, con.transaction():
        await con.execute("SET LOCAL ROLE signvideo_authority_reader")
        assert await con.fetchval("SELECT count(*) FROM calls") == 0
    # The service itself still sees everything.
    assert await pool.fetchval("SELECT count(*) FROM calls") == 2


async def test_parallel_workers_keep_authorities_apart_too(
    pool: asyncpg.Pool, seeded: None
) -> None:
    """reader_authority() is parallel safe (migration 0013): with every query
    run by parallel workers, the authority's staff still see only theirs."""
    await add_authority(pool, "other")
    await add_calls(pool)
    demo = await pool.fetchval("SELECT id FROM authorities WHERE slug = 'demo'")
    async with pool.acquire() as con, con.transaction():
        await con.execute("SET LOCAL debug_parallel_query = on")
        await con.execute("SET LOCAL parallel_setup_cost = 0")
        await con.execute("SET LOCAL parallel_tuple_cost = 0")
        await authority_scope(con, demo)
        plan = await con.fetchval("EXPLAIN (FORMAT TEXT) SELECT count(*) FROM ledger")
        assert "Gather" in plan, plan
        assert await con.fetchval("SELECT count(*) FROM ledger") == 1
        rows = await con.fetch(
            "SELECT l.authority_id, c.authority_id AS call_authority FROM ledger l "
            "JOIN calls c ON c.id = l.call_id"
        )
        assert [tuple(r) for r in rows] == [(demo, demo)]


async def test_forms_need_their_token_from_this_site(
    client: TestClient[Any, Any], pool: asyncpg.Pool, sessions: dict[str, str]
) -> None:
    token = await form_token(client)
    good = {"email": ACCOUNTS[access.SUPERVISOR], "password": INTERPRETER_PASSWORD}
    missing = await client.post("/login", data=good, allow_redirects=False)
    assert missing.status == 403
    assert "expired or was not sent from this site" in await missing.text()
    wrong = await client.post("/login", data={**good, "csrf_token": token[::-1]})
    assert wrong.status == 403
    elsewhere = await client.post(
        "/login",
        data={**good, "csrf_token": token},
        headers={"Origin": "https://attacker.example"},
        allow_redirects=False,
    )
    assert elsewhere.status == 403
    assert "another website" in await elsewhere.text()
    right = await client.post("/login", data={**good, "csrf_token": token}, allow_redirects=False)
    assert right.status == 303

    # Signing out is a form too: without the token the session stays.
    session = sessions[access.SUPERVISOR]
    client.session.cookie_jar.clear()
    client.session.cookie_jar.update_cookies({"signvideo_session": session})
    assert (await client.post("/logout", allow_redirects=False)).status == 403
    queues = await client.get("/api/v1/queues")
    assert queues.status == 200
    token = await form_token(client, "/help")
    out = await client.post("/logout", data={"csrf_token": token}, allow_redirects=False)
    assert out.status == 303
    client.session.cookie_jar.update_cookies({"signvideo_session": session})
    assert (await client.get("/api/v1/queues")).status == 401


async def test_failed_sign_ins_are_slowed_per_account_and_per_address(
    client: TestClient[Any, Any], pool: asyncpg.Pool
) -> None:
    await add_staff(pool, "sue@example.org", access.SUPERVISOR)
    token = await form_token(client)

    async def attempt(email: str, password: str) -> Any:
        data = {"email": email, "password": password, "csrf_token": token}
        return await client.post("/login", data=data, allow_redirects=False)

    for _ in range(ACCOUNT_FAILURE_LIMIT):
        assert (await attempt("sue@example.org", "guess")).status == 401
    refused = await attempt("sue@example.org", INTERPRETER_PASSWORD)
    assert refused.status == 429
    assert int(refused.headers["Retry-After"]) > 0
    assert "Too many sign-ins have failed" in await refused.text()

    # From one address, failures across many accounts add up too.
    await add_staff(pool, "sam@example.org", access.SUPERVISOR)
    for n in range(ADDRESS_FAILURE_LIMIT - ACCOUNT_FAILURE_LIMIT):
        assert (await attempt(f"guess{n}@example.org", "guess")).status == 401
    assert (await attempt("sam@example.org", INTERPRETER_PASSWORD)).status == 429

    # Once the failures are old enough, the right password works again.
    await pool.execute("UPDATE sign_in_failures SET at = at - interval '1 hour'")
    assert (await attempt("sue@example.org", INTERPRETER_PASSWORD)).status == 303
    actions = [r["action"] for r in await pool.fetch("SELECT action FROM audit_log ORDER BY id")]
    assert actions.count("sign_in.failed") == ADDRESS_FAILURE_LIMIT
    assert actions.count("sign_in.refused") == 2
    assert actions[-1] == "sign_in"


async def test_a_browser_known_to_the_account_signs_in_while_strangers_are_refused(
    client: TestClient[Any, Any], pool: asyncpg.Pool
) -> None:
    """Wrong passwords from elsewhere refuse strangers, not the account's
    owner on a browser that has signed in to it before; that browser's
    wrong passwords count for it alone, against a limit of its own."""
    await add_staff(pool, "sue@example.org", access.SUPERVISOR)
    await add_staff(pool, "sam@example.org", access.SUPERVISOR)

    async def attempt(email: str, password: str, device: str | None) -> Any:
        client.session.cookie_jar.clear()
        if device is not None:
            client.session.cookie_jar.update_cookies({auth.DEVICE_COOKIE: device})
        token = await form_token(client)
        data = {"email": email, "password": password, "csrf_token": token}
        return await client.post("/login", data=data, allow_redirects=False)

    async def devices() -> int:
        return int(await pool.fetchval("SELECT count(*) FROM trusted_devices"))

    async def age_failures() -> None:
        await pool.execute("UPDATE sign_in_failures SET at = at - interval '1 hour'")

    first = await attempt("sue@example.org", INTERPRETER_PASSWORD, None)
    assert first.status == 303
    cookie = first.cookies[auth.DEVICE_COOKIE]
    assert cookie["httponly"] and cookie["samesite"] == "Lax"
    assert int(cookie["max-age"]) == auth.DEVICE_DAYS * 24 * 3600
    sues = cookie.value
    # The same browser again: the same device, kept, not a second one.
    again = await attempt("sue@example.org", INTERPRETER_PASSWORD, sues)
    assert again.status == 303 and again.cookies[auth.DEVICE_COOKIE].value == sues
    assert await devices() == 1
    # Sam signs in on the same (shared) browser: it is known to both.
    shared = (await attempt("sam@example.org", INTERPRETER_PASSWORD, sues)).cookies
    both = shared[auth.DEVICE_COOKIE].value
    assert both.endswith("." + sues) and await devices() == 2

    # Someone else guesses Sue's password, and Sam's.
    for _ in range(ACCOUNT_FAILURE_LIMIT):
        assert (await attempt("sue@example.org", "guess", None)).status == 401
        assert (await attempt("sam@example.org", "guess", None)).status == 401
    assert (await attempt("sue@example.org", INTERPRETER_PASSWORD, None)).status == 429
    # Sue and Sam, on their browser, are not kept out.
    assert (await attempt("sue@example.org", INTERPRETER_PASSWORD, both)).status == 303
    assert (await attempt("sam@example.org", INTERPRETER_PASSWORD, both)).status == 303
    # Their sign-ins did not clear the guesser's failures.
    assert (await attempt("sue@example.org", INTERPRETER_PASSWORD, None)).status == 429
    # Sue's own browser is known to her account only, not to Sam's.
    assert (await attempt("sam@example.org", INTERPRETER_PASSWORD, sues)).status == 429

    # Wrong passwords on her browser count for it alone: not against her
    # account, nor against the address, and past its limit it is refused.
    await age_failures()
    for _ in range(auth.DEVICE_FAILURE_LIMIT):
        assert (await attempt("sue@example.org", "typo", sues)).status == 401
    refused = await attempt("sue@example.org", INTERPRETER_PASSWORD, sues)
    assert refused.status == 429 and int(refused.headers["Retry-After"]) > 0
    for n in range(ADDRESS_FAILURE_LIMIT - auth.DEVICE_FAILURE_LIMIT + 1):
        assert (await attempt(f"guess{n}@example.org", "guess", None)).status == 401
    assert (await attempt("sue@example.org", INTERPRETER_PASSWORD, None)).status == 303

    # A browser not signed in for DEVICE_DAYS is a stranger again.
    await age_failures()
    await pool.execute(
        "UPDATE trusted_devices SET last_used_at = now() - make_interval(days => $1)",
        auth.DEVICE_DAYS + 1,
    )
    for _ in range(ACCOUNT_FAILURE_LIMIT):
        assert (await attempt("sam@example.org", "guess", None)).status == 401
    assert (await attempt("sam@example.org", INTERPRETER_PASSWORD, both)).status == 429


async def test_the_audit_log_records_sign_ins_and_exports(
    client: TestClient[Any, Any], pool: asyncpg.Pool, sessions: dict[str, str]
) -> None:
    headers = {"Cookie": f"signvideo_session={sessions[access.AUTHORITY_FINANCE]}"}
    export = await client.get(
        f"/finance/usage?authority=demo&period=dates&from={TODAY}&to={TODAY}", headers=headers
    )
    assert export.status == 200
    admin = {"Cookie": f"signvideo_session={sessions[access.OPERATOR_ADMIN]}"}
    page = await (await client.get("/admin/audit", headers=admin)).text()
    assert "export.usage" in page and ACCOUNTS[access.AUTHORITY_FINANCE] in page
    assert "sign_in" in page and "127.0.0.1" in page
    row = await pool.fetchrow("SELECT actor, detail FROM audit_log WHERE action = 'export.usage'")
    assert row["actor"] == ACCOUNTS[access.AUTHORITY_FINANCE]
    assert row["detail"] == {"month": None, "from": TODAY, "to": TODAY, "format": "csv"}
    with pytest.raises(asyncpg.RestrictViolationError):
        await pool.execute("DELETE FROM audit_log")
    bad = await client.get("/admin/audit?before=yesterday", headers=admin)
    assert bad.status == 400 and "entry number" in await bad.text()


async def test_every_page_carries_the_security_headers(
    client: TestClient[Any, Any], sessions: dict[str, str]
) -> None:
    """No inline script, no framing, no referrer beyond this site, and the
    camera and microphone only on the caller's page and the console."""
    interpreter = {"Cookie": f"signvideo_session={sessions[access.INTERPRETER]}"}
    for path, camera in (
        ("/", False),
        ("/login", False),
        ("/privacy", False),
        ("/call/demo", True),
        ("/console", True),
        ("/api/v1/authorities/demo/availability", False),
        ("/no/such/page", False),
    ):
        answer = await client.get(path, headers=interpreter, allow_redirects=False)
        assert "Content-Security-Policy" in answer.headers, (path, answer.status)
        policy = answer.headers["Content-Security-Policy"]
        assert "script-src 'self';" in policy and "unsafe-inline" not in policy, path
        assert "frame-ancestors 'none'" in policy, path
        assert answer.headers["Referrer-Policy"] == "same-origin", path
        assert answer.headers["X-Content-Type-Options"] == "nosniff", path
        expected = "camera=(self), microphone=(self)" if camera else "camera=(), microphone=()"
        assert answer.headers["Permissions-Policy"] == expected, path


async def test_session_cookies_are_secure_behind_a_tls_proxy(
    config: Config,
    seeded: None,
    pool: asyncpg.Pool,
    aiohttp_client: Callable[..., Awaitable[TestClient[Any, Any]]],
) -> None:
    await add_staff(pool, "sue@example.org", access.SUPERVISOR)
    proxied = await aiohttp_client(
        create_app(dataclasses.replace(config, trusted_proxies=frozenset({"127.0.0.1"})))
    )
    tls = {"X-Forwarded-Proto": "https", "X-Forwarded-For": "203.0.113.5"}
    page = await proxied.get("/login", headers=tls)
    token = re.search(r'name="csrf_token" value="([^"]+)"', await page.text())
    assert token is not None
    form_cookie = page.cookies["signvideo_csrf"]
    assert form_cookie["secure"] and form_cookie["samesite"] == "Strict"
    # The test speaks plain HTTP to the "proxy" side, so it hands the Secure cookie back itself.
    signed_in = await proxied.post(
        "/login",
        data={"email": "sue@example.org", "password": INTERPRETER_PASSWORD, "csrf_token": token[1]},
        headers={
            **tls,
            "Origin": f"https://{proxied.host}:{proxied.port}",
            "Cookie": f"signvideo_csrf={form_cookie.value}",
        },
        allow_redirects=False,
    )
    assert signed_in.status == 303, await signed_in.text()
    cookie = signed_in.cookies["signvideo_session"]
    assert cookie["secure"] and cookie["httponly"] and cookie["samesite"] == "Lax"
    # The audit log has the caller's own address, not the proxy's.
    assert (
        await pool.fetchval("SELECT host(address) FROM audit_log WHERE action = 'sign_in'")
        == "203.0.113.5"
    )
