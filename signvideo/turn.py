"""TURN credentials issued per call by the TURN REST scheme (as coturn's
`use-auth-secret` expects): the username is `<expiry>:<call id>`, the
password base64(HMAC-SHA1(shared secret, username)). The TURN server checks
them with the same secret and refuses them after the expiry; nothing is
stored, and a leaked credential dies with its time."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from typing import Any

from signvideo.config import Config


def credential(secret: str, username: str) -> str:
    digest = hmac.new(secret.encode(), username.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


def turn_server(
    urls: tuple[str, ...], secret: str, ttl: float, who: str, now: float | None = None
) -> dict[str, Any]:
    """One RTCIceServer for `who` (a call id), valid for `ttl` seconds."""
    expiry = int((time.time() if now is None else now) + ttl)
    username = f"{expiry}:{who}"
    return {"urls": list(urls), "username": username, "credential": credential(secret, username)}


def ice_servers_for_call(config: Config, call_id: object) -> list[dict[str, Any]]:
    """The configured STUN/TURN servers, and TURN with this call's own
    credentials when a TURN server is set up."""
    servers = list(config.ice_servers)
    if config.turn_urls and config.turn_secret:
        servers.append(
            turn_server(config.turn_urls, config.turn_secret, config.turn_ttl, str(call_id))
        )
    return servers
