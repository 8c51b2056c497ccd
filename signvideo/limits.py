"""Rate limits, and where a request really came from.

Joining the queue is limited per address and per authority with token
buckets held in each server process: a flood from one place, or at one
authority's queue, is turned away with a clear message before it reaches
the database. (Each process keeps its own buckets, so N processes allow up
to N times the per-authority rate; nginx in front can add its own limits.)
"""

from __future__ import annotations

import ipaddress
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable

from aiohttp import web

from signvideo.keys import CONFIG

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

# Sign-ins through an identity provider that one address may begin a minute.
SIGN_IN_STARTS_PER_MINUTE = 20


class Buckets:
    """One token bucket per key: `per_minute` tokens a minute, up to a burst
    of the same size. At most `keep` keys are remembered (least recently
    used go first: a forgotten key starts with a full bucket)."""

    def __init__(self, per_minute: int, keep: int = 100_000) -> None:
        self.rate = per_minute / 60.0
        self.burst = float(per_minute)
        self.keep = keep
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()

    def take(self, key: str, now: float | None = None) -> float:
        """Take a token for `key`: 0 if there was one, else the seconds until there is."""
        now = time.monotonic() if now is None else now
        tokens, then = self._buckets.pop(key, (self.burst, now))
        tokens = min(self.burst, tokens + (now - then) * self.rate)
        if tokens >= 1:
            self._buckets[key] = (tokens - 1, now)
            wait = 0.0
        else:
            self._buckets[key] = (tokens, now)
            wait = (1 - tokens) / self.rate
        while len(self._buckets) > self.keep:
            self._buckets.popitem(last=False)
        return wait


def client_network(address: str | None) -> str:
    """Where a request comes from, for limits: the address, or for IPv6 its
    /64 network (one household or device gets a whole /64 to choose from)."""
    if address is None:
        return "0.0.0.0"
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return "0.0.0.0"
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.ip_network(f"{ip}/64", strict=False))
    return str(ip)


def _forwarded_for(header: str, trusted: frozenset[str]) -> str | None:
    """The nearest address in X-Forwarded-For that is not one of our proxies."""
    for part in reversed([p.strip() for p in header.split(",")]):
        try:
            address = str(ipaddress.ip_address(part))
        except ValueError:
            return None
        if address not in trusted:
            return address
    return None


@web.middleware
async def behind_proxy(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Behind a trusted reverse proxy, the caller's address and scheme are
    the ones it forwards (so that limits and the audit log see people, not
    the proxy, and cookies are Secure behind TLS)."""
    trusted = request.app[CONFIG].trusted_proxies
    if trusted and request.remote in trusted:
        forwarded = request.headers.get("X-Forwarded-For")
        address = _forwarded_for(forwarded, trusted) if forwarded else None
        proto = request.headers.get("X-Forwarded-Proto", "").lower()
        scheme = proto if proto in ("http", "https") else request.scheme
        request = request.clone(remote=address or request.remote or "", scheme=scheme)
    return await handler(request)
