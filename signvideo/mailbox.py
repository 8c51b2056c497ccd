"""Delivering messages to the WebSockets this process holds.

A message for a caller or an interpreter is a mailbox row written in the
transaction that caused it (routing.post). PostgreSQL notifies every server
process of the row id and its recipient; the process holding that recipient's
socket deletes the row and sends it. A socket that connects is sent what
already waits for it. A slow poll, by the clock, catches anything whose
notification was missed (a dropped LISTEN connection). Queue changes are
notified on a second channel; each process then recomputes the places of its
own waiting callers, at most once per second however many changes arrive.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any

import asyncpg
from aiohttp import web

from signvideo import admission, routing
from signvideo.db import Q

log = logging.getLogger("signvideo.mailbox")

MAIL_CHANNEL = "signvideo_mail"
QUEUE_CHANNEL = "signvideo_queue"
AUTHORITIES_CHANNEL = "signvideo_authorities"
# A console closed because its person was signed out (protocol.md).
SIGNED_OUT_CLOSE = 4001
MAILBOX_KEEP_SECONDS = 300
INTERPRETER_PREFIX = routing.interpreter_key(0).removesuffix("0")
# Not mail ids (those start at 1): what the delivery task is to look for.
SWEEP = -1
ARRIVALS = 0


@dataclass
class WaitingCaller:
    ws: web.WebSocketResponse
    last_position: int | None = None
    last_wait: int | None = None
    # The language of their queue: a change in another's cannot move them.
    language: str | None = None


@dataclass
class Hub:
    pool: asyncpg.Pool
    dsn: str
    poll_interval: float = 2.0
    wait_ceiling: float = 300.0
    position_interval: float = 1.0
    position_refresh: float = 5.0
    sockets: dict[str, web.WebSocketResponse] = field(default_factory=dict)
    # The interpreters among the recipients of `sockets`, for matching rounds.
    interpreters: set[int] = field(default_factory=set)
    waiting: dict[uuid.UUID, WaitingCaller] = field(default_factory=dict)
    # Mail ids told by notifications, SWEEP (look for every socket's mail)
    # and ARRIVALS (look for the mail of the sockets in `_arrived`).
    _mail_ids: asyncio.Queue[int] = field(default_factory=asyncio.Queue)
    _arrived: set[str] = field(default_factory=set)
    _queue_changed: asyncio.Event = field(default_factory=asyncio.Event)
    # The languages whose queues changed since the last round ("" for all).
    _changed_languages: set[str] = field(default_factory=set)
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)
    _sending: asyncio.Lock = field(default_factory=asyncio.Lock)
    listening: asyncio.Event = field(default_factory=asyncio.Event)
    # What joins check about authorities, forgotten when they change.
    authorities: routing.AuthorityCache = field(init=False)

    def __post_init__(self) -> None:
        self.authorities = routing.AuthorityCache(self.pool)

    # Sockets -----------------------------------------------------------------

    def register(self, recipient: str, ws: web.WebSocketResponse) -> web.WebSocketResponse | None:
        """Hold ``ws`` for ``recipient``; returns the socket it replaces, if any."""
        previous = self.sockets.get(recipient)
        self.sockets[recipient] = ws
        if recipient.startswith(INTERPRETER_PREFIX):
            self.interpreters.add(int(recipient.removeprefix(INTERPRETER_PREFIX)))
        # Anything posted before the socket was here is fetched at once: its
        # own, not everyone's (a look for every socket's mail at every
        # connection would cost more the more sockets this process holds).
        self._arrived.add(recipient)
        self._mail_ids.put_nowait(ARRIVALS)
        return previous if previous is not ws else None

    def unregister(self, recipient: str, ws: web.WebSocketResponse) -> bool:
        """Forget ``ws``; False if another socket has since taken the recipient over."""
        if self.sockets.get(recipient) is ws:
            del self.sockets[recipient]
            if recipient.startswith(INTERPRETER_PREFIX):
                self.interpreters.discard(int(recipient.removeprefix(INTERPRETER_PREFIX)))
            return True
        return False

    def watch_position(
        self,
        call_id: uuid.UUID,
        ws: web.WebSocketResponse,
        position: int,
        wait: int | None,
        language: str | None = None,
    ) -> None:
        self.waiting[call_id] = WaitingCaller(ws, position, wait, language)

    def unwatch_position(self, call_id: uuid.UUID) -> None:
        self.waiting.pop(call_id, None)

    # Background work ---------------------------------------------------------

    def start(self) -> None:
        self._tasks = [
            asyncio.create_task(self._listen(), name="mailbox-listen"),
            asyncio.create_task(self._deliver(), name="mailbox-deliver"),
            asyncio.create_task(self._positions(), name="queue-positions"),
        ]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def _on_mail(self, _con: object, _pid: int, _channel: str, payload: str) -> None:
        recipient, _, raw_id = payload.rpartition(" ")
        if recipient in self.sockets:
            self._mail_ids.put_nowait(int(raw_id))

    def _on_queue(self, _con: object, _pid: int, _channel: str, payload: str) -> None:
        self._queue_may_have_changed(payload)

    def _queue_may_have_changed(self, language: str = "") -> None:
        """The queue of ``language`` (every queue, for "") may have changed."""
        self._changed_languages.add(language)
        self._queue_changed.set()

    def _on_authorities(self, _con: object, _pid: int, _channel: str, _payload: str) -> None:
        self.authorities.forget()

    async def _listen(self) -> None:
        """Keep one LISTEN connection open, reconnecting after a failure."""
        while True:
            con: asyncpg.Connection | None = None
            try:
                con = await asyncpg.connect(self.dsn)
                await con.add_listener(MAIL_CHANNEL, self._on_mail)
                await con.add_listener(QUEUE_CHANNEL, self._on_queue)
                await con.add_listener(AUTHORITIES_CHANNEL, self._on_authorities)
                self.listening.set()
                # Changes told while we were not listening are picked up now.
                self.authorities.forget()
                self._mail_ids.put_nowait(SWEEP)
                self._queue_may_have_changed()
                lost = asyncio.Event()
                con.add_termination_listener(lambda _c, event=lost: event.set())
                await lost.wait()
                log.warning("LISTEN connection lost; reconnecting")
            except (OSError, asyncpg.PostgresError) as err:
                log.warning("LISTEN connection failed (%s); retrying in 1 s", err)
            finally:
                self.listening.clear()
                self.authorities.forget(keep=False)  # changes would go unheard
                if con is not None and not con.is_closed():
                    await con.close()
            await asyncio.sleep(1)

    async def _deliver(self) -> None:
        """Send mail as it is told, and look for every socket's mail once
        every `poll_interval` however busy: the poll is due by the clock, not
        after a quiet spell, which a steady stream of notifications and new
        sockets would never leave."""
        loop = asyncio.get_running_loop()
        next_sweep = loop.time() + self.poll_interval
        while True:
            ids: set[int] = set()
            # asyncio.timeout_at, not wait_for: on Python 3.11 wait_for can swallow
            # a cancellation that comes as the item arrives, and the hub never stops.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout_at(next_sweep):
                    ids.add(await self._mail_ids.get())
            while not self._mail_ids.empty():
                ids.add(self._mail_ids.get_nowait())
            sweep = SWEEP in ids or loop.time() >= next_sweep
            if sweep:
                next_sweep = loop.time() + self.poll_interval
            ids -= {SWEEP, ARRIVALS}
            arrived, self._arrived = self._arrived, set()
            try:
                await self._deliver_batch(sorted(ids), sweep, arrived)
            except (OSError, asyncpg.PostgresError) as err:
                log.warning("mailbox delivery failed (%s); will retry", err)
                await asyncio.sleep(0.5)
                self._mail_ids.put_nowait(SWEEP)

    def local_interpreters(self) -> list[int]:
        """The interpreters whose consoles this process holds: a matching
        round hands back their messages for send_taken instead of storing them."""
        return list(self.interpreters)

    async def send_taken(self, mail: list[dict[str, Any]]) -> None:
        """Send, straight after the commit that took them from the mailbox (or
        never stored them), messages ({recipient, payload}, in order) for
        sockets this process holds. After whatever this process is sending
        already, so that messages to one socket keep their order. A message
        whose socket has gone meanwhile is stored again, not lost."""
        if not mail:
            return
        async with self._sending:
            for message in mail:
                recipient, payload = message["recipient"], message["payload"]
                ws = self.sockets.get(recipient)
                if ws is not None and not ws.closed:
                    await self._send(ws, payload)
                    continue
                # The console went (perhaps to another process) after the
                # round began: back to the mailbox, for wherever it is now.
                try:
                    await self.pool.execute(Q["mailbox_put"], recipient, payload)
                except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as err:
                    log.warning("could not keep a message for %s (%s)", recipient, err)

    async def _take_and_send(self, *takes: tuple[str, list[Any]]) -> None:
        """Delete the rows each (query, argument) selects and send them, in id
        order. The delete claims a row for one sender only; one sender at a
        time in this process, so that messages to one socket keep their order
        whichever way they are fetched."""
        if not takes:
            return
        async with self._sending:
            rows: list[asyncpg.Record] = []
            for query, arg in takes:
                rows.extend(await self.pool.fetch(query, arg))
            for row in sorted(rows, key=lambda r: r["id"]):
                await self._send_to(row["recipient"], row["payload"])

    async def _send_to(self, recipient: str, payload: dict[str, Any]) -> None:
        ws = self.sockets.get(recipient)
        if ws is None or ws.closed:
            # Its owner reconnects and is told where things stand.
            log.info("dropping message for %s: its socket has gone", recipient)
            return
        await self._send(ws, payload)

    async def _deliver_batch(self, ids: list[int], sweep: bool, arrived: Collection[str]) -> None:
        """Send the mail `ids` names; with `sweep`, every socket's mail too,
        and the mailbox's expired rows go; otherwise the mail of the sockets
        `arrived` since the last batch."""
        takes: list[tuple[str, list[Any]]] = []
        if ids:
            takes.append((Q["mailbox_take_ids"], ids))
        # Look first without the sending lock: usually nothing is waiting, and
        # the sends straight after commits need not queue behind the look.
        looking = list(self.sockets) if sweep else [r for r in arrived if r in self.sockets]
        if looking and await self.pool.fetchval(Q["mailbox_has_mail"], looking):
            takes.append((Q["mailbox_take_recipients"], looking))
        await self._take_and_send(*takes)
        if sweep:
            await self.pool.execute(Q["mailbox_expire"], MAILBOX_KEEP_SECONDS)

    @staticmethod
    async def _send(ws: web.WebSocketResponse, payload: dict[str, Any]) -> None:
        try:
            await ws.send_json(payload)
            if payload.get("type") == "signed_out":
                # Their sessions are gone: so is this socket, whichever process holds it.
                await ws.close(code=SIGNED_OUT_CLOSE, message=str(payload["message"]).encode())
        except (ConnectionError, RuntimeError) as err:
            log.info("could not send %s: %s", payload.get("type"), err)

    async def _positions(self) -> None:
        """Send each waiting caller their place and expected wait when either changes.

        Runs when the queue changes, at most once per ``position_interval`` (so
        a caller gets at most one update a second however busy the queue), and
        every ``position_refresh`` seconds anyway: places shift as callers pass
        their deadlines and as interpreters come and go, with no event.
        """
        loop = asyncio.get_running_loop()
        last_run = 0.0
        while True:
            try:
                async with asyncio.timeout(self.position_refresh):
                    await self._queue_changed.wait()
            except TimeoutError:
                self._changed_languages.add("")  # the refresh: everyone
            pause = last_run + self.position_interval - loop.time()
            if pause > 0:
                await asyncio.sleep(pause)
            self._queue_changed.clear()
            languages, self._changed_languages = self._changed_languages, set()
            last_run = loop.time()
            if not self.waiting:
                continue
            try:
                await self._send_positions(None if "" in languages else languages)
            except (OSError, asyncpg.PostgresError) as err:
                log.warning("could not read queue positions (%s)", err)
                self._queue_may_have_changed()

    async def _send_positions(self, languages: set[str] | None = None) -> None:
        """``languages``: only the callers in those languages' queues (None: all)."""
        # Only the callers asked about: one who starts waiting while the
        # query runs is not in its answer, and is not to be dropped for that.
        asked = {
            call_id: caller
            for call_id, caller in self.waiting.items()
            if languages is None or caller.language is None or caller.language in languages
        }
        if not asked:
            return
        now = await routing.positions(self.pool, list(asked), self.wait_ceiling)
        staff = await admission.staffing(self.pool)
        for call_id, caller in asked.items():
            if self.waiting.get(call_id) is not caller:
                continue  # stopped waiting, or came back on another socket, meanwhile
            found = now.get(call_id)
            if found is None:
                # Answered or ended: its own messages say so.
                del self.waiting[call_id]
                continue
            position = found.position
            wait = staff.expected_wait(found.language, position, found.offered)
            if (position, wait) != (caller.last_position, caller.last_wait):
                caller.last_position, caller.last_wait = position, wait
                await self._send(
                    caller.ws,
                    {
                        "type": "position",
                        "call_id": str(call_id),
                        "position": position,
                        "expected_wait_seconds": wait,
                    },
                )
