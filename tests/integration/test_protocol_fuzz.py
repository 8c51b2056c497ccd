"""The WebSocket protocol under random, truncated, oversized and out-of-turn
messages (hypothesis): every message gets an answer or, for one too big, a
clean close with a reason; no handler crashes; no call is left half-changed."""

from __future__ import annotations

import json
import logging
from typing import Any

import aiohttp
import asyncpg
import pytest
from aiohttp.test_utils import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.integration.conftest import INTERPRETER_PASSWORD, add_interpreter, sign_in
from tests.integration.test_routing_properties import check_event_log

CALLER_TYPES = ["join", "resume", "leave", "hangup", "sdp", "ice", "ping"]
CONSOLE_TYPES = [
    "set_state",
    "set_availability",
    "end_wrap_up",
    "accept",
    "decline",
    "hangup",
    "sdp",
    "ice",
    "ping",
]
FIELDS = [
    "authority",
    "language",
    "specialism",
    "token",
    "call_id",
    "description",
    "candidate",
    "state",
    "reason",
    "available",
    "id",
]
# Values that are nearly right as often as wildly wrong.
VALUES = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(-(2**70), 2**70),
        st.floats(allow_nan=False),
        st.text(max_size=30),
        st.sampled_from(
            [
                "demo",
                "BSL",
                "ISL",
                "health",
                "available",
                "break",
                "meal",
                "00000000-0000-0000-0000-000000000000",
                "offer",
                "answer",
                "\u0000",
                "x" * 70,
            ]
        ),
    ),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=6,
)


def shaped(types: list[str]) -> st.SearchStrategy[str]:
    """A JSON object with a real type and random fields."""
    return st.builds(
        lambda kind, fields: json.dumps({"type": kind, **fields}),
        st.sampled_from(types),
        st.dictionaries(st.sampled_from(FIELDS), VALUES, max_size=4),
    )


def messages(types: list[str]) -> st.SearchStrategy[str]:
    whole = shaped(types)
    return st.one_of(
        whole,
        whole,
        whole,
        # Truncated: a message cut short anywhere.
        st.builds(lambda text, cut: text[: cut % max(len(text), 1)], whole, st.integers(0, 200)),
        st.text(max_size=40),
        st.builds(json.dumps, VALUES),
    )


def messages_and_rarely_one_too_big(types: list[str]) -> st.SearchStrategy[str]:
    return st.one_of(
        *[messages(types)] * 9,
        st.just('{"type": "ping", "pad": "' + "x" * 70_000 + '"}'),
    )


STEPS = st.lists(
    st.one_of(
        st.tuples(st.just("caller"), messages_and_rarely_one_too_big(CALLER_TYPES)),
        st.tuples(st.just("console"), messages_and_rarely_one_too_big(CONSOLE_TYPES)),
    ),
    min_size=1,
    max_size=8,
)


async def answers_until_pong(ws: aiohttp.ClientWebSocketResponse, marker: str) -> list[Any]:
    """Everything the server sends up to the pong for `marker`; the socket
    stays open unless it closed for a message too big (then None ends it)."""
    got: list[Any] = []
    while True:
        msg = await ws.receive(timeout=5)
        if msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED):
            assert ws.close_code == 1009, f"closed with {ws.close_code}: {msg.extra}"
            assert "too big" in (msg.extra or "")
            got.append(None)
            return got
        assert msg.type == aiohttp.WSMsgType.TEXT, msg
        data = json.loads(msg.data)
        assert isinstance(data, dict) and isinstance(data.get("type"), str), data
        if data["type"] == "error":
            assert data["code"] and len(data["message"]) > 10, data
            assert data["code"] != "unavailable", f"the server failed: {data}"
        if data["type"] == "pong" and data.get("in_reply_to") == marker:
            return got
        got.append(data)


@pytest.fixture
async def console_session(client: TestClient[Any, Any], pool: asyncpg.Pool) -> str:
    await add_interpreter(pool, "ann@example.org")
    return await sign_in(client, "ann@example.org", INTERPRETER_PASSWORD)


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(steps=STEPS)
async def test_any_message_gets_an_answer_and_leaves_calls_whole(
    client: TestClient[Any, Any],
    pool: asyncpg.Pool,
    console_session: str,
    caplog: pytest.LogCaptureFixture,
    steps: list[tuple[str, str]],
) -> None:
    caplog.set_level(logging.ERROR)
    caplog.clear()

    async def connect(side: str) -> aiohttp.ClientWebSocketResponse:
        if side == "caller":
            return await client.ws_connect("/ws/caller")
        cookie = {"Cookie": f"signvideo_session={console_session}"}
        return await client.ws_connect("/ws/console", headers=cookie)

    sockets = {side: await connect(side) for side in ("caller", "console")}
    try:
        # A caller in the queue and an interpreter available, so that calls
        # can be offered, taken and ended by the messages that follow.
        await sockets["caller"].send_json({"type": "join", "authority": "demo"})
        await sockets["console"].send_json({"type": "set_state", "state": "available"})
        for n, (side, text) in enumerate(steps):
            ws = sockets[side]
            if ws.closed:  # after a message too big: a new caller, or the console back
                ws = sockets[side] = await connect(side)
            await ws.send_str(text)
            if len(text) > 64 * 1024:
                assert (await answers_until_pong(ws, "never"))[-1] is None
                continue
            await ws.send_json({"type": "ping", "id": f"step-{n}"})
            await answers_until_pong(ws, f"step-{n}")
    finally:
        for ws in sockets.values():
            await ws.close()
    # Nothing crashed in a handler, and every call is whole.
    crashes = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert not crashes, [r.getMessage() for r in crashes]
    # One snapshot: the service may still be handling the closed sockets.
    async with pool.acquire() as con, con.transaction(isolation="repeatable_read", readonly=True):
        await check_all_whole(con)


async def check_all_whole(con: asyncpg.Connection) -> None:
    await check_event_log(con)  # type: ignore[arg-type]  # a connection reads as a pool does
    live = await con.fetch(
        "SELECT interpreter_id, count(*) FROM calls WHERE state IN ('offered', 'answered') "
        "GROUP BY interpreter_id HAVING count(*) > 1"
    )
    assert not live
    mismatched = await con.fetch(
        """SELECT s.user_id FROM interpreter_status s
           LEFT JOIN calls c ON c.id = s.call_id
           WHERE (s.state = 'offered' AND c.state IS DISTINCT FROM 'offered')
              OR (s.state = 'in_call' AND c.state IS DISTINCT FROM 'answered')"""
    )
    assert not mismatched
