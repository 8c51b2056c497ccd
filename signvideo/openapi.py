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
        413: "More lines than a spreadsheet holds; choose a shorter range, or CSV.",
        429: "Too many requests just now; wait as long as Retry-After says.",
        503: "Too busy just now; try again after Retry-After seconds.",
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
_MONTH = {"type": "string", "pattern": "^2[0-9]{3}-(0[1-9]|1[0-2])$"}
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
                "summary": "An authority's usage lines for a billing month, or for a range "
                "of local dates, for finance systems",
                "description": "Give `month`, or `from` and `to`. The columns are in "
                "docs/exports.md; a billing month's lines add up to its invoice.",
                "security": [{"token": []}, {"session": []}],
                "parameters": [
                    _SLUG,
                    {"name": "month", "in": "query", "required": False, "schema": _MONTH},
                    {"name": "from", "in": "query", "required": False, "schema": _DATE},
                    {"name": "to", "in": "query", "required": False, "schema": _DATE},
                    {
                        "name": "format",
                        "in": "query",
                        "required": False,
                        "schema": {
                            "type": "string",
                            "enum": ["csv", "xlsx", "json"],
                            "default": "csv",
                        },
                    },
                ],
                "responses": {
                    "200": {
                        "description": "CSV (RFC 4180, UTF-8), an XLSX workbook, or JSON",
                        "content": {
                            "text/csv": {"schema": {"type": "string"}},
                            "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": {
                                "schema": {"type": "string", "format": "binary"}
                            },
                            "application/json": {"schema": {"$ref": "#/components/schemas/Usage"}},
                        },
                    },
                    **_errors(400, 401, 403, 404, 413),
                },
            }
        },
        "/api/v1/video-check": {
            "post": {
                "summary": "Start the pre-call check: a short test call whose video the "
                "service measures",
                "description": "Send the page's SDP offer with all its candidates (it must "
                "send video and open a data channel). The answer comes back; the result "
                "arrives on the data channel as {type: result, frames_per_second, width, "
                "height, round_trip_ms, verdict: good|enough|too_low}.",
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {
                            "schema": {
                                "type": "object",
                                "required": ["type", "sdp"],
                                "properties": {
                                    "type": {"const": "offer"},
                                    "sdp": {"type": "string", "maxLength": 20000},
                                },
                            }
                        }
                    },
                },
                "responses": {
                    "200": {
                        "description": "The SDP answer",
                        "content": {
                            "application/json": {
                                "schema": {
                                    "type": "object",
                                    "required": ["type", "sdp", "seconds"],
                                    "properties": {
                                        "type": {"const": "answer"},
                                        "sdp": {"type": "string"},
                                        "seconds": {"type": "number"},
                                    },
                                }
                            }
                        },
                    },
                    **_errors(400, 403, 429, 503),
                },
            }
        },
        "/api/v1/service-levels": {
            "get": {
                "summary": "Service levels per authority (or all together) by 15 minutes, "
                "day or month",
                "security": [{"session": []}],
                "parameters": [
                    {
                        "name": "authority",
                        "in": "query",
                        "required": False,
                        "schema": {"type": "string", "default": "all"},
                    },
                    {"name": "from", "in": "query", "required": False, "schema": _DATE},
                    {"name": "to", "in": "query", "required": False, "schema": _DATE},
                    {
                        "name": "by",
                        "in": "query",
                        "required": False,
                        "schema": {
                            "type": "string",
                            "enum": ["interval", "day", "month"],
                            "default": "day",
                        },
                    },
                ],
                "responses": {
                    "200": {
                        "description": "The figures, a row for each period and one for all",
                        "content": {
                            "application/json": {
                                "schema": {"$ref": "#/components/schemas/ServiceLevels"}
                            }
                        },
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
            "Usage": {
                "type": "object",
                "required": ["format", "version", "authority", "lines", "totals"],
                "properties": {
                    "format": {"const": "signvideo-usage"},
                    "version": {"const": 1},
                    "authority": {"type": "string"},
                    "time_zone": {"type": "string"},
                    "month": _NULLABLE_TEXT,
                    "from": _NULLABLE_TEXT,
                    "to": _NULLABLE_TEXT,
                    "lines": {"type": "array", "items": {"type": "object"}},
                    "totals": {
                        "type": "object",
                        "required": ["lines", "net_pence", "vat_pence", "gross_pence"],
                        "properties": {
                            name: {"type": "integer"}
                            for name in ("lines", "net_pence", "vat_pence", "gross_pence")
                        },
                    },
                },
            },
            "ServiceLevels": {
                "type": "object",
                "required": ["authority", "from", "to", "by", "rows", "total"],
                "properties": {
                    "authority": _NULLABLE_TEXT,
                    "time_zone": {"type": "string"},
                    "from": {"type": "string"},
                    "to": {"type": "string"},
                    "by": {"type": "string"},
                    "short_abandon_seconds": {"type": "number"},
                    "rows": {"type": "array", "items": {"$ref": "#/components/schemas/Figures"}},
                    "total": {"$ref": "#/components/schemas/Figures"},
                },
            },
            "Figures": {
                "type": "object",
                "required": [
                    "offered",
                    "answered",
                    "answered_in_window",
                    "abandoned",
                    "short_abandons",
                    "service_level_percent",
                ],
                "properties": {
                    "bucket": _NULLABLE_TEXT,
                    "offered": {"type": "integer", "minimum": 0},
                    "answered": {"type": "integer", "minimum": 0},
                    "answered_in_window": {"type": "integer", "minimum": 0},
                    "abandoned": {"type": "integer", "minimum": 0},
                    "short_abandons": {"type": "integer", "minimum": 0},
                    "service_level_percent": {"type": ["number", "null"]},
                    "abandonment_percent": {"type": ["number", "null"]},
                    "average_answer_seconds": {"type": ["number", "null"]},
                    "longest_wait_seconds": {"type": ["number", "null"]},
                    "p95_wait_seconds": {"type": ["number", "null"]},
                    "p99_wait_seconds": {"type": ["number", "null"]},
                },
            },
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
