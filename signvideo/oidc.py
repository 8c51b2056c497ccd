"""Staff sign-in through an OpenID Connect provider: the authorization-code
flow with PKCE, state and nonce (authlib), and the ID token checked with
joserfc: signature against the provider's keys, issuer, audience, expiry,
nonce and access-token hash.

A provider is the operator's (for the service's own staff) or one
authority's (for that authority's staff only). It signs people in, it does
not make accounts: the email it vouches for must already have an account,
of the right side. A sign-in in progress is kept in the database, so any
server process can finish it, and works once, for ten minutes.
"""

from __future__ import annotations

import hmac
import logging
import math
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import aiohttp
import asyncpg
from aiohttp import web
from authlib.common.security import generate_token
from authlib.oauth2.rfc6749.parameters import prepare_grant_uri
from authlib.oauth2.rfc7636 import create_s256_code_challenge
from authlib.oidc.core import CodeIDToken
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from signvideo import access, audit, auth, forms, limits
from signvideo.db import Q
from signvideo.keys import POOL, SIGN_IN_STARTS

log = logging.getLogger("signvideo.oidc")

STATE_COOKIE = "signvideo_oidc"
# Signatures with a public key only: never "none", never a shared secret.
SIGNING_ALGORITHMS = ("RS256", "PS256", "ES256", "RS384", "RS512", "ES384", "EdDSA")
CALLBACK = "/login/oidc/callback"
TIMEOUT = aiohttp.ClientTimeout(total=10)


class SignInFailed(Exception):
    """Why an identity provider's sign-in did not work, for the person."""


@dataclass(frozen=True)
class Provider:
    id: int
    authority_id: int | None
    name: str
    issuer: str
    client_id: str
    client_secret: str


async def _provider(pool: asyncpg.Pool, provider_id: int) -> Provider | None:
    row = await pool.fetchrow(Q["identity_provider"], provider_id)
    return None if row is None else Provider(**dict(row))


async def _get_json(http: aiohttp.ClientSession, url: str) -> dict[str, Any]:
    async with http.get(url) as response:
        if response.status != 200:
            raise SignInFailed(f"The sign-in service answered {response.status} at {url}.")
        body: dict[str, Any] = await response.json(content_type=None)
        return body


async def _metadata(http: aiohttp.ClientSession, provider: Provider) -> dict[str, Any]:
    metadata = await _get_json(
        http, provider.issuer.rstrip("/") + "/.well-known/openid-configuration"
    )
    if metadata.get("issuer") != provider.issuer:
        raise SignInFailed(
            f"The sign-in service calls itself {metadata.get('issuer')!r}, not "
            f"{provider.issuer!r} as set up here; an administrator must correct the issuer."
        )
    return metadata


def _redirect_uri(request: web.Request) -> str:
    return f"{request.scheme}://{request.host}{CALLBACK}"


async def begin(request: web.Request) -> web.Response:
    """GET /login/oidc/{provider}: off to the provider, with a fresh state,
    nonce and PKCE verifier remembered for the callback."""
    wait = request.app[SIGN_IN_STARTS].take(limits.client_network(request.remote))
    if wait:
        raise web.HTTPTooManyRequests(
            text=f"Too many sign-ins were begun from here just now. Wait {math.ceil(wait)} "
            "seconds and try again.",
            headers={"Retry-After": str(math.ceil(wait))},
        )
    missing = "There is no such way to sign in; go back and choose another."
    provider = await _provider(request.app[POOL], forms.path_id(request, "provider", missing))
    if provider is None:
        raise web.HTTPNotFound(text=missing)
    state, nonce, verifier = generate_token(32), generate_token(32), generate_token(64)
    try:
        async with aiohttp.ClientSession(timeout=TIMEOUT) as http:
            metadata = await _metadata(http, provider)
    except (aiohttp.ClientError, TimeoutError, ValueError, SignInFailed) as err:
        log.warning("identity provider %s unreachable: %s", provider.name, err)
        raise web.HTTPBadGateway(
            text=f"{provider.name} could not be reached just now. Try again in a few minutes, "
            "or sign in with your email address and password."
        ) from err
    next_path = access.same_site_path(request.query.get("next"))
    await request.app[POOL].execute(
        Q["oidc_login_begin"],
        auth.token_digest(state),
        provider.id,
        nonce,
        verifier,
        next_path,
    )
    url = prepare_grant_uri(
        metadata["authorization_endpoint"],
        provider.client_id,
        "code",
        redirect_uri=_redirect_uri(request),
        scope="openid email",
        state=state,
        nonce=nonce,
        code_challenge=create_s256_code_challenge(verifier),
        code_challenge_method="S256",
    )
    response = web.HTTPFound(url)
    # Ties the sign-in to this browser: another cannot finish it with a stolen link.
    response.set_cookie(
        STATE_COOKIE,
        state,
        max_age=600,
        httponly=True,
        samesite="Lax",
        secure=request.secure,
        path=CALLBACK,
    )
    raise response


