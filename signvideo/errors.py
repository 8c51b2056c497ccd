"""Domain errors. Each becomes an HTTP answer or a WebSocket error message in one place."""

from __future__ import annotations

from datetime import datetime
from typing import Any


class SignvideoError(Exception):
    """An error a person can act on; ``message`` says what was wrong and what to do."""

    code = "error"
    http_status = 400

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def details(self) -> dict[str, Any]:
        """Fields the error message carries beyond its code and words."""
        return {}


class BadMessage(SignvideoError):
    """A WebSocket message that is malformed; ``code`` names the kind of fault."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


class InvalidField(SignvideoError):
    code = "invalid_field"


class OutOfTurn(SignvideoError):
    code = "out_of_turn"
    http_status = 409


class NotFound(SignvideoError):
    code = "not_found"
    http_status = 404


class Closed(SignvideoError):
    code = "closed"
    http_status = 409

    def __init__(self, message: str, next_open: datetime | None = None) -> None:
        super().__init__(message)
        self.next_open = next_open

    def details(self) -> dict[str, Any]:
        return {"next_open": None if self.next_open is None else self.next_open.isoformat()}


class TooManyJoins(SignvideoError):
    """Joins from one place, or to one queue, faster than the limits allow."""

    code = "slow_down"
    http_status = 429

    def __init__(self, message: str, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after

    def details(self) -> dict[str, Any]:
        return {"retry_after": round(self.retry_after, 1)}


class QueueFull(SignvideoError):
    code = "queue_full"
    http_status = 503
