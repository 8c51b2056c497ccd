"""HTML pages and the finance export."""

from __future__ import annotations

import secrets
import uuid
from typing import Any

import aiohttp_jinja2
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from signvideo import access, admission, audit, auth, csrf, forms, turn
from signvideo.auth import token_digest
from signvideo.db import Q
from signvideo.keys import CONFIG, METRICS, POOL

END_REASONS = {
    "caller_left": "You left the queue.",
    "caller_disconnected": "Your connection was lost.",
    "caller_hung_up": "You hung up.",
    "interpreter_hung_up": "The interpreter hung up.",
    "interpreter_disconnected": "The interpreter's connection was lost.",
}


async def render(
    request: web.Request, template: str, context: dict[str, Any], status: int = 200
) -> web.Response:
    user = await auth.current_user(request)
    context = {"user": user, "csrf_token": csrf.token(request), **context}
    response = aiohttp_jinja2.render_template(template, request, context, status=status)
    csrf.attach(request, response)
    return response


async def _authority(request: web.Request, slug: str) -> Any:
    row = await request.app[POOL].fetchrow(Q["authority_by_slug"], slug)
    if row is None:
        raise web.HTTPNotFound(
            text=f"There is no service at /call/{slug}. "
            "Check the link your council or public body gave you."
        )
    return row


async def index(request: web.Request) -> web.Response:
    return await render(request, "index.html", {})


async def help_page(request: web.Request) -> web.Response:
    return await render(request, "help.html", {})


async def caller_page(request: web.Request) -> web.Response:
    authority = await _authority(request, request.match_info["slug"])
    availability = await admission.availability(request.app[POOL], authority["slug"])
    return await render(
        request,
        "caller.html",
        {
            "authority": authority,
            "availability": availability,
            "opening_lines": availability["opening_lines"],
            "ice_servers": request.app[CONFIG].ice_servers,
            "retention_days": request.app[CONFIG].contact_retention_days,
            "cost_centres": await request.app[POOL].fetch(
                Q["cost_centres_for_callers"], authority["id"]
            ),
            # The pre-call check's own TURN credentials (signvideo.video_check).
            "check_ice": {
                "servers": turn.ice_servers_for_call(
                    request.app[CONFIG], "check-" + secrets.token_hex(8)
                ),
                "policy": request.app[CONFIG].ice_transport_policy,
            },
        },
    )


RATINGS = (
    ("5", "Very good", "\U0001f600"),
    ("4", "Good", "\U0001f642"),
    ("3", "All right", "\U0001f610"),
    ("2", "Poor", "\U0001f641"),
    ("1", "Very poor", "\U0001f61e"),
)


def _rating_request(query: Any) -> tuple[str, str] | None:
    """The call and key a page may rate with, if both look right."""
    call, key = query.get("call", ""), query.get("key", "")
    try:
        uuid.UUID(call)
    except ValueError:
        return None
    return (call, key) if 10 <= len(key) <= 100 else None


async def call_ended(request: web.Request) -> web.Response:
    authority = await _authority(request, request.match_info["slug"])
    reason = END_REASONS.get(request.query.get("reason", ""), "The call is over.")
    return await render(
        request,
        "call_ended.html",
        {
            "authority": authority,
            "reason_text": reason,
            "rate": _rating_request(request.query),
            "ratings": RATINGS,
            "rated": request.query.get("rated") == "1",
        },
    )


async def call_rating(request: web.Request) -> web.Response:
    """POST /call/{slug}/rating: the caller's picture rating of their call."""
    authority = await _authority(request, request.match_info["slug"])
    form = await request.post()
    rating, call, key = form.get("rating"), form.get("call"), form.get("key")
    if rating not in {value for value, _, _ in RATINGS}:
        raise web.HTTPBadRequest(text="Choose one of the faces to rate your call.")
    wanted = _rating_request({"call": call or "", "key": key or ""})
    if wanted is None:
        raise web.HTTPBadRequest(text="This rating is not for a call we know.")
    saved = await request.app[POOL].fetchval(
        Q["rate_call_by_caller"],
        uuid.UUID(wanted[0]),
        token_digest(wanted[1]),
        int(str(rating)),
        authority["slug"],
    )
    if saved is None:
        raise web.HTTPConflict(
            text="This call has been rated already, or cannot be rated. Thank you all the same."
        )
    raise web.HTTPSeeOther(f"/call/{authority['slug']}/ended?rated=1")


async def login_page(
    request: web.Request,
    *,
    error: str | None = None,
    email: str = "",
    next_path: str = "/",
    status: int = 200,
) -> web.Response:
    """The sign-in page: email and password, and any identity providers."""
    return await render(
        request,
        "login.html",
        {
            "error": error,
            "email": email,
            "next": next_path,
            "providers": await request.app[POOL].fetch(Q["identity_providers_listed"]),
        },
        status=status,
    )


