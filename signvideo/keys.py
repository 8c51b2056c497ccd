"""Typed keys for what handlers share through the application."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

import asyncpg
from aiohttp import web

if TYPE_CHECKING:
    from signvideo.config import Config
    from signvideo.limits import Buckets
    from signvideo.mailbox import Hub
    from signvideo.metrics import Metrics
    from signvideo.routing import Matcher
    from signvideo.video_check import Checks

CONFIG: web.AppKey[Config] = web.AppKey("config")
POOL: web.AppKey[asyncpg.Pool] = web.AppKey("pool")
HUB: web.AppKey[Hub] = web.AppKey("hub")
METRICS: web.AppKey[Metrics] = web.AppKey("metrics")
# Matching runs in one task per process; handlers kick it.
MATCHER: web.AppKey[Matcher] = web.AppKey("matcher")
# This server process's id in server_processes: sockets it holds are
# recorded against it, so another process can tell when they die with it.
PROCESS_ID: web.AppKey[uuid.UUID] = web.AppKey("process_id")
# Joins per address and per authority (limits.Buckets).
JOIN_LIMITS: web.AppKey[tuple[Buckets, Buckets]] = web.AppKey("join_limits")
# Sign-ins through an identity provider begun per address (each writes a row).
SIGN_IN_STARTS: web.AppKey[Buckets] = web.AppKey("sign_in_starts")
VIDEO_CHECKS: web.AppKey[Checks] = web.AppKey("video_checks")
