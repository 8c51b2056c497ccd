"""Rating: the price of a call from its event log and its authority's rate
cards, written once to the append-only ledger."""

from __future__ import annotations

import asyncio
import bisect
import datetime as dt
import itertools
import logging
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import asyncpg

from signvideo import hours
from signvideo.db import Q

log = logging.getLogger(__name__)

TECHNICAL_END_REASONS = frozenset(
    {"caller_disconnected", "interpreter_disconnected", "media_failed", "server_lost"}
)
"""Ends that mean the connection failed rather than someone hanging up: a
call ended so within the card's grace seconds of its answer is not charged."""

BANDS = ("in_hours", "out_of_hours", "bank_holiday")


@dataclass(frozen=True, slots=True)
class RateCard:
    """An authority's prices from one local date on (table rate_cards)."""

    id: int | None
    effective_from: dt.date
    in_hours_pence_per_minute: int
    out_of_hours_pence_per_minute: int
    bank_holiday_pence_per_minute: int
    billing_increment_seconds: int
    minimum_charge_pence: int = 0
    monthly_standing_charge_pence: int = 0
    vat_basis_points: int = 2000
    in_hours_days: frozenset[int] = frozenset({1, 2, 3, 4, 5})
    in_hours_start: dt.time = dt.time(9)
    in_hours_end: dt.time = dt.time(17)
    technical_grace_seconds: int = 10

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> RateCard:
        return cls(
            id=row["id"],
            effective_from=row["effective_from"],
            in_hours_pence_per_minute=row["in_hours_pence_per_minute"],
            out_of_hours_pence_per_minute=row["out_of_hours_pence_per_minute"],
            bank_holiday_pence_per_minute=row["bank_holiday_pence_per_minute"],
            billing_increment_seconds=row["billing_increment_seconds"],
            minimum_charge_pence=row["minimum_charge_pence"],
            monthly_standing_charge_pence=row["monthly_standing_charge_pence"],
            vat_basis_points=row["vat_basis_points"],
            in_hours_days=frozenset(row["in_hours_days"]),
            in_hours_start=row["in_hours_start"],
            in_hours_end=row["in_hours_end"],
            technical_grace_seconds=row["technical_grace_seconds"],
        )

    def rate_for(self, band: str) -> int:
        if band == "in_hours":
            return self.in_hours_pence_per_minute
        if band == "out_of_hours":
            return self.out_of_hours_pence_per_minute
        return self.bank_holiday_pence_per_minute


@dataclass(frozen=True, slots=True)
class CallTimes:
    """What rating needs of a call, as its event log has it. ``lost_at``: for
    a call ended because a connection was lost and not regained in time, when
    it was lost."""

    queued_at: dt.datetime
    answered_at: dt.datetime | None
    ended_at: dt.datetime
    end_reason: str
    lost_at: dt.datetime | None = None

    @property
    def service_ended_at(self) -> dt.datetime:
        """When the call ended for the people in it: a lost connection ends
        it when it was lost (the wait for it to come back is not charged,
        nor counted as waiting), never before it was answered or joined."""
        if self.lost_at is None or self.end_reason not in TECHNICAL_END_REASONS:
            return self.ended_at
        return min(max(self.lost_at, self.answered_at or self.queued_at), self.ended_at)


@dataclass(frozen=True, slots=True)
class Rating:
    """A call's ledger line, worked out."""

    rate_card_id: int | None
    band: str | None
    rate_pence_per_minute: int | None
    billing_increment_seconds: int | None
    minimum_charge_pence: int | None
    billable_seconds: int
    charged_seconds: int
    net_pence: int
    vat_basis_points: int
    zero_rated_reason: str | None
    service_at: dt.datetime
    billing_month: dt.date


def whole_seconds(start: dt.datetime, end: dt.datetime) -> int:
    """Elapsed seconds from start to end, a part second counting as one
    (real time: an hour that the clocks repeat is charged once for each time)."""
    delta = end - start
    seconds = delta.days * 86400 + delta.seconds + (1 if delta.microseconds else 0)
    return max(seconds, 0)


