"""Golden tests of rating: each case's figures were worked out by hand from
the rule (billable time from answer to end, rounded up to whole increments,
priced pro rata per minute with part pennies rounded up, at least the
minimum; the card and band in force when the call was answered price all of
it), and are written down here rather than computed."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace
from typing import NamedTuple
from zoneinfo import ZoneInfo

import pytest

from signvideo.billing import (
    CallTimes,
    RateCard,
    Rating,
    card_in_force,
    charge,
    rate_call,
    whole_seconds,
)

LONDON = ZoneInfo("Europe/London")
UTC = dt.UTC

# 150p a minute in hours (Monday to Friday 09:00-17:00), 180p out of hours,
# 225p on bank holidays; whole minutes; no minimum; 20 % VAT.
STANDARD = RateCard(
    id=1,
    effective_from=dt.date(2026, 1, 1),
    in_hours_pence_per_minute=150,
    out_of_hours_pence_per_minute=180,
    bank_holiday_pence_per_minute=225,
    billing_increment_seconds=60,
)
PER_SECOND = replace(STANDARD, id=2, billing_increment_seconds=1)
PER_FIFTEEN_MINUTES = replace(
    STANDARD, id=3, billing_increment_seconds=900, in_hours_pence_per_minute=100
)
WITH_MINIMUM = replace(STANDARD, id=4, minimum_charge_pence=500)
# From 1 April 2026 the in-hours rate goes up to 160p.
APRIL_RISE = replace(
    STANDARD, id=5, effective_from=dt.date(2026, 4, 1), in_hours_pence_per_minute=160
)


def utc(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).replace(tzinfo=UTC)


def answered(
    start: str, end: str, reason: str = "caller_hung_up", lost: str | None = None
) -> CallTimes:
    """A call answered at `start` and ended at `end` (both UTC), queued a
    minute before it was answered; `lost`: when its connection was lost."""
    return CallTimes(
        utc(start) - dt.timedelta(minutes=1),
        utc(start),
        utc(end),
        reason,
        None if lost is None else utc(lost),
    )


class Golden(NamedTuple):
    name: str
    call: CallTimes
    cards: tuple[RateCard, ...]
    nation: str
    # What the ledger line must say.
    band: str | None
    rate: int | None
    billable: int
    charged: int
    pence: int
    zero: str | None
    month: str


G = Golden
ENG, SCT, NIR = "england-and-wales", "scotland", "northern-ireland"
# Monday 30 November 2026 is in GMT (London = UTC).
CASES = [
    # Rounding at each increment.
    G("1 s, whole minutes", answered("2026-11-30 10:00:00", "2026-11-30 10:00:01"),
      (STANDARD,), ENG, "in_hours", 150, 1, 60, 150, None, "2026-11"),
    G("60 s, whole minutes", answered("2026-11-30 10:00:00", "2026-11-30 10:01:00"),
      (STANDARD,), ENG, "in_hours", 150, 60, 60, 150, None, "2026-11"),
    G("61 s, whole minutes: two", answered("2026-11-30 10:00:00", "2026-11-30 10:01:01"),
      (STANDARD,), ENG, "in_hours", 150, 61, 120, 300, None, "2026-11"),
    G("60.2 s counts as 61", answered("2026-11-30 10:00:00", "2026-11-30 10:01:00.200000"),
      (STANDARD,), ENG, "in_hours", 150, 61, 120, 300, None, "2026-11"),
    G("61 s per second: 152.5p up to 153p",
      answered("2026-11-30 10:00:00", "2026-11-30 10:01:01"),
      (PER_SECOND,), ENG, "in_hours", 150, 61, 61, 153, None, "2026-11"),
    G("1 s per second: 2.5p up to 3p", answered("2026-11-30 10:00:00", "2026-11-30 10:00:01"),
      (PER_SECOND,), ENG, "in_hours", 150, 1, 1, 3, None, "2026-11"),
    G("1 s in 15-minute steps", answered("2026-11-30 10:00:00", "2026-11-30 10:00:01"),
      (PER_FIFTEEN_MINUTES,), ENG, "in_hours", 100, 1, 900, 1500, None, "2026-11"),
    G("exactly 15 minutes", answered("2026-11-30 10:00:00", "2026-11-30 10:15:00"),
      (PER_FIFTEEN_MINUTES,), ENG, "in_hours", 100, 900, 900, 1500, None, "2026-11"),
    G("15 minutes and 1 s: two steps", answered("2026-11-30 10:00:00", "2026-11-30 10:15:01"),
      (PER_FIFTEEN_MINUTES,), ENG, "in_hours", 100, 901, 1800, 3000, None, "2026-11"),
    # Minimum charges.
    G("10 s under a 500p minimum", answered("2026-11-30 10:00:00", "2026-11-30 10:00:10"),
      (WITH_MINIMUM,), ENG, "in_hours", 150, 10, 60, 500, None, "2026-11"),
    G("4 minutes beat the minimum", answered("2026-11-30 10:00:00", "2026-11-30 10:04:00"),
      (WITH_MINIMUM,), ENG, "in_hours", 150, 240, 240, 600, None, "2026-11"),
    # Bands: the moment of answer decides, to the second.
    G("08:59:59 Monday is out of hours", answered("2026-11-30 08:59:59", "2026-11-30 09:00:59"),
      (STANDARD,), ENG, "out_of_hours", 180, 60, 60, 180, None, "2026-11"),
    G("09:00:00 Monday is in hours", answered("2026-11-30 09:00:00", "2026-11-30 09:01:00"),
      (STANDARD,), ENG, "in_hours", 150, 60, 60, 150, None, "2026-11"),
    G("16:59:59 answered, ends after 17:00: in hours throughout",
      answered("2026-11-27 16:59:59", "2026-11-27 17:29:59"),
      (STANDARD,), ENG, "in_hours", 150, 1800, 1800, 4500, None, "2026-11"),
    G("17:00:00 is out of hours", answered("2026-11-30 17:00:00", "2026-11-30 17:01:00"),
      (STANDARD,), ENG, "out_of_hours", 180, 60, 60, 180, None, "2026-11"),
    G("Saturday noon is out of hours", answered("2026-11-28 12:00:00", "2026-11-28 12:01:00"),
      (STANDARD,), ENG, "out_of_hours", 180, 60, 60, 180, None, "2026-11"),
    # Bank holidays of each nation.
    G("Christmas Day, England", answered("2026-12-25 10:00:00", "2026-12-25 10:01:00"),
      (STANDARD,), ENG, "bank_holiday", 225, 60, 60, 225, None, "2026-12"),
    G("St Andrew's Day (Monday 30 Nov) in Scotland",
      answered("2026-11-30 10:00:00", "2026-11-30 10:01:00"),
      (STANDARD,), SCT, "bank_holiday", 225, 60, 60, 225, None, "2026-11"),
    G("St Patrick's Day, Northern Ireland",
      answered("2026-03-17 10:00:00", "2026-03-17 10:01:00"),
      (STANDARD,), NIR, "bank_holiday", 225, 60, 60, 225, None, "2026-03"),
    G("St Patrick's Day is an ordinary Tuesday in England",
      answered("2026-03-17 10:00:00", "2026-03-17 10:01:00"),
      (STANDARD,), ENG, "in_hours", 150, 60, 60, 150, None, "2026-03"),
    G("Scotland's summer bank holiday, 3 August (BST: 09:00 UTC is 10:00)",
      answered("2026-08-03 09:00:00", "2026-08-03 09:01:00"),
      (STANDARD,), SCT, "bank_holiday", 225, 60, 60, 225, None, "2026-08"),
    G("BST: 08:30 UTC is 09:30 local, in hours",
      answered("2026-08-03 08:30:00", "2026-08-03 08:31:00"),
      (STANDARD,), ENG, "in_hours", 150, 60, 60, 150, None, "2026-08"),
    # Clock changes: real elapsed time is charged, not the wall clock's.
    G("spring forward: 00:30 GMT to 02:30 BST is one hour",
      answered("2026-03-29 00:30:00", "2026-03-29 01:30:00"),
      (STANDARD,), ENG, "out_of_hours", 180, 3600, 3600, 10800, None, "2026-03"),
    G("fall back: 01:30 BST to 01:30 GMT is one hour, not none",
      answered("2026-10-25 00:30:00", "2026-10-25 01:30:00"),
      (STANDARD,), ENG, "out_of_hours", 180, 3600, 3600, 10800, None, "2026-10"),
    # Midnight and month ends: the answer's local date decides the month.
    G("across midnight Monday to Tuesday", answered("2026-11-30 23:50:00", "2026-12-01 00:10:00"),
      (STANDARD,), ENG, "out_of_hours", 180, 1200, 1200, 3600, None, "2026-11"),
    G("answered 23:30 UTC on 31 May is 00:30 BST on 1 June",
      answered("2026-05-31 23:30:00", "2026-05-31 23:31:00"),
      (STANDARD,), ENG, "out_of_hours", 180, 60, 60, 180, None, "2026-06"),
    # Rate-card boundaries, in local time.
    G("23:59:59 BST on 31 March: the old card",
      answered("2026-03-31 22:59:59", "2026-03-31 23:00:59"),
      (STANDARD, APRIL_RISE), ENG, "out_of_hours", 180, 60, 60, 180, None, "2026-03"),
    G("10:00 BST on 1 April: the new card, for the whole call",
      answered("2026-04-01 09:00:00", "2026-04-01 09:10:00"),
      (STANDARD, APRIL_RISE), ENG, "in_hours", 160, 600, 600, 1600, None, "2026-04"),
    G("16:55 on 31 March running into April: the old card throughout",
      answered("2026-03-31 15:55:00", "2026-04-01 08:05:00"),
      (STANDARD, APRIL_RISE), ENG, "in_hours", 150, 58200, 58200, 145500, None, "2026-03"),
    G("before the first card: not charged, and says why",
      answered("2025-12-31 10:00:00", "2025-12-31 10:01:00"),
      (STANDARD,), ENG, None, None, 60, 0, 0, "no_rate_card", "2025-12"),
    # Technical failures in the first seconds are not charged.
    G("connection lost after 8 s", answered("2026-11-30 10:00:00", "2026-11-30 10:00:08",
                                             "caller_disconnected"),
      (STANDARD,), ENG, "in_hours", 150, 8, 0, 0, "technical_failure", "2026-11"),
    G("connection lost after exactly 10 s", answered("2026-11-30 10:00:00", "2026-11-30 10:00:10",
                                                     "interpreter_disconnected"),
      (STANDARD,), ENG, "in_hours", 150, 10, 0, 0, "technical_failure", "2026-11"),
    G("connection lost after 11 s is charged", answered("2026-11-30 10:00:00",
                                                        "2026-11-30 10:00:11",
                                                        "caller_disconnected"),
      (STANDARD,), ENG, "in_hours", 150, 11, 60, 150, None, "2026-11"),
    # A lost connection ends the call when it was lost: the 60 s wait for the
    # caller to come back is not charged.
    G("caller lost after 3 s, ended 60 s later", answered("2026-11-30 10:00:00",
                                                          "2026-11-30 10:01:03",
                                                          "caller_disconnected",
                                                          "2026-11-30 10:00:03"),
      (STANDARD,), ENG, "in_hours", 150, 3, 0, 0, "technical_failure", "2026-11"),
    G("interpreter lost after 130 s, ended 15 s later",
      answered("2026-11-30 10:00:00", "2026-11-30 10:02:25", "interpreter_disconnected",
               "2026-11-30 10:02:10"),
      (STANDARD,), ENG, "in_hours", 150, 130, 180, 450, None, "2026-11"),
    G("lost before the answer: nothing billable",
      answered("2026-11-30 10:00:00", "2026-11-30 10:01:00", "caller_disconnected",
               "2026-11-30 09:59:50"),
      (STANDARD,), ENG, "in_hours", 150, 0, 0, 0, "technical_failure", "2026-11"),
    G("a hang-up is charged to the end even after a drop and return",
      answered("2026-11-30 10:00:00", "2026-11-30 10:01:30", "caller_hung_up",
               "2026-11-30 10:00:10"),
      (STANDARD,), ENG, "in_hours", 150, 90, 120, 300, None, "2026-11"),
    G("hanging up after 5 s is charged", answered("2026-11-30 10:00:00", "2026-11-30 10:00:05"),
      (STANDARD,), ENG, "in_hours", 150, 5, 60, 150, None, "2026-11"),
]  # fmt: skip


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_golden(case: Golden) -> None:
    rating = rate_call(case.call, case.cards, LONDON, case.nation)
    assert (
        rating.band,
        rating.rate_pence_per_minute,
        rating.billable_seconds,
        rating.charged_seconds,
        rating.net_pence,
        rating.zero_rated_reason,
        rating.billing_month.isoformat()[:7],
    ) == (
        case.band,
        case.rate,
        case.billable,
        case.charged,
        case.pence,
        case.zero,
        case.month,
    )
    if case.zero is None:
        assert rating.service_at == case.call.answered_at
        assert rating.vat_basis_points == 2000


def test_a_call_never_answered_is_rated_at_nothing_in_the_month_it_joined() -> None:
    # Joined 23:45 UTC on 31 October 2026: GMT again, so still October.
    call = CallTimes(utc("2026-10-31 23:45:00"), None, utc("2026-11-01 00:10:00"), "caller_left")
    rating = rate_call(call, (STANDARD,), LONDON, ENG)
    assert rating == Rating(
        None, None, None, None, None, 0, 0, 0, 0, "not_answered",
        call.queued_at, dt.date(2026, 10, 1),
    )  # fmt: skip


def test_card_in_force_takes_the_latest_started() -> None:
    cards = (STANDARD, APRIL_RISE)
    assert card_in_force(cards, dt.date(2025, 12, 31)) is None
    assert card_in_force(cards, dt.date(2026, 1, 1)) is STANDARD
    assert card_in_force(cards, dt.date(2026, 3, 31)) is STANDARD
    assert card_in_force(cards, dt.date(2026, 4, 1)) is APRIL_RISE


def test_whole_seconds_and_charge_refuse_nonsense() -> None:
    start = utc("2026-11-30 10:00:00")
    assert whole_seconds(start, start) == 0
    assert whole_seconds(start, start - dt.timedelta(seconds=5)) == 0
    assert charge(0, 150, 60, 500) == (0, 0)
    with pytest.raises(ValueError, match="negative"):
        charge(-1, 150, 60, 0)
