"""The signalling protocol over real WebSockets on a real database."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import asyncpg
import pytest
from aiohttp.test_utils import TestClient

from signvideo.app import create_app
from signvideo.config import Config
from tests.integration.conftest import (
    Peer,
    interpreter_console,
    sign_in,
)

SDP = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n"

Opener = Callable[[], Awaitable[Peer]]
ConsoleOpener = Callable[[str], Awaitable[Peer]]


async def test_call_from_queue_to_charge(
    client: TestClient[Any, Any],
    pool: asyncpg.Pool,
    open_caller: Opener,
    open_console: ConsoleOpener,
) -> None:
    first, second = await open_caller(), await open_caller()
    await first.send(type="join", authority="demo")
    queued = await first.expect("queued")
    assert queued["position"] == 1
    await second.send(type="join", authority="demo")
    assert (await second.expect("queued"))["position"] == 2

    user_id, console = await interpreter_console(client, pool, open_console, "ann@example.org")
    await console.send(type="set_availability", available=True)
    await console.expect("state", state="available")
    offer = await console.expect("offer")
    assert offer["call_id"] == queued["call_id"]
    assert offer["authority"] == {"slug": "demo", "name": "Demo Borough Council"}
    await console.expect("state", state="offered")

    await console.send(type="accept", call_id=offer["call_id"])
    connected = await console.expect("connected")
    assert connected["role"] == "interpreter"
    caller_connected = await first.expect("connected")
    assert caller_connected["role"] == "caller"
    # The second caller moves up once the first is answered.
    assert (await second.expect("position"))["position"] == 1

    # SDP and ICE are relayed between the two, and only between them.
    await console.send(
        type="sdp", call_id=offer["call_id"], description={"type": "offer", "sdp": SDP}
    )
    relayed = await first.expect("sdp")
    assert relayed["description"] == {"type": "offer", "sdp": SDP}
    await first.send(
        type="ice",
        call_id=queued["call_id"],
        candidate={
            "candidate": "candidate:1 1 udp 1 127.0.0.1 9 typ host",
            "sdpMid": "0",
            "sdpMLineIndex": 0,
        },
    )
    assert (await console.expect("ice"))["candidate"]["sdpMid"] == "0"

    await asyncio.sleep(1.1)
    await first.send(type="hangup", call_id=queued["call_id"])
    assert (await first.expect("ended"))["reason"] == "caller_hung_up"
    assert (await console.expect("ended"))["reason"] == "caller_hung_up"
    await console.expect("state", state="available")
    # The waiting caller is offered to the interpreter who is free again.
    assert (await console.expect("offer"))["call_id"] != queued["call_id"]

    charge = await pool.fetchrow("SELECT * FROM ledger WHERE call_id = $1::uuid", queued["call_id"])
    assert charge["billable_seconds"] >= 2
    assert charge["net_pence"] == 150  # one minute started, 150 p a minute
    kinds = [
        r["kind"]
        for r in await pool.fetch(
            "SELECT kind FROM call_events WHERE call_id = $1::uuid ORDER BY id", queued["call_id"]
        )
    ]
    assert kinds == ["queued", "offered", "answered", "ended"]
    assert user_id == charge_interpreter(
        await pool.fetchrow(
            "SELECT interpreter_id FROM calls WHERE id = $1::uuid", queued["call_id"]
        )
    )


async def wait_for_value(pool: asyncpg.Pool, query: str, *args: Any) -> Any:
    """Poll until ``query`` gives a non-null value (at most 5 s)."""
    for _ in range(100):
        value = await pool.fetchval(query, *args)
        if value is not None:
            return value
        await asyncio.sleep(0.05)
    raise AssertionError(f"still null after 5 s: {query}")


def charge_interpreter(row: asyncpg.Record) -> int:
    value: int = row["interpreter_id"]
    return value


async def test_decline_keeps_place_and_skips_interpreter(
    client: TestClient[Any, Any],
    pool: asyncpg.Pool,
    open_caller: Opener,
    open_console: ConsoleOpener,
) -> None:
    caller = await open_caller()
    await caller.send(type="join", authority="demo")
    queued = await caller.expect("queued")
    _, ann = await interpreter_console(client, pool, open_console, "ann@example.org")
    await ann.send(type="set_availability", available=True)
    offer = await ann.expect("offer")
    _, bob = await interpreter_console(client, pool, open_console, "bob@example.org")
    await bob.send(type="set_availability", available=True)
    await bob.expect("state", state="available")

    await ann.send(type="decline", call_id=offer["call_id"])
    await ann.expect("state", state="available")
    assert (await bob.expect("offer"))["call_id"] == queued["call_id"]
    state = await pool.fetchrow(
        "SELECT state, queued_at FROM calls WHERE id = $1::uuid", queued["call_id"]
    )
    assert state["state"] == "offered"


async def test_offer_expires_and_goes_to_next(
    client: TestClient[Any, Any],
    pool: asyncpg.Pool,
    open_caller: Opener,
    open_console: ConsoleOpener,
) -> None:
    caller = await open_caller()
    await caller.send(type="join", authority="demo")
    queued = await caller.expect("queued")
    _, ann = await interpreter_console(client, pool, open_console, "ann@example.org")
    await ann.send(type="set_availability", available=True)
    await ann.expect("offer")
    _, bob = await interpreter_console(client, pool, open_console, "bob@example.org")
    await bob.send(type="set_availability", available=True)
    await bob.expect("state", state="available")
    # Make the offer overdue rather than waiting 20 s for it.
    await pool.execute(
        "UPDATE calls SET offer_expires_at = now() - interval '1 s' WHERE id = $1::uuid",
        queued["call_id"],
    )
    withdrawn = await ann.expect("offer_withdrawn")
    assert withdrawn["reason"] == "expired"
    # Bob has been idle longer than Ann, whose idle time restarted.
    assert (await bob.expect("offer"))["call_id"] == queued["call_id"]
    await ann.send(type="accept", call_id=queued["call_id"])
    error = await ann.expect("error")
    assert error["code"] == "out_of_turn"


async def test_leaving_and_disconnecting_end_the_call_unbilled(
    client: TestClient[Any, Any], pool: asyncpg.Pool, open_caller: Opener
) -> None:
    leaver, vanisher = await open_caller(), await open_caller()
    await leaver.send(type="join", authority="demo")
    left = await leaver.expect("queued")
    await vanisher.send(type="join", authority="demo")
    vanished = await vanisher.expect("queued")
    await leaver.send(type="leave", call_id=left["call_id"])
    assert (await leaver.expect("ended"))["reason"] == "caller_left"
    await vanisher.close()
    gone = await wait_for_value(
        pool, "SELECT caller_gone_at FROM calls WHERE id = $1::uuid", vanished["call_id"]
    )
    # The caller keeps their place through the grace period...
    assert (
        await pool.fetchval("SELECT state FROM calls WHERE id = $1::uuid", vanished["call_id"])
        == "queued"
    )
    # ...and once it has passed, the sweeper counts them as gone.
    await pool.execute(
        "UPDATE calls SET caller_gone_at = $2::timestamptz - interval '61 s' WHERE id = $1::uuid",
        vanished["call_id"],
        gone,
    )
    reason = await wait_for_value(
        pool, "SELECT end_reason FROM calls WHERE id = $1::uuid", vanished["call_id"]
    )
    assert reason == "caller_disconnected"
    # Never answered: rated once, at nothing.
    line = await pool.fetchrow("SELECT * FROM ledger WHERE call_id = $1::uuid", vanished["call_id"])
    assert (line["net_pence"], line["zero_rated_reason"]) == (0, "not_answered")
    # Its wait ended when the connection was lost, not when the grace ran out.
    lost = await pool.fetchval(
        "SELECT caller_gone_at FROM calls WHERE id = $1::uuid", vanished["call_id"]
    )
    assert line["ended_at"] == max(lost, line["queued_at"])


async def test_interpreter_hangs_up_and_console_loss_ends_call(
    client: TestClient[Any, Any],
    pool: asyncpg.Pool,
    open_caller: Opener,
    open_console: ConsoleOpener,
) -> None:
    ann_id, ann = await interpreter_console(client, pool, open_console, "ann@example.org")
    await ann.send(type="set_availability", available=True)
    for reason in ("interpreter_hung_up", "interpreter_disconnected"):
        caller = await open_caller()
        await caller.send(type="join", authority="demo")
        queued = await caller.expect("queued")
        offer = await ann.expect("offer")
        await ann.send(type="accept", call_id=offer["call_id"])
        await caller.expect("connected")
        if reason == "interpreter_hung_up":
            await ann.send(type="hangup", call_id=queued["call_id"])
            await ann.expect("ended", reason=reason)
        else:
            await ann.close()
            # A console that blinks keeps its call; one gone past its lease ends it.
            await wait_for_value(
                pool, "SELECT console_gone_at FROM interpreter_status WHERE user_id = $1", ann_id
            )
            await pool.execute(
                "UPDATE interpreter_status SET console_gone_at = now() - interval '16 s' "
                "WHERE user_id = $1",
                ann_id,
            )
        assert (await caller.expect("ended"))["reason"] == reason
        assert (
            await pool.fetchval(
                "SELECT count(*) FROM ledger WHERE call_id = $1::uuid", queued["call_id"]
            )
            == 1
        )


async def test_malformed_and_out_of_turn_messages_get_errors(
    client: TestClient[Any, Any],
    pool: asyncpg.Pool,
    open_caller: Opener,
    open_console: ConsoleOpener,
) -> None:
    caller = await open_caller()
    cases: list[tuple[str, str]] = [
        ("{not json", "bad_json"),
        ("[1, 2]", "bad_json"),
        ('{"kind": "join"}', "missing_type"),
        ('{"type": "dance"}', "unknown_type"),
        ('{"type": "join"}', "invalid_field"),
        ('{"type": "join", "authority": 7}', "invalid_field"),
        ('{"type": "join", "authority": "atlantis"}', "not_found"),
        ('{"type": "hangup", "call_id": "not-a-uuid"}', "invalid_field"),
        ('{"type": "hangup", "call_id": "00000000-0000-0000-0000-000000000000"}', "out_of_turn"),
        (
            '{"type": "leave", "call_id": "00000000-0000-0000-0000-000000000000", "id": "r1"}',
            "out_of_turn",
        ),
    ]
    for text, code in cases:
        await caller.send_raw(text)
        reply = await caller.receive()
        assert reply["type"] == "error", (text, reply)
        assert reply["code"] == code, (text, reply)
        assert reply["message"], text
    assert reply["in_reply_to"] == "r1"

    # The socket still works after all that.
    await caller.send(type="join", authority="demo")
    queued = await caller.expect("queued")
    await caller.send(type="join", authority="demo")
    assert (await caller.expect("error"))["code"] == "out_of_turn"
    await caller.send(
        type="sdp", call_id=queued["call_id"], description={"type": "offer", "sdp": SDP}
    )
    assert (await caller.expect("error"))["code"] == "out_of_turn"
    await caller.send(type="sdp", call_id=queued["call_id"], description={"type": "x"})
    assert (await caller.expect("error"))["code"] == "invalid_field"
    await caller.send(type="ice", call_id=queued["call_id"], candidate={"candidate": 3})
    assert (await caller.expect("error"))["code"] == "invalid_field"
    await caller.send(type="hangup", call_id=queued["call_id"])
    assert (await caller.expect("error"))["code"] == "out_of_turn"
    await caller.ws.send_bytes(b"\x00\x01")
    assert (await caller.expect("error"))["code"] == "too_big"
    await caller.send(type="ping")
    await caller.expect("pong")
    assert (
        await pool.fetchval("SELECT state FROM calls WHERE id = $1::uuid", queued["call_id"])
        == "queued"
    )

    _, ann = await interpreter_console(client, pool, open_console, "ann@example.org")
    await ann.send(type="accept", call_id=queued["call_id"])
    assert (await ann.expect("error"))["code"] == "out_of_turn"
    await ann.send(type="set_availability", available="yes")
    assert (await ann.expect("error"))["code"] == "invalid_field"
    await ann.send(type="decline", call_id="00000000-0000-0000-0000-000000000000")
    assert (await ann.expect("error"))["code"] == "not_found"
    await ann.send(type="join", authority="demo")
    assert (await ann.expect("error"))["code"] == "unknown_type"
    await ann.send(type="set_availability", available=True)
    offer = await ann.expect("offer")
    await ann.send(type="set_availability", available=False)
    assert (await ann.expect("error"))["code"] == "out_of_turn"
    await ann.send(type="sdp", call_id=offer["call_id"], description={"type": "offer", "sdp": SDP})
    assert (await ann.expect("error"))["code"] == "out_of_turn"
    # None of it changed the call.
    assert (
        await pool.fetchval("SELECT state FROM calls WHERE id = $1::uuid", queued["call_id"])
        == "offered"
    )


async def test_oversized_message_closes_socket(open_caller: Opener) -> None:
    caller = await open_caller()
    await caller.send_raw('{"type": "ping", "pad": "' + "x" * 70_000 + '"}')
    msg = await caller.ws.receive(timeout=5)
    assert msg.type.name == "CLOSE"
    assert caller.ws.close_code == 1009
    assert msg.extra == "Message too big: send at most 64 KiB."


async def test_console_needs_interpreter_session(client: TestClient[Any, Any]) -> None:
    response = await client.get(
        "/ws/console", headers={"Upgrade": "websocket", "Connection": "Upgrade"}
    )
    assert response.status == 401
    assert "Sign in" in await response.text()
    finance = await sign_in(client, "finance@demo.example", "finance-demo")
    response = await client.get("/ws/console", headers={"Cookie": f"signvideo_session={finance}"})
    assert response.status == 403


async def test_joins_are_limited_per_address_and_per_authority(
    config: Config,
    seeded: None,
    aiohttp_client: Callable[..., Awaitable[TestClient[Any, Any]]],
) -> None:
    """Three joins a minute from one address here; behind a trusted proxy each
    caller's own address counts, and an address a client makes up does not."""
    limited = dataclasses.replace(
        config,
        joins_per_address=3,
        joins_per_authority=5,
        trusted_proxies=frozenset({"127.0.0.1"}),
    )
    client = await aiohttp_client(create_app(limited))

    async def join(address: str) -> dict[str, Any]:
        peer = Peer(await client.ws_connect("/ws/caller", headers={"X-Forwarded-For": address}))
        await peer.send(type="join", authority="demo")
        reply = await peer.receive()
        await peer.ws.close()
        return reply

    for _ in range(3):
        assert (await join("198.51.100.7"))["type"] == "queued"
    refused = await join("198.51.100.7")
    assert refused["code"] == "slow_down" and 0 < refused["retry_after"] <= 20
    assert "Please wait 20 seconds" in refused["message"]
    # Made-up addresses in front of the real one do not help.
    assert (await join("192.0.2.1, 198.51.100.7"))["code"] == "slow_down"
    # Others are not held up by that address, until the authority's own limit.
    assert (await join("198.51.100.8"))["type"] == "queued"
    assert (await join("198.51.100.9"))["type"] == "queued"
    busy = await join("198.51.100.10")
    assert busy["code"] == "slow_down" and "this queue" in busy["message"]