async def login_form(request: web.Request) -> web.Response:
    return await login_page(request, next_path=access.same_site_path(request.query.get("next")))


async def login_submit(request: web.Request) -> web.Response:
    form = await request.post()
    email = form.get("email")
    password = form.get("password")
    next_path = access.same_site_path(str(form.get("next", "")))
    if not isinstance(email, str) or not isinstance(password, str) or not email or not password:
        return await login_page(
            request,
            error="Enter your email address and password.",
            email=email if isinstance(email, str) else "",
            next_path=next_path,
            status=400,
        )
    try:
        user = await auth.sign_in(request, email, password)
    except auth.SignInRefused as refused:
        page = await login_page(
            request, error=refused.message, email=email, next_path=next_path, status=refused.status
        )
        if refused.retry_after is not None:
            page.headers["Retry-After"] = str(refused.retry_after)
        return page
    if next_path == "/":
        next_path = access.HOME.get(user.role, "/")
    response = web.HTTPSeeOther(next_path)
    await auth.start_session(request, response, user)
    raise response


PASSWORD_MINIMUM = 12
PASSWORD_FIELDS = (
    forms.Field(
        "password",
        "New password",
        kind="password",
        max_length=200,
        autocomplete="new-password",
    ),
    forms.Field(
        "confirm",
        "The same password again",
        kind="password",
        max_length=200,
        autocomplete="new-password",
    ),
)


async def password_link(request: web.Request) -> web.Response:
    """The page a one-time link opens: choose a password, once."""
    token = request.match_info["token"]
    pool = request.app[POOL]
    found = None
    if 20 <= len(token) <= 100:
        found = await pool.fetchrow(Q["password_link_find"], auth.token_digest(token))
    if found is None or not found["usable"]:
        problem = (
            "This link is not one we made: check that all of it was copied."
            if found is None
            else "This link has been used already, or a newer one has been made."
            if found["used_at"] is not None
            else "This link has expired."
        )
        return await render(
            request,
            "password.html",
            {"form": None, "problem": problem},
            status=404 if found is None else 410,
        )
    context = {"email": found["email"], "minimum": PASSWORD_MINIMUM, "action": request.path}
    if request.method == "GET":
        return await render(
            request, "password.html", {"form": forms.Form(PASSWORD_FIELDS), **context}
        )
    form = forms.read(PASSWORD_FIELDS, await request.post())
    password = form.values.get("password")
    if isinstance(password, str) and len(password) < PASSWORD_MINIMUM:
        form.errors["password"] = f"Your password must be at least {PASSWORD_MINIMUM} characters."
    elif isinstance(password, str) and password.lower() == found["email"]:
        form.errors["password"] = "Your password must not be your email address."
    elif "confirm" not in form.errors and form.values.get("confirm") != password:
        form.errors["confirm"] = "The two passwords are not the same; type them again."
    if not form.ok:
        return await render(request, "password.html", {"form": form, **context}, status=400)
    async with pool.acquire() as con, con.transaction():
        row = await con.fetchrow(
            Q["password_link_use"], auth.token_digest(token), auth.hash_password(str(password))
        )
        if row is None:  # spent by another request a moment ago
            raise web.HTTPGone(text="This link has already been used. Ask for a new one.")
        # A new password ends every session: whoever had the old one is out,
        # and the browsers they used are strangers to the account again.
        await con.execute(Q["sessions_revoke"], row["id"])
        await con.execute(Q["trusted_devices_revoke"], row["id"])
        user = auth.User.from_row(row)
        await audit.record(con, request, "password.set", user=user)
    response = web.HTTPSeeOther(access.HOME.get(user.role, "/"))
    await auth.start_session(request, response, user)
    raise response


async def logout(request: web.Request) -> web.Response:
    response = web.HTTPSeeOther("/")
    user = await auth.current_user(request)
    if user is not None:
        await audit.record(request.app[POOL], request, "sign_out", user=user)
    await auth.end_session(request, response)
    raise response


async def console(request: web.Request) -> web.Response:
    await access.require_page(request, access.CONSOLE)
    config = request.app[CONFIG]
    return await render(
        request,
        "console.html",
        {
            "ice_servers": config.ice_servers,
            "handover_suggest": config.handover_suggest,
            "handover_ask": config.handover_ask,
        },
    )


async def healthz(request: web.Request) -> web.Response:
    await request.app[POOL].fetchval("SELECT 1")
    return web.json_response({"ok": True})


async def metrics(request: web.Request) -> web.Response:
    registry = request.app[METRICS]
    registry.waiting_callers.set(await request.app[POOL].fetchval(Q["waiting_count"]))
    body = generate_latest(registry.registry)
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})
