"""Settings, declared once as data.

The same table drives the command-line flags, the environment variables, the
validation at start-up and the settings table in README.md (a test checks that
every setting is documented there).
"""

from __future__ import annotations

import dataclasses
import ipaddress
import json
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any


class ConfigError(ValueError):
    """A setting has a value the service cannot use; the message says which and why."""


def _port(text: str) -> int:
    value = int(text)
    if not 1 <= value <= 65535:
        raise ValueError("must be a whole number from 1 to 65535")
    return value


def _positive_seconds(text: str) -> float:
    value = float(text)
    if not 0 < value <= 86400:
        raise ValueError("must be a number of seconds above 0 and at most 86400")
    return value


def _seconds_or_zero(text: str) -> float:
    value = float(text)
    if not 0 <= value <= 86400:
        raise ValueError("must be a number of seconds from 0 to 86400")
    return value


def _count(text: str) -> int:
    value = int(text)
    if not 1 <= value <= 100:
        raise ValueError("must be a whole number from 1 to 100")
    return value


def _database_url(text: str) -> str:
    if not text.startswith(("postgres://", "postgresql://")):
        raise ValueError("must start with postgresql:// (for example postgresql://user@host/db)")
    return text


# Settings whose values never appear in messages.
SECRET_SETTINGS = frozenset({"turn_secret"})


def _turn_urls(text: str) -> tuple[str, ...]:
    urls = tuple(u.strip() for u in text.split(",") if u.strip())
    for url in urls:
        if not url.startswith(("turn:", "turns:")):
            raise ValueError(f"{url!r} is not a turn: or turns: URL")
    return urls


def _secret(text: str) -> str:
    if len(text) < 16:
        raise ValueError("must be at least 16 characters")
    return text


def _transport_policy(text: str) -> str:
    if text not in ("all", "relay"):
        raise ValueError("must be all or relay")
    return text


def _ice_servers(text: str) -> list[dict[str, Any]]:
    """Either a JSON list of RTCIceServer objects or comma-separated stun:/turn: URLs."""
    text = text.strip()
    if not text:
        return []
    if text.startswith("["):
        value = json.loads(text)
        if not isinstance(value, list) or not all(
            isinstance(s, dict) and "urls" in s for s in value
        ):
            raise ValueError('must be a JSON list of objects with "urls"')
        return value
    urls = [u.strip() for u in text.split(",") if u.strip()]
    for url in urls:
        if not url.startswith(("stun:", "turn:", "turns:")):
            raise ValueError(f"{url!r} is not a stun:, turn: or turns: URL")
    return [{"urls": urls}]


def _addresses(text: str) -> frozenset[str]:
    found = set()
    for part in text.split(","):
        part = part.strip()
        if part:
            try:
                found.add(str(ipaddress.ip_address(part)))
            except ValueError:
                raise ValueError(f"{part!r} is not an IP address") from None
    return frozenset(found)


def _whole_number(text: str) -> int:
    value = int(text)
    if not 1 <= value <= 100_000:
        raise ValueError("must be a whole number from 1 to 100000")
    return value


def _log_level(text: str) -> str:
    level = text.upper()
    if level not in {"DEBUG", "INFO", "WARNING", "ERROR"}:
        raise ValueError("must be one of debug, info, warning, error")
    return level


@dataclasses.dataclass(frozen=True)
class Setting:
    name: str
    env: str
    default: str | None
    parse: Callable[[str], Any]
    help: str