async def test_sockets_refuse_pages_of_other_sites(client: TestClient[Any, Any]) -> None:
    for path in ("/ws/caller", "/ws/console"):
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            await client.ws_connect(path, headers={"Origin": "https://evil.example"})
        assert refused.value.status == 403, path
    same = f"http://{client.host}:{client.port}"
    ws = await client.ws_connect("/ws/caller", headers={"Origin": same})
    await ws.close()


async def test_a_call_carries_its_department_from_caller_or_interpreter(
    client: TestClient[Any, Any],
    pool: asyncpg.Pool,
    open_caller: Opener,
    open_console: ConsoleOpener,
) -> None:
    caller = await open_caller()
    await caller.send(type="join", authority="demo", cost_centre="NOPE")
    refused = await caller.expect("error")
    assert "not one of this authority's departments" in refused["message"]
    assert await pool.fetchval("SELECT count(*) FROM calls") == 0

    await caller.send(type="join", authority="demo", cost_centre="HOU")
    queued = await caller.expect("queued")
    call_id = queued["call_id"]
    assert await pool.fetchval("SELECT cost_centre FROM calls WHERE id = $1::uuid", call_id) == (
        "HOU"
    )
    ann_id, ann = await interpreter_console(client, pool, open_console, "ann@example.org")
    await ann.send(type="set_availability", available=True)
    offer = await ann.expect("offer")
    # Not hers yet: an offer is not a call.
    await ann.send(type="set_cost_centre", call_id=call_id, cost_centre="REV")
    assert "your own call" in (await ann.expect("error"))["message"]
    await ann.send(type="accept", call_id=offer["call_id"])
    connected = await ann.expect("connected")
    assert connected["peer"]["cost_centre"] == "HOU"
    # Offered by name: Adult social care, Council tax and benefits, Housing.
    assert [c["code"] for c in connected["peer"]["cost_centres"]] == ["ASC", "REV", "HOU"]
    await ann.send(type="hangup", call_id=call_id)
    await ann.expect("ended")
    # In wrap-up the interpreter corrects it; the export shows the change.
    await ann.send(type="set_cost_centre", call_id=call_id, cost_centre="REV")
    saved = await ann.expect("cost_centre_saved")
    assert saved["cost_centre"] == "REV"
    assert await pool.fetchval("SELECT cost_centre FROM calls WHERE id = $1::uuid", call_id) == (
        "REV"
    )
    await ann.send(type="set_cost_centre", call_id=call_id, cost_centre="ELSEWHERE")
    assert "one the authority offers" in (await ann.expect("error"))["message"]
    # Another interpreter cannot.
    _, bob = await interpreter_console(client, pool, open_console, "bob@example.org")
    await bob.send(type="set_cost_centre", call_id=call_id, cost_centre="ASC")
    assert "your own call" in (await bob.expect("error"))["message"]
    assert await pool.fetchval("SELECT interpreter_id FROM calls") == ann_id


