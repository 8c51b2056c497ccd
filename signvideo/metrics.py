"""Prometheus metrics, in a registry of the app's own (no module-level state)."""

from __future__ import annotations

from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Gauge


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
        for kind in ("caller", "console", "guest"):
            self.websockets_open.labels(kind)
