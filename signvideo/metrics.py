"""Prometheus metrics, in a registry of the app's own (no module-level state)."""

from __future__ import annotations

from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

# Seconds: a join takes a few milliseconds, most of them in the database
# (bench/README.md); the upper buckets catch stalls.
JOIN_BUCKETS = (
    0.0005,
    0.001,
    0.0015,
    0.002,
    0.003,
    0.004,
    0.005,
    0.0075,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    1.0,
)


@dataclass
class Metrics:
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    def __post_init__(self) -> None:
        self.waiting_callers = Gauge(
            "signvideo_waiting_callers",
            "Callers waiting in the queue (all authorities), read from the database",
            registry=self.registry,
        )
        self.calls_ended = Counter(
            "signvideo_calls_ended",
            "Calls ended by this process, by outcome",
            ["outcome"],
            registry=self.registry,
        )
        self.websockets_open = Gauge(
            "signvideo_websockets_open",
            "WebSocket connections open on this process, by kind",
            ["kind"],
            registry=self.registry,
        )
        self.protocol_errors = Counter(
            "signvideo_protocol_errors",
            "Error messages sent to WebSocket clients, by code",
            ["code"],
            registry=self.registry,
        )
        self.join_seconds = Histogram(
            "signvideo_join_seconds",
            "Joins handled by this process, from the caller's join message to their "
            "`queued` reply (after the offer, for a console this process holds), by "
            "whether the call was offered at once; a queued caller's reply also reads "
            "their place and the staffing",
            ["outcome"],
            buckets=JOIN_BUCKETS,
            registry=self.registry,
        )
        self.join_database_seconds = Histogram(
            "signvideo_join_database_seconds",
            "The join's own statement in the database, within signvideo_join_seconds: "
            "the insert, the matching round and the durable commit, from when it had "
            "a connection",
            ["outcome"],
            buckets=JOIN_BUCKETS,
            registry=self.registry,
        )
        for outcome in ("offered", "queued"):
            self.join_seconds.labels(outcome)
            self.join_database_seconds.labels(outcome)
        for kind in ("caller", "console", "guest"):
            self.websockets_open.labels(kind)
