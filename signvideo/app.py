"""The application factory: it wires configuration, resources, routes and middlewares."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from pathlib import Path

import aiohttp_jinja2
import asyncpg
import jinja2
from aiohttp import web

from signvideo import (
    access,
    admin,
    api,
    billing,
    csrf,
    finance,
    guests,
    handover,
    invoices,
    limits,
    oidc,
    openapi,
    presence,
    privacy,
    rates,
    routing,
    service_levels,
    signaling,
    video_check,
    views,
)
from signvideo.config import Config
from signvideo.db import create_pool
from signvideo.keys import (
    CONFIG,
    HUB,
    JOIN_LIMITS,
    MATCHER,
    METRICS,
    POOL,
    PROCESS_ID,
    SIGN_IN_STARTS,
    VIDEO_CHECKS,
)
from signvideo.mailbox import Hub
from signvideo.metrics import Metrics

log = logging.getLogger("signvideo.app")

WEB_DIR = Path(__file__).resolve().parent.parent / "web"
SWEEP_SECONDS = 1.0


def _static_url_factory() -> Callable[[str], str]:
    """``static('caller.js')`` gives a URL that changes when the file does."""
    cache: dict[str, str] = {}

    def static(name: str) -> str:
        if name not in cache:
            path = WEB_DIR / "static" / name
            digest = hashlib.sha256(path.read_bytes()).hexdigest()[:10] if path.exists() else "0"
            cache[name] = f"/static/{name}?v={digest}"
        return cache[name]

    return static


async def _pool_ctx(app: web.Application) -> AsyncIterator[None]:
    config = app[CONFIG]
    assert config.database_url is not None, "the CLI resolves the database before create_app"
    app[POOL] = await create_pool(config.database_url, min_size=2, max_size=20)
    yield
    await app[POOL].close()


async def _video_checks_ctx(app: web.Application) -> AsyncIterator[None]:
    app[VIDEO_CHECKS] = checks = video_check.Checks()
    yield
    await checks.close()


async def _hub_ctx(app: web.Application) -> AsyncIterator[None]:
    config = app[CONFIG]
    assert config.database_url is not None
    hub = Hub(
        app[POOL],
        config.database_url,
        poll_interval=config.mailbox_poll_interval,
        wait_ceiling=config.wait_ceiling,
    )
    app[HUB] = hub
    hub.start()
    yield
    await hub.stop()


async def _close_sockets(app: web.Application) -> None:
    """On shutdown: clients reconnect (to another process) and resume."""
    hub = app[HUB]
    for ws in list(hub.sockets.values()):
        await ws.close(code=1012, message=b"The server is restarting; reconnect.")


async def _process_ctx(app: web.Application) -> AsyncIterator[None]:
    """Register this process and keep its heartbeat going until it stops."""
    pool, process_id = app[POOL], app[PROCESS_ID]
    await presence.register_process(pool, process_id)

    async def beat() -> None:
        while True:
            await asyncio.sleep(presence.HEARTBEAT_EVERY)
            try:
                await presence.heartbeat(pool, process_id)
            except (OSError, asyncpg.PostgresError) as err:
                log.warning("heartbeat failed: %s", err)

    task = asyncio.create_task(beat(), name="heartbeat")
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    try:
        await presence.retire_process(pool, process_id)
    except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as err:
        log.warning("could not retire this process cleanly (%s); its lease will lapse", err)


async def _sweeper_ctx(app: web.Application) -> AsyncIterator[None]:
    """Once a second, in every process: expire unanswered offers, end wrap-ups,
    apply grace periods and leases, and retry matching. One look says which
    of these has anything to do; only those run.

    Every step is safe to run in several processes at once: each locks or
    skips the rows it changes, and matching is serialised in the database.
    """

    async def sweep() -> None:
        pool, config = app[POOL], app[CONFIG]
        while True:
            await asyncio.sleep(SWEEP_SECONDS)
            try:
                due = await presence.sweep_due(pool, config)
                if due["offers"]:
                    await routing.expire_offers(pool, config)
                if due["handovers"]:
                    await handover.expire(pool, config)
                if due["wrap_ups"]:
                    await routing.finish_wrap_ups(pool)
                if due["dead_processes"] or due["callers"] or due["guests"] or due["consoles"]:
                    await presence.sweep(pool, config)
                app[MATCHER].kick()
            except (OSError, asyncpg.PostgresError) as err:
                log.warning("sweep failed: %s", err)

    matcher = app[MATCHER] = routing.Matcher(app[POOL], app[CONFIG], app[HUB])
    matcher.start()
    tasks = [
        asyncio.create_task(sweep(), name="offer-sweeper"),
        asyncio.create_task(
            privacy.purge_forever(app[POOL], app[CONFIG].contact_retention_days),
            name="contact-purge",
        ),
        asyncio.create_task(billing.rate_forever(app[POOL]), name="rating-catch-up"),
    ]
    yield
    for task in tasks:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    await matcher.stop()


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def error_pages(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Errors a person meets in a browser become a plain page saying what to do."""
    try:
        return await handler(request)
    except web.HTTPException as err:
        wants_html = "text/html" in request.headers.get("Accept", "")
        if err.status < 400 or not wants_html or request.path.startswith("/ws/"):
            raise
        message = err.text if err.text and not err.text.startswith(str(err.status)) else None
        titles = {404: "Page not found", 403: "You cannot open this page", 405: "Not allowed"}
        return await views.render(
            request,
            "error.html",
            {
                "title": titles.get(err.status, err.reason),
                "message": message or "Check the address and try again.",
                "status": err.status,
            },
            status=err.status,
        )