async def _exchange(
    http: aiohttp.ClientSession,
    provider: Provider,
    metadata: dict[str, Any],
    code: str,
    verifier: str,
    redirect_uri: str,
) -> dict[str, Any]:
    basic = aiohttp.encode_basic_auth(
        quote(provider.client_id, safe=""), quote(provider.client_secret, safe="")
    )
    async with http.post(
        metadata["token_endpoint"],
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": redirect_uri,
            "code_verifier": verifier,
        },
        headers={"Authorization": basic, "Accept": "application/json"},
    ) as response:
        body: dict[str, Any] = await response.json(content_type=None)
        if response.status != 200 or "id_token" not in body:
            raise SignInFailed(
                f"{provider.name} did not confirm the sign-in "
                f"({body.get('error', response.status)}). Try again."
            )
        return body


def check_id_token(
    id_token: str,
    keys: dict[str, Any],
    algorithms: list[str],
    provider: Provider,
    nonce: str,
    access_token: str | None,
) -> dict[str, Any]:
    """The ID token's claims, once its signature (by one of the provider's
    `algorithms` that is also one of SIGNING_ALGORITHMS), issuer, audience,
    times, nonce and access-token hash are right; SignInFailed otherwise."""
    allowed = [alg for alg in SIGNING_ALGORITHMS if alg in algorithms]
    if not allowed:  # joserfc would take an empty list as "its defaults"
        raise SignInFailed(
            f"{provider.name} signs its sign-ins in a way this service does not accept; "
            "an administrator must change the provider's settings."
        )
    try:
        key_set = KeySet.import_key_set(keys)  # type: ignore[arg-type]  # a JWKS document
        token = jwt.decode(id_token, key_set, algorithms=allowed)
        claims = CodeIDToken(
            token.claims,
            token.header,
            {
                "iss": {"essential": True, "value": provider.issuer},
                "aud": {"essential": True, "value": provider.client_id},
                "nonce": {"essential": True, "value": nonce},
            },
            {"nonce": nonce, "client_id": provider.client_id, "access_token": access_token},
        )
        claims.validate(leeway=60)
    except (JoseError, ValueError, KeyError) as err:
        raise SignInFailed(
            f"The sign-in from {provider.name} could not be checked ({err}). Try again."
        ) from err
    return dict(token.claims)


async def callback(request: web.Request) -> web.Response:
    """GET /login/oidc/callback: check everything, then sign the person in."""
    state = request.query.get("state", "")
    if "error" in request.query:
        return await _refuse(request, "The sign-in was cancelled or refused. Try again.", 400)
    cookie = request.cookies.get(STATE_COOKIE, "")
    if not state or not cookie or not hmac.compare_digest(state, cookie):
        return await _refuse(
            request,
            "This sign-in was not started in this browser, or took too long. Start again.",
            400,
        )
    pool = request.app[POOL]
    pending = await pool.fetchrow(Q["oidc_login_finish"], auth.token_digest(state))
    provider = None if pending is None else await _provider(pool, pending["provider_id"])
    if pending is None or provider is None:
        return await _refuse(
            request, "This sign-in has expired or was used already. Start again.", 400
        )
    code = request.query.get("code", "")
    if not code or len(code) > 2000:
        return await _refuse(request, "The sign-in service sent no code back. Try again.", 400)
    try:
        async with aiohttp.ClientSession(timeout=TIMEOUT) as http:
            metadata = await _metadata(http, provider)
            tokens = await _exchange(
                http, provider, metadata, code, pending["code_verifier"], _redirect_uri(request)
            )
            keys = await _get_json(http, metadata["jwks_uri"])
        claims = check_id_token(
            tokens["id_token"],
            keys,
            metadata.get("id_token_signing_alg_values_supported", ["RS256"]),
            provider,
            pending["nonce"],
            tokens.get("access_token"),
        )
    except SignInFailed as err:
        return await _refuse(request, str(err), 400, provider)
    except (aiohttp.ClientError, TimeoutError, ValueError, KeyError) as err:
        log.warning("sign-in through %s failed: %s", provider.name, err)
        return await _refuse(
            request, f"{provider.name} could not be reached just now. Try again.", 502, provider
        )
    email = claims.get("email")
    if not isinstance(email, str) or claims.get("email_verified") is not True:
        return await _refuse(
            request, f"{provider.name} did not give a confirmed email address.", 403, provider
        )
    row = await pool.fetchrow(Q["user_by_email"], email.strip().lower())
    if row is None or row["authority_id"] != provider.authority_id:
        whose = "this authority's" if provider.authority_id else "the shared service's"
        return await _refuse(
            request,
            f"{email} has no account among {whose} staff. Ask your administrator to add "
            "one, then sign in again.",
            403,
            provider,
            email,
        )
    user = auth.User.from_row(row)
    await audit.record(pool, request, "sign_in", user=user, detail={"via": provider.name})
    response = web.HTTPSeeOther(
        pending["next_path"] if pending["next_path"] != "/" else access.HOME.get(user.role, "/")
    )
    response.del_cookie(STATE_COOKIE, path=CALLBACK)
    await auth.start_session(request, response, user)
    raise response


async def _refuse(
    request: web.Request,
    message: str,
    status: int,
    provider: Provider | None = None,
    email: str | None = None,
) -> web.Response:
    from signvideo.views import login_page  # the page imports this module's providers

    await audit.record(
        request.app[POOL],
        request,
        "sign_in.failed",
        actor=email or "unknown",
        detail={"via": provider.name if provider else "identity provider", "why": message},
    )
    return await login_page(request, error=message, status=status)


async def listed(pool: asyncpg.Pool) -> list[asyncpg.Record]:
    rows: list[asyncpg.Record] = await pool.fetch(Q["identity_providers_listed"])
    return rows
