"""Typed keys for what handlers share through the application."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

import asyncpg
from aiohttp import web

if TYPE_CHECKING:
    from signvideo.config import Config
    from signvideo.mailbox import Hub
    from signvideo.metrics import Metrics

CONFIG: web.AppKey[Config] = web.AppKey("config")
POOL: web.AppKey[asyncpg.Pool] = web.AppKey("pool")
HUB: web.AppKey[Hub] = web.AppKey("hub")
METRICS: web.AppKey[Metrics] = web.AppKey("metrics")
# Set when the server begins to stop: sockets closed by a restart are not
# callers or interpreters leaving, so their calls are left as they are.
STOPPING: web.AppKey[asyncio.Event] = web.AppKey("stopping")