async def test_quality_samples_are_checked_and_kept(
    client: TestClient[Any, Any],
    pool: asyncpg.Pool,
    open_caller: Opener,
    open_console: ConsoleOpener,
) -> None:
    caller = await open_caller()
    await caller.send(type="join", authority="demo")
    call_id = (await caller.expect("queued"))["call_id"]
    good = {"fps": 29.5, "width": 640, "height": 480, "rtt_ms": 40, "loss_percent": 0.5,
            "warning": None}  # fmt: skip
    await caller.send(type="quality", call_id=call_id, samples=[good])
    assert (await caller.expect("error"))["code"] == "out_of_turn"  # not connected yet
    _, ann = await interpreter_console(client, pool, open_console, "ann@example.org")
    await ann.send(type="set_availability", available=True)
    await ann.expect("offer")
    await ann.send(type="accept", call_id=call_id)
    await ann.expect("connected")
    for samples, says in (
        ([], "list of 1 to 30"),
        ([good] * 31, "list of 1 to 30"),
        (["fast"], "must be an object"),
        ([{**good, "fps": -1}], '"fps" in a sample must be a number from 0 to 240'),
        ([{**good, "width": 640.5}], '"width" in a sample must be a whole number'),
        ([{**good, "rtt_ms": True}], '"rtt_ms"'),
        ([{**good, "warning": "dreadful"}], '"warning" in a sample'),
    ):
        await caller.send(type="quality", call_id=call_id, samples=samples)
        assert says in (await caller.expect("error"))["message"]
    await caller.send(type="quality", call_id=call_id, samples=[good, {**good, "fps": 12,
                      "warning": "low_frame_rate"}])  # fmt: skip
    await ann.send(type="quality", call_id=call_id, samples=[{"fps": None}])
    await wait_for_value(pool, "SELECT true WHERE (SELECT count(*) FROM call_quality) = 3")
    rows = await pool.fetch(
        "SELECT side, frames_per_second, warning FROM call_quality ORDER BY side, id"
    )
    assert [tuple(r) for r in rows] == [
        ("caller", 29.5, None),
        ("caller", 12.0, "low_frame_rate"),
        ("interpreter", None, None),
    ]
    # Another interpreter's console cannot write to this call's record.
    _, bob = await interpreter_console(client, pool, open_console, "bob@example.org")
    await bob.send(type="quality", call_id=call_id, samples=[good])
    assert (await bob.expect("error"))["code"] == "out_of_turn"


async def test_a_closed_sockets_objects_are_freed_without_the_garbage_collector(
    client: TestClient[Any, Any], open_caller: Opener
) -> None:
    """A connection's handlers refer to it; once its socket closes it lets go
    of them, so that nothing of it is left in a reference cycle for the
    collector to find (with a thousand sockets open, a full collection
    stopped the server for 100 ms: bench/README.md)."""
    import gc

    from signvideo.signaling import Connection

    def connections() -> int:
        return sum(isinstance(o, Connection) for o in gc.get_objects())

    gc.collect()
    gc.disable()
    try:
        caller = await open_caller()
        await caller.send(type="join", authority="demo")
        await caller.expect("queued")
        assert connections() == 1
        await caller.ws.close()
        # The server's handler finishes, and its task lets go of it.
        for _ in range(500):
            if not connections():
                break
            await asyncio.sleep(0.01)
        assert connections() == 0, "a closed socket's objects are kept by a reference cycle"
    finally:
        gc.enable()