SETTINGS: tuple[Setting, ...] = (
    Setting("host", "SIGNVIDEO_HOST", "127.0.0.1", str, "address to listen on"),
    Setting("port", "SIGNVIDEO_PORT", "8080", _port, "port to listen on"),
    Setting(
        "database_url",
        "DATABASE_URL",
        None,
        _database_url,
        "PostgreSQL to use; when unset, an embedded PostgreSQL is started in the data folder",
    ),
    Setting("data_dir", "SIGNVIDEO_DATA", "./var", Path, "folder for the embedded database"),
    Setting(
        "offer_timeout",
        "SIGNVIDEO_OFFER_TIMEOUT",
        "20",
        _positive_seconds,
        "seconds an interpreter has to accept an offered call",
    ),
    Setting(
        "wait_ceiling",
        "SIGNVIDEO_WAIT_CEILING",
        "300",
        _positive_seconds,
        "seconds after which a waiting caller goes ahead of everyone, oldest first",
    ),
    Setting(
        "max_missed_offers",
        "SIGNVIDEO_MAX_MISSED_OFFERS",
        "2",
        _count,
        "offers in a row an interpreter may miss before they are paused",
    ),
    Setting(
        "wrap_up",
        "SIGNVIDEO_WRAP_UP",
        "30",
        _seconds_or_zero,
        "seconds of wrap-up after a call before the next offer (0 for none)",
    ),
    Setting(
        "handover_suggest",
        "SIGNVIDEO_HANDOVER_SUGGEST",
        "1200",
        _positive_seconds,
        "seconds of continuous interpreting after which the console suggests a handover",
    ),
    Setting(
        "handover_ask",
        "SIGNVIDEO_HANDOVER_ASK",
        "2400",
        _positive_seconds,
        "seconds of continuous interpreting after which the console asks for a handover",
    ),
    Setting(
        "short_abandon",
        "SIGNVIDEO_SHORT_ABANDON",
        "6",
        _seconds_or_zero,
        "seconds within which a caller who leaves the queue is a short abandon, left out of "
        "service levels",
    ),
    Setting(
        "console_lease",
        "SIGNVIDEO_CONSOLE_LEASE",
        "15",
        _positive_seconds,
        "seconds an interpreter's state is kept after their console disconnects",
    ),
    Setting(
        "caller_grace",
        "SIGNVIDEO_CALLER_GRACE",
        "60",
        _positive_seconds,
        "seconds a caller whose connection dropped keeps their place or call",
    ),
    Setting(
        "guest_link_ttl",
        "SIGNVIDEO_GUEST_LINK_TTL",
        "900",
        _positive_seconds,
        "seconds an interpreter's invitation link for a hearing person works, if unused",
    ),
    Setting(
        "ice_servers",
        "SIGNVIDEO_ICE_SERVERS",
        "",
        _ice_servers,
        "STUN/TURN servers for WebRTC: comma-separated URLs or a JSON list of RTCIceServer",
    ),
    Setting(
        "turn_urls",
        "SIGNVIDEO_TURN_URLS",
        "",
        _turn_urls,
        "TURN server URLs (comma-separated turn:/turns:) whose credentials are issued per "
        "call from SIGNVIDEO_TURN_SECRET (coturn's use-auth-secret)",
    ),
    Setting(
        "turn_secret",
        "SIGNVIDEO_TURN_SECRET",
        None,
        _secret,
        "the secret shared with the TURN server (coturn's static-auth-secret)",
    ),
    Setting(
        "turn_ttl",
        "SIGNVIDEO_TURN_TTL",
        "43200",
        _positive_seconds,
        "seconds a call's TURN credentials stay valid",
    ),
    Setting(
        "ice_transport_policy",
        "SIGNVIDEO_ICE_TRANSPORT_POLICY",
        "all",
        _transport_policy,
        "all, or relay to send every call's media through TURN",
    ),
    Setting(
        "mailbox_poll_interval",
        "SIGNVIDEO_MAILBOX_POLL",
        "2",
        _positive_seconds,
        "seconds between checks for messages whose notification was missed",
    ),
    Setting(
        "trusted_proxies",
        "SIGNVIDEO_TRUSTED_PROXIES",
        "",
        _addresses,
        "addresses of reverse proxies whose X-Forwarded-For and X-Forwarded-Proto are "
        "believed (comma-separated; deploy/nginx.conf needs 127.0.0.1)",
    ),
    Setting(
        "joins_per_address",
        "SIGNVIDEO_JOINS_PER_ADDRESS",
        "10",
        _whole_number,
        "joins a minute from one address before callers there are asked to wait",
    ),
    Setting(
        "joins_per_authority",
        "SIGNVIDEO_JOINS_PER_AUTHORITY",
        "300",
        _whole_number,
        "joins a minute to one authority's queue, per server process",
    ),
    Setting(
        "contact_retention_days",
        "SIGNVIDEO_CONTACT_RETENTION_DAYS",
        "30",
        _whole_number,
        "days a caller's contact details are kept before they are wiped",
    ),
    Setting("log_level", "SIGNVIDEO_LOG_LEVEL", "info", _log_level, "debug, info, warning, error"),
)


@dataclasses.dataclass(frozen=True)
class Config:
    host: str = "127.0.0.1"
    port: int = 8080
    database_url: str | None = None
    data_dir: Path = Path("./var")
    offer_timeout: float = 20.0
    wait_ceiling: float = 300.0
    max_missed_offers: int = 2
    wrap_up: float = 30.0
    short_abandon: float = 6.0
    handover_suggest: float = 1200.0
    handover_ask: float = 2400.0
    console_lease: float = 15.0
    caller_grace: float = 60.0
    guest_link_ttl: float = 900.0
    ice_servers: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    turn_urls: tuple[str, ...] = ()
    turn_secret: str | None = None
    turn_ttl: float = 43200.0
    ice_transport_policy: str = "all"
    mailbox_poll_interval: float = 2.0
    trusted_proxies: frozenset[str] = frozenset()
    joins_per_address: int = 10
    joins_per_authority: int = 300
    contact_retention_days: int = 30
    log_level: str = "INFO"

    @classmethod
    def load(
        cls, overrides: Mapping[str, str | None], environ: Mapping[str, str] | None = None
    ) -> Config:
        """Build from flags (``overrides``, by setting name) over environment over defaults."""
        environ = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for setting in SETTINGS:
            raw = overrides.get(setting.name)
            source = f"--{setting.name.replace('_', '-')}"
            if raw is None:
                raw = environ.get(setting.env)
                source = setting.env
            if raw is None or (raw == "" and setting.default is None):
                raw = setting.default
                source = f"default of {setting.name}"
            if raw is None:
                continue
            try:
                values[setting.name] = setting.parse(raw)
            except (ValueError, json.JSONDecodeError) as err:
                shown = "(hidden)" if setting.name in SECRET_SETTINGS else repr(raw)
                raise ConfigError(f"{source}={shown}: {err}") from err
        if values.get("turn_urls") and not values.get("turn_secret"):
            raise ConfigError(
                "SIGNVIDEO_TURN_URLS needs SIGNVIDEO_TURN_SECRET, the secret shared with the "
                "TURN server"
            )
        return cls(**values)