@web.middleware
async def plain_input(request: web.Request, handler: Handler) -> web.StreamResponse:
    """PostgreSQL text cannot hold a NUL character: refuse one at the door,
    in words, wherever it comes (address, query or form)."""
    suspicious = "\x00" in request.path or any(
        "\x00" in key or "\x00" in value for key, value in request.query.items()
    )
    if (
        not suspicious
        and request.method == "POST"
        and request.content_type
        in (
            "application/x-www-form-urlencoded",
            "multipart/form-data",
        )
    ):
        try:
            form = await request.post()
        except ValueError as err:  # a multipart body without its boundary, say
            raise web.HTTPBadRequest(text=f"The form could not be read: {err}.") from None
        suspicious = any(
            "\x00" in key or (isinstance(value, str) and "\x00" in value)
            for key, value in form.items()
        )
    if suspicious:
        raise web.HTTPBadRequest(
            text="The request contains a NUL character, which is not allowed. "
            "Check what was typed or pasted and try again."
        )
    return await handler(request)


@web.middleware
async def security_headers(request: web.Request, handler: Handler) -> web.StreamResponse:
    """On every answer, errors included: no inline script, no framing, no
    referrer beyond this site, and camera and microphone only where needed."""
    try:
        response = await handler(request)
    except web.HTTPException as err:
        _secure(request, err.headers)
        raise
    if not response.prepared:
        _secure(request, response.headers)
    return response


def _secure(request: web.Request, headers: MutableMapping[str, str]) -> None:
    headers.setdefault(
        "Content-Security-Policy",
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "media-src 'self' blob:; connect-src 'self'; frame-ancestors 'none'; "
        "base-uri 'none'; form-action 'self'",
    )
    headers.setdefault("X-Content-Type-Options", "nosniff")
    headers.setdefault("Referrer-Policy", "same-origin")
    camera = request.path.startswith(("/call/", "/console", "/guest/"))
    headers.setdefault(
        "Permissions-Policy",
        "camera=(self), microphone=(self)" if camera else "camera=(), microphone=()",
    )