def charge(
    billable_seconds: int, rate_pence_per_minute: int, increment: int, minimum: int
) -> tuple[int, int]:
    """(charged seconds, pence) for a call of ``billable_seconds``.

    Time is rounded up to whole billing increments, priced pro rata at the
    per-minute rate, any fraction of a penny rounded up; a call with any
    billable time costs at least the minimum charge.
    """
    if billable_seconds < 0:
        raise ValueError("billable seconds cannot be negative")
    if billable_seconds == 0:
        return 0, 0
    charged_seconds = -(-billable_seconds // increment) * increment
    pence = -(-(charged_seconds * rate_pence_per_minute) // 60)
    return charged_seconds, max(pence, minimum)


def card_in_force(cards: Sequence[RateCard], day: dt.date) -> RateCard | None:
    """The card in force on local date ``day``; ``cards`` sorted by date."""
    at = bisect.bisect_right(cards, day, key=lambda card: card.effective_from)
    return cards[at - 1] if at else None


def band_at(card: RateCard, local: dt.datetime, nation: str) -> str:
    if hours.bank_holiday(nation, local.date()):
        return "bank_holiday"
    if card.in_hours_start <= local.time() < card.in_hours_end and (
        local.isoweekday() in card.in_hours_days
    ):
        return "in_hours"
    return "out_of_hours"


def month_of(day: dt.date) -> dt.date:
    return day.replace(day=1)


def next_month(month: dt.date) -> dt.date:
    """The first day of the month after the one `month` is in."""
    return (month.replace(day=1) + dt.timedelta(days=32)).replace(day=1)


def rate_call(call: CallTimes, cards: Sequence[RateCard], zone: dt.tzinfo, nation: str) -> Rating:
    """Rate one ended call. The card in force on the local date it was
    answered, and the band at that moment, price the whole call; billable
    time runs from the answer to the end; the queue is not charged."""
    if call.answered_at is None:
        local_queued = call.queued_at.astimezone(zone)
        return Rating(
            None, None, None, None, None, 0, 0, 0, 0, "not_answered",
            call.queued_at, month_of(local_queued.date()),
        )  # fmt: skip
    local = call.answered_at.astimezone(zone)
    billing_month = month_of(local.date())
    billable = whole_seconds(call.answered_at, call.service_ended_at)
    card = card_in_force(cards, local.date())
    if card is None:
        return Rating(
            None, None, None, None, None, billable, 0, 0, 0, "no_rate_card",
            call.answered_at, billing_month,
        )  # fmt: skip
    band = band_at(card, local, nation)
    rate = card.rate_for(band)
    increment, minimum = card.billing_increment_seconds, card.minimum_charge_pence
    if call.end_reason in TECHNICAL_END_REASONS and billable <= card.technical_grace_seconds:
        charged_seconds, pence, zero = 0, 0, "technical_failure"
    else:
        (charged_seconds, pence), zero = charge(billable, rate, increment, minimum), None
    return Rating(
        card.id, band, rate, increment, minimum, billable, charged_seconds, pence,
        card.vat_basis_points, zero, call.answered_at, billing_month,
    )  # fmt: skip


async def rate_ended_call(con: asyncpg.Connection, call_id: uuid.UUID) -> bool:
    """Rate an ended call from its event log and write its ledger line, in
    the caller's transaction. False if it already had one: a call is rated
    once however often, or wherever, its end is processed."""
    facts = await con.fetchrow(Q["call_for_rating"], call_id)
    if facts is None or facts["ended_at"] is None:
        raise ValueError(f"call {call_id} has not ended")
    cards = [
        RateCard.from_row(row) for row in await con.fetch(Q["rate_cards_of"], facts["authority_id"])
    ]
    times = CallTimes(
        facts["queued_at"],
        facts["answered_at"],
        facts["ended_at"],
        facts["end_reason"],
        facts["lost_at"],
    )
    rating = rate_call(times, cards, hours.zone(facts["time_zone"]), facts["nation"])
    written = await con.fetchval(
        Q["insert_call_line"],
        facts["authority_id"],
        call_id,
        times.queued_at,
        times.service_ended_at,
        *line_values(rating),
    )
    return written is not None


def line_values(rating: Rating) -> tuple[Any, ...]:
    """A rating as the ledger insert's parameters $5 onwards."""
    return (
        rating.billing_month,
        rating.service_at,
        rating.rate_card_id,
        rating.band,
        rating.rate_pence_per_minute,
        rating.billing_increment_seconds,
        rating.minimum_charge_pence,
        rating.billable_seconds,
        rating.charged_seconds,
        rating.net_pence,
        rating.vat_basis_points,
        rating.zero_rated_reason,
    )


RATE_CATCH_UP_SECONDS = 60
SHORT_LOOK_BACK = 3600.0
LONG_LOOK_BACK = 35 * 86400.0


async def rate_unrated(
    pool: asyncpg.Pool, within_seconds: float = LONG_LOOK_BACK, limit: int = 1000
) -> int:
    """Rate calls ended within `within_seconds` that have no ledger line
    (their rating failed when they ended); returns how many were rated."""
    rated = 0
    for row in await pool.fetch(Q["unrated_calls"], limit, within_seconds):
        try:
            async with pool.acquire() as con, con.transaction():
                rated += await rate_ended_call(con, row["id"])
        except Exception:  # one call's failure must not stop the others
            log.exception("could not rate call %s; it stays unrated", row["id"])
    if rated:
        log.warning("rated %d calls whose rating had failed when they ended", rated)
    return rated


async def rate_forever(pool: asyncpg.Pool) -> None:
    """Every minute, the calls of the last hour (a cheap look at a few index
    entries); once an hour, those of the last 35 days."""
    for round_number in itertools.count(1):
        await asyncio.sleep(RATE_CATCH_UP_SECONDS)
        long_look = round_number % 60 == 0
        try:
            await rate_unrated(pool, LONG_LOOK_BACK if long_look else SHORT_LOOK_BACK)
        except (OSError, asyncpg.PostgresError) as err:
            log.warning("could not look for unrated calls (%s); will try again", err)
