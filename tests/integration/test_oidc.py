"""Staff sign-in through a real OpenID provider (oidc-provider-mock, run as
a process by the test): the whole redirect, code exchange and ID-token check."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit, urlunsplit

import aiohttp
import asyncpg
import pytest
from aiohttp.test_utils import TestClient

from signvideo import access
from signvideo.oidc import Provider, SignInFailed, check_id_token
from tests.integration.conftest import add_authority, add_staff

_RUNNING = re.compile(r"Uvicorn running on (http://127\.0\.0\.1:\d+)")


@pytest.fixture
def provider_url(tmp_path: Path) -> Iterator[str]:
    """An OpenID provider on a free port; its URL is its issuer. Whoever
    signs in there is named by `sub`, and has that as their email."""
    log = tmp_path / "oidc-provider.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "oidc_provider_mock", "--host", "127.0.0.1", "--port", "0"],
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, "NO_COLOR": "1"},
        )
    try:
        deadline = time.monotonic() + 30
        while not (found := _RUNNING.search(log.read_text(errors="replace"))):
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the OpenID provider did not start:\n" + log.read_text())
            time.sleep(0.05)
        yield found.group(1)
    finally:
        process.terminate()
        process.wait(10)


async def add_provider(pool: asyncpg.Pool, issuer: str, authority: str | None = None) -> int:
    provider_id: int = await pool.fetchval(
        "INSERT INTO identity_providers (authority_id, name, issuer, client_id, client_secret) "
        "VALUES ((SELECT id FROM authorities WHERE slug = $1), 'Test ID', $2, 'signvideo', "
        "'s3cret') RETURNING id",
        authority,
        issuer,
    )
    return provider_id


async def sign_in_at_provider(
    client: TestClient[Any, Any],
    provider_id: int,
    who: str,
    next_path: str = "/",
    verified: bool = True,
) -> Any:
    """Start at the service, sign in at the provider as `who` (whose email
    the provider has confirmed, or not), come back; returns the service's
    answer to the callback."""
    start = await client.get(f"/login/oidc/{provider_id}?next={next_path}", allow_redirects=False)
    assert start.status == 302, await start.text()
    authorize = start.headers["Location"]
    asked = parse_qs(urlsplit(authorize).query)
    assert asked["code_challenge_method"] == ["S256"] and asked["scope"] == ["openid email"]
    issuer = urlunsplit(urlsplit(authorize)._replace(path="", query="", fragment=""))
    async with aiohttp.ClientSession() as provider:
        claims = {"email": who, "email_verified": verified}
        told = await provider.put(f"{issuer}/users/{quote(who)}", json=claims)
        assert told.status == 204, await told.text()
        chosen = await provider.post(authorize, data={"sub": who}, allow_redirects=False)
        assert chosen.status == 302, await chosen.text()
        back = urlsplit(chosen.headers["Location"])
    assert back.path == "/login/oidc/callback"
    return await client.get(f"{back.path}?{back.query}", allow_redirects=False)


async def test_staff_sign_in_with_their_organisations_account(
    client: TestClient[Any, Any], pool: asyncpg.Pool, provider_url: str
) -> None:
    await add_staff(pool, "olu@example.org", access.OPERATOR_ADMIN)
    provider_id = await add_provider(pool, provider_url)
    login = await (await client.get("/login")).text()
    assert f'href="/login/oidc/{provider_id}?next=/"' in login and "Sign in with Test ID" in login

    back = await sign_in_at_provider(client, provider_id, "olu@example.org", "/admin/audit")
    assert back.status == 303 and back.headers["Location"] == "/admin/audit"
    session = back.cookies["signvideo_session"].value
    page = await client.get("/admin/audit", headers={"Cookie": f"signvideo_session={session}"})
    assert page.status == 200 and "Signed in as Olu" in await page.text()
    entry = await pool.fetchrow("SELECT actor, detail FROM audit_log WHERE action = 'sign_in'")
    assert entry["actor"] == "olu@example.org" and entry["detail"] == {"via": "Test ID"}
    # The sign-in in progress is spent.
    assert await pool.fetchval("SELECT count(*) FROM oidc_logins") == 0


async def test_a_provider_signs_in_only_its_own_side(
    client: TestClient[Any, Any], pool: asyncpg.Pool, provider_url: str, seeded: None
) -> None:
    await add_authority(pool, "other")
    await add_staff(pool, "fin@demo.example.org", access.AUTHORITY_FINANCE, "demo")
    await add_staff(pool, "olu@example.org", access.OPERATOR_ADMIN)
    demo_idp = await add_provider(pool, provider_url, "demo")
    other_idp = await add_provider(pool, provider_url, "other")

    nobody = await sign_in_at_provider(client, demo_idp, "stranger@example.org")
    assert nobody.status == 403
    assert "stranger@example.org has no account among this authority&#39;s staff" in (
        await nobody.text()
    )
    # An authority's provider cannot sign in the service's staff, nor another's.
    assert (await sign_in_at_provider(client, demo_idp, "olu@example.org")).status == 403
    assert (await sign_in_at_provider(client, other_idp, "fin@demo.example.org")).status == 403
    unconfirmed = await sign_in_at_provider(
        client, demo_idp, "fin@demo.example.org", verified=False
    )
    assert unconfirmed.status == 403
    assert "did not give a confirmed email address" in await unconfirmed.text()
    ok = await sign_in_at_provider(client, demo_idp, "fin@demo.example.org")
    assert ok.status == 303 and ok.headers["Location"] == "/finance"
    failures = await pool.fetchval("SELECT count(*) FROM audit_log WHERE action = 'sign_in.failed'")
    assert failures == 4


async def test_a_callback_must_come_back_to_the_browser_that_left_once(
    client: TestClient[Any, Any], pool: asyncpg.Pool, provider_url: str
) -> None:
    await add_staff(pool, "olu@example.org", access.OPERATOR_ADMIN)
    provider_id = await add_provider(pool, provider_url)
    start = await client.get(f"/login/oidc/{provider_id}", allow_redirects=False)
    async with aiohttp.ClientSession() as provider:
        await provider.put(
            f"{provider_url}/users/olu%40example.org",
            json={"email": "olu@example.org", "email_verified": True},
        )
        chosen = await provider.post(
            start.headers["Location"], data={"sub": "olu@example.org"}, allow_redirects=False
        )
    callback = urlsplit(chosen.headers["Location"])
    path = f"{callback.path}?{callback.query}"
    # Another browser (no state cookie) cannot finish it.
    async with aiohttp.ClientSession() as elsewhere:
        stolen = await elsewhere.get(str(client.make_url(path)), allow_redirects=False)
        assert stolen.status == 400
        assert "not started in this browser" in await stolen.text()
    assert (await client.get(path, allow_redirects=False)).status == 303
    # Even with its cookie put back, the same answer from the provider works once.
    state = parse_qs(callback.query)["state"][0]
    client.session.cookie_jar.update_cookies(
        {"signvideo_oidc": state}, response_url=client.make_url("/login/oidc/callback")
    )
    again = await client.get(path, allow_redirects=False)
    assert again.status == 400 and "expired or was used already" in await again.text()
    refused = await client.get("/login/oidc/callback?error=access_denied&state=x")
    assert refused.status == 400 and "cancelled or refused" in await refused.text()


def test_a_forged_or_misdirected_id_token_is_refused() -> None:
    """The ID-token check on its own: the wrong audience, issuer or nonce, or
    a key the provider never published, each fail."""
    from joserfc import jwt
    from joserfc.jwk import KeySet, RSAKey

    key = RSAKey.generate_key(2048, parameters={"kid": "k1"})
    published = KeySet([key]).as_dict()
    provider = Provider(1, None, "Test ID", "https://id.example", "signvideo", "s")
    now = int(time.time())

    def token(signing_key: RSAKey = key, **claims: Any) -> str:
        base = {
            "iss": "https://id.example",
            "aud": "signvideo",
            "sub": "olu",
            "email": "olu@example.org",
            "nonce": "n1",
            "iat": now,
            "exp": now + 300,
        }
        return jwt.encode({"alg": "RS256", "kid": "k1"}, {**base, **claims}, signing_key)

    assert check_id_token(token(), published, ["RS256"], provider, "n1", None)["sub"] == "olu"
    # Only algorithms with a public key count, whatever the provider lists.
    with pytest.raises(SignInFailed):
        check_id_token(token(), published, ["none", "HS256"], provider, "n1", None)
    other = RSAKey.generate_key(2048, parameters={"kid": "k1"})
    for bad in (
        token(aud="someone-else"),
        token(iss="https://evil.example"),
        token(nonce="n2"),
        token(exp=now - 3600),
        token(signing_key=other),
    ):
        with pytest.raises(SignInFailed):
            check_id_token(bad, published, ["RS256"], provider, "n1", None)


async def test_sign_ins_begun_from_one_place_are_limited(
    client: TestClient[Any, Any], pool: asyncpg.Pool, provider_url: str
) -> None:
    from signvideo.limits import SIGN_IN_STARTS_PER_MINUTE

    provider_id = await add_provider(pool, provider_url)
    for _ in range(SIGN_IN_STARTS_PER_MINUTE):
        begun = await client.get(f"/login/oidc/{provider_id}", allow_redirects=False)
        assert begun.status == 302
    refused = await client.get(f"/login/oidc/{provider_id}", allow_redirects=False)
    assert refused.status == 429 and int(refused.headers["Retry-After"]) > 0
    assert "Too many sign-ins were begun from here" in await refused.text()
    assert await pool.fetchval("SELECT count(*) FROM oidc_logins") == SIGN_IN_STARTS_PER_MINUTE