def create_app(config: Config) -> web.Application:
    app = web.Application(
        middlewares=[
            limits.behind_proxy,
            security_headers,
            api.json_errors,
            error_pages,
            plain_input,
            csrf.protect,
        ],
        client_max_size=64 * 1024,
    )
    app[CONFIG] = config
    app[METRICS] = Metrics()
    app[PROCESS_ID] = uuid.uuid4()
    app[SIGN_IN_STARTS] = limits.Buckets(limits.SIGN_IN_STARTS_PER_MINUTE)
    app[JOIN_LIMITS] = (
        limits.Buckets(config.joins_per_address),
        limits.Buckets(config.joins_per_authority),
    )
    aiohttp_jinja2.setup(
        app,
        loader=jinja2.FileSystemLoader(WEB_DIR / "templates"),
        autoescape=jinja2.select_autoescape(default=True),
        context_processors=[],
    )
    env = aiohttp_jinja2.get_env(app)
    env.globals["static"] = _static_url_factory()
    # Which roles see which links in the header: the same rules the pages enforce.
    env.globals["may"] = {
        "console": access.CONSOLE,
        "finance": access.FINANCE,
        "reports": access.REPORTS,
        "admin": access.ADMIN,
    }
    app.on_shutdown.append(_close_sockets)
    app.cleanup_ctx.extend([_pool_ctx, _process_ctx, _hub_ctx, _sweeper_ctx, _video_checks_ctx])
    app.add_routes(
        [
            web.get("/", views.index),
            web.get("/help", views.help_page),
            web.get("/privacy", privacy.page),
            web.get("/call/{slug}", views.caller_page),
            web.get("/call/{slug}/ended", views.call_ended),
            web.post("/call/{slug}/rating", views.call_rating),
            web.get("/login", views.login_form),
            web.post("/login", views.login_submit),
            web.post("/logout", views.logout),
            web.get("/login/oidc/callback", oidc.callback),
            web.get("/login/oidc/{provider}", oidc.begin),
            web.get("/console", views.console),
            web.get("/finance", finance.finance_page),
            web.route("*", "/finance/tokens", finance.tokens_page),
            web.post("/finance/tokens/{token}/revoke", finance.token_revoke),
            web.route("*", "/password/{token}", views.password_link),
            web.get("/admin", admin.index),
            web.get("/admin/audit", admin.audit_log),
            web.get("/admin/authorities", admin.authorities),
            web.route("*", "/admin/authorities/new", admin.authority_new),
            web.route("*", "/admin/authorities/{slug}", admin.authority_edit),
            web.post("/admin/authorities/{slug}/closures", admin.closure_add),
            web.get("/admin/authorities/{slug}/billing", rates.billing_page),
            web.post("/admin/authorities/{slug}/rate-cards", rates.rate_card_add),
            web.post("/admin/authorities/{slug}/rate-cards/{card}/remove", rates.rate_card_remove),
            web.post("/admin/authorities/{slug}/cost-centres", rates.cost_centre_add),
            web.post(
                "/admin/authorities/{slug}/cost-centres/{code}/toggle", rates.cost_centre_toggle
            ),
            web.post("/admin/authorities/{slug}/closures/{closure}/remove", admin.closure_remove),
            web.get("/admin/interpreters", admin.interpreters),
            web.route("*", "/admin/interpreters/{user}", admin.interpreter_edit),
            web.get("/admin/users", admin.users),
            web.route("*", "/admin/users/new", admin.user_new),
            web.route("*", "/admin/users/{user}", admin.user_edit),
            web.post("/admin/users/{user}/link", admin.user_link),
            web.post("/admin/users/{user}/sign-out", admin.user_sign_out),
            web.route("*", "/admin/identity-providers", admin.providers),
            web.post("/admin/identity-providers/{provider}/remove", admin.provider_remove),
            web.get("/finance/usage", finance.usage_download),
            web.get("/reports/service-levels", service_levels.report_page),
            web.get("/reports/dashboard", service_levels.dashboard_page),
            web.get("/finance/invoices/{slug}", invoices.invoices_page),
            web.get("/finance/invoices/{slug}/{month}", invoices.invoice_page),
            web.post("/finance/invoices/{slug}/{month}/issue", invoices.invoice_issue),
            web.post("/finance/invoices/{slug}/{month}/credits", invoices.credit_add),
            web.get("/ws/caller", signaling.caller_socket),
            web.get("/ws/console", signaling.console_socket),
            web.get("/ws/guest", signaling.guest_socket),
            web.get("/guest/{token}", guests.guest_page),
            web.get("/api/openapi.json", openapi.document),
            web.get("/api/v1/queues", api.queues),
            web.get("/api/v1/authorities/{slug}/availability", api.availability),
            web.get("/api/v1/authorities/{slug}/usage", finance.usage_api),
            web.get("/api/v1/service-levels", service_levels.report_api),
            web.post("/api/v1/video-check", video_check.start),
            web.get("/healthz", views.healthz),
            web.get("/metrics", views.metrics),
            web.static("/static", WEB_DIR / "static", append_version=False),
        ]
    )
    return app
