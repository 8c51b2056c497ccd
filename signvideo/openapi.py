"""The OpenAPI description of the HTTP API, served at /api/openapi.json.

tests/integration/test_openapi.py runs schemathesis against a running
server with it: no 5xx, and every answer as described here.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

_ERROR = {"$ref": "#/components/schemas/Error"}


def _errors(*statuses: int) -> dict[str, Any]:
    words = {
        400: "The request is not right; `error` says what to change.",
        401: "Not signed in, or the API token is missing, unknown or revoked.",
        403: "Signed in, but not allowed to see this.",
        404: "There is no such authority.",
        429: "Too many requests just now; wait as long as Retry-After says.",
    }
    return {
        str(s): {
            "description": words[s],
            "content": {"application/json": {"schema": _ERROR}},
        }
        for s in statuses
    }


_SLUG = {
    "name": "slug",
    "in": "path",
    "required": True,
    "description": "The authority's short name, as in its callers' link /call/{slug}.",
    "schema": {"type": "string", "minLength": 1, "maxLength": 63},
}
_DATE = {"type": "string", "format": "date"}
_NULLABLE_TEXT = {"type": ["string", "null"]}

DOCUMENT: dict[str, Any] = {
    "openapi": "3.1.0",
    "info": {
        "title": "SignVideo API",
        "version": "1",
        "description": "Queue figures for wallboards, availability for callers' pages, and "
        'usage for finance systems. Errors are JSON: {"error": what was wrong and what to do}.',
    },
    "paths": {
        "/api/v1/queues": {
            "get": {
                "summary": "Each authority's queue now (an authority's staff see their own)",
                "security": [{"session": []}],
                "responses": {
                    "200": {
                        "description": "The queues",
                        "content": {
                            "application/json": {"schema": {"$ref": "#/components/schemas/Queues"}}
                        },
                    },
                    **_errors(401, 403),
                },
            }
        },
        "/api/v1/authorities/{slug}/availability": {
            "get": {
                "summary": "Whether a caller can join now, and the expected wait",
                "parameters": [
                    _SLUG,
                    {
                        "name": "language",
                        "in": "query",
                        "required": False,
                        "description": "A sign language the authority offers, like BSL.",
                        "schema": {"type": "string", "minLength": 1, "maxLength": 40},
                    },
                ],
                "responses": {
                    "200": {
                        "description": "Availability",
                        "content": {
                            "application/json": {
                                "schema": {"$ref": "#/components/schemas/Availability"}
                            }
                        },
                    },
                    **_errors(400, 404),
                },
            }
        },
        "/api/v1/authorities/{slug}/usage": {
            "get": {
                "summary": "An authority's calls between two local dates, for finance systems",
                "security": [{"token": []}, {"session": []}],
                "parameters": [
                    _SLUG,
                    {"name": "from", "in": "query", "required": True, "schema": _DATE},
                    {"name": "to", "in": "query", "required": True, "schema": _DATE},
                    {
                        "name": "format",
                        "in": "query",
                        "required": False,
                        "schema": {"type": "string", "enum": ["csv"], "default": "csv"},
                    },
                ],
                "responses": {
                    "200": {
                        "description": "RFC 4180 CSV, UTF-8, one row per call "
                        "(columns in README.md)",
                        "content": {"text/csv": {"schema": {"type": "string"}}},
                    },
                    **_errors(400, 401, 403, 404),
                },
            }
        },
    },
    "components": {
        "securitySchemes": {
            "token": {"type": "http", "scheme": "bearer", "description": "An API token, svt_..."},
            "session": {"type": "apiKey", "in": "cookie", "name": "signvideo_session"},
        },
        "schemas": {
            "Error": {
                "type": "object",
                "required": ["error"],
                "properties": {"error": {"type": "string", "minLength": 1}},
            },
            "Queues": {
                "type": "object",
                "required": ["authorities"],
                "properties": {
                    "authorities": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "required": [
                                "slug",
                                "name",
                                "answer_seconds",
                                "languages",
                                "waiting",
                                "longest_wait_seconds",
                                "oldest_deadline",
                                "eligible_interpreters_signed_in",
                                "eligible_interpreters_available",
                            ],
                            "properties": {
                                "slug": {"type": "string"},
                                "name": {"type": "string"},
                                "answer_seconds": {"type": "integer"},
                                "languages": {"type": "array", "items": {"type": "string"}},
                                "waiting": {"type": "integer", "minimum": 0},
                                "longest_wait_seconds": {"type": "integer", "minimum": 0},
                                "oldest_deadline": {"type": ["string", "null"]},
                                "eligible_interpreters_signed_in": {"type": "integer"},
                                "eligible_interpreters_available": {"type": "integer"},
                            },
                        },
                    }
                },
            },
            "Availability": {
                "type": "object",
                "required": [
                    "authority",
                    "name",
                    "open",
                    "languages",
                    "language",
                    "queue_full",
                    "waiting",
                    "interpreters_on_duty",
                    "expected_wait_seconds",
                    "opening_lines",
                ],
                "properties": {
                    "authority": {"type": "string"},
                    "name": {"type": "string"},
                    "open": {"type": "boolean"},
                    "reason": _NULLABLE_TEXT,
                    "next_open": _NULLABLE_TEXT,
                    "next_open_text": _NULLABLE_TEXT,
                    "languages": {"type": "array", "items": {"type": "string"}},
                    "language": {"type": "string"},
                    "queue_full": {"type": "boolean"},
                    "waiting": {"type": "integer", "minimum": 0},
                    "interpreters_on_duty": {"type": "integer", "minimum": 0},
                    "expected_wait_seconds": {"type": ["integer", "null"]},
                    "opening_lines": {"type": "array", "items": {"type": "string"}},
                },
            },
        },
    },
}


async def document(request: web.Request) -> web.Response:
    return web.json_response(DOCUMENT, headers={"Cache-Control": "no-cache"})
