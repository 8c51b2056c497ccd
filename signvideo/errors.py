"""Domain errors. Each becomes an HTTP answer or a WebSocket error message in one place."""

from __future__ import annotations

from datetime import datetime


class SignvideoError(Exception):
    """An error a person can act on; ``message`` says what was wrong and what to do."""

    code = "error"
    http_status = 400

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


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


class QueueFull(SignvideoError):
    code = "queue_full"
    http_status = 503
