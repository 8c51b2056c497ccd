"""What is kept about callers, and for how long.

Callers are anonymous. A caller may leave a way to reach them if the call
is cut off; it is wiped after the retention period by purge_contacts, which
every server process runs hourly. No video, audio or text of a call is ever
stored: media flows between the browsers, and the server relays only the
connection set-up. The privacy page (/privacy) says this in plain words.
"""

from __future__ import annotations

import asyncio
import logging
import uuid

import asyncpg
from aiohttp import web

from signvideo.db import Q
from signvideo.keys import CONFIG
from signvideo.views import render

log = logging.getLogger("signvideo.privacy")

PURGE_EVERY_SECONDS = 3600
MAX_CONTACT_CHARS = 200


async def remember_contact(pool: asyncpg.Pool, call_id: uuid.UUID, contact: str) -> None:
    """Keep the caller's contact with their call. It is optional: if the
    database fails here, the caller keeps their place without it."""
    try:
        await pool.execute(Q["set_caller_contact"], call_id, contact)
    except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as err:
        log.warning("could not keep the contact of call %s (%s)", call_id, err)


async def purge_contacts(pool: asyncpg.Pool, retention_days: int) -> int:
    """Wipe callers' contact details older than the retention period."""
    wiped: int = await pool.fetchval(Q["purge_contacts"], retention_days)
    if wiped:
        log.info("wiped the contact details of %d calls older than %d days", wiped, retention_days)
    return wiped


async def purge_forever(pool: asyncpg.Pool, retention_days: int) -> None:
    while True:
        try:
            await purge_contacts(pool, retention_days)
            await pool.execute(Q["oidc_logins_expire"])
        except (OSError, asyncpg.PostgresError) as err:
            log.warning("could not wipe old contact details (%s); will try again", err)
        await asyncio.sleep(PURGE_EVERY_SECONDS)


async def page(request: web.Request) -> web.Response:
    return await render(
        request,
        "privacy.html",
        {"retention_days": request.app[CONFIG].contact_retention_days},
    )
