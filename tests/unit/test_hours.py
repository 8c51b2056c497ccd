"""Opening hours across clock changes, bank holidays of each UK nation, and closures."""

from __future__ import annotations

import datetime as dt

import pytest

from signvideo.hours import (
    ALWAYS_OPEN,
    Closure,
    HoursError,
    Schedule,
    describe_opening,
    open_state,
    validate_weekly,
)

UTC = dt.UTC
LONDON = "Europe/London"


def utc(*args: int) -> dt.datetime:
    return dt.datetime(*args, tzinfo=UTC)


def test_weekday_hours_in_winter_and_summer_time() -> None:
    office = Schedule(LONDON)
    # Friday 27 March 2026, GMT: 09:00 local is 09:00 UTC.
    assert not open_state(office, utc(2026, 3, 27, 8, 30)).is_open
    assert open_state(office, utc(2026, 3, 27, 9, 0)).is_open
    assert open_state(office, utc(2026, 3, 27, 16, 59)).is_open
    assert not open_state(office, utc(2026, 3, 27, 17, 0)).is_open
    # Clocks go forward on Sunday 29 March; Monday 30 March 09:00 BST is 08:00 UTC.
    assert open_state(office, utc(2026, 3, 30, 8, 30)).is_open
    assert not open_state(office, utc(2026, 3, 30, 16, 0)).is_open
    # Clocks go back on Sunday 25 October; Monday 26 October is GMT again.
    assert not open_state(office, utc(2026, 10, 26, 8, 30)).is_open
    assert open_state(office, utc(2026, 10, 26, 16, 30)).is_open


def test_next_opening_over_the_clock_change_weekend() -> None:
    office = Schedule(LONDON)
    state = open_state(office, utc(2026, 3, 27, 17, 30))
    assert not state.is_open
    assert state.reason == "outside opening hours"
    assert state.next_open == utc(2026, 3, 30, 8, 0)
    now = utc(2026, 3, 27, 17, 30)
    assert describe_opening(state.next_open, now, LONDON) == "on Monday 30 March at 9am"


def test_a_night_that_spans_the_clock_going_back() -> None:
    nights = Schedule(LONDON, weekly={d: [["00:00", "02:00"]] for d in ALWAYS_OPEN})
    # 25 October 2026: 01:00-02:00 local happens twice; the service is open
    # until 02:00 local, which is 02:00 GMT = 02:00 UTC.
    assert open_state(nights, utc(2026, 10, 25, 0, 30)).is_open  # 01:30 BST
    assert open_state(nights, utc(2026, 10, 25, 1, 30)).is_open  # 01:30 GMT
    assert not open_state(nights, utc(2026, 10, 25, 2, 0)).is_open


@pytest.mark.parametrize(
    ("nation", "day", "holiday"),
    [
        ("england-and-wales", dt.date(2026, 4, 6), "Easter Monday"),
        ("england-and-wales", dt.date(2026, 8, 31), "Late Summer Bank Holiday"),
        ("scotland", dt.date(2026, 1, 2), "New Year Holiday"),
        ("scotland", dt.date(2026, 8, 3), "Summer Bank Holiday"),
        ("scotland", dt.date(2026, 11, 30), "Saint Andrew's Day"),
        ("northern-ireland", dt.date(2026, 3, 17), "Saint Patrick's Day"),
        ("northern-ireland", dt.date(2026, 7, 13), "Battle of the Boyne (observed)"),
        ("england-and-wales", dt.date(2026, 12, 28), "Boxing Day (observed)"),
    ],
)
def test_each_nations_bank_holidays_close_the_service(
    nation: str, day: dt.date, holiday: str
) -> None:
    noon = dt.datetime.combine(day, dt.time(12), tzinfo=UTC)
    state = open_state(Schedule(LONDON, nation=nation), noon)
    assert not state.is_open
    assert state.reason == f"closed for {holiday}"


@pytest.mark.parametrize(
    ("nation", "day"),
    [
        ("scotland", dt.date(2026, 4, 6)),  # Easter Monday is not a Scottish bank holiday
        ("england-and-wales", dt.date(2026, 1, 2)),
        ("england-and-wales", dt.date(2026, 11, 30)),
        ("england-and-wales", dt.date(2026, 3, 17)),
        ("northern-ireland", dt.date(2026, 8, 3)),
    ],
)
def test_another_nations_holiday_is_a_working_day(nation: str, day: dt.date) -> None:
    noon = dt.datetime.combine(day, dt.time(12), tzinfo=UTC)
    assert open_state(Schedule(LONDON, nation=nation), noon).is_open


def test_closure_and_christmas_push_the_next_opening() -> None:
    office = Schedule(
        LONDON, closures=(Closure(dt.date(2026, 12, 29), dt.date(2026, 12, 31), "staff training"),)
    )
    christmas_eve_evening = utc(2026, 12, 24, 18, 0)
    state = open_state(office, christmas_eve_evening)
    # 25, 26 (Sat), 27 (Sun), 28 (Boxing Day observed), 29-31 closed, 1 Jan holiday.
    assert state.next_open == utc(2027, 1, 4, 9, 0)
    assert open_state(office, utc(2026, 12, 30, 12, 0)).reason == "closed: staff training"


def test_always_open_reports_no_closing_time_within_the_day() -> None:
    always = Schedule(LONDON, weekly=ALWAYS_OPEN, nation="england-and-wales")
    assert open_state(always, utc(2026, 11, 28, 3, 0)).is_open  # a Saturday night


def test_bank_holidays_close_only_services_that_close_on_them() -> None:
    always = Schedule(LONDON, weekly=ALWAYS_OPEN)
    assert not open_state(always, utc(2026, 12, 25, 12, 0)).is_open
    round_the_clock = Schedule(LONDON, weekly=ALWAYS_OPEN, closed_on_bank_holidays=False)
    assert open_state(round_the_clock, utc(2026, 12, 25, 12, 0)).is_open


@pytest.mark.parametrize(
    ("weekly", "says"),
    [
        ([], "map each day"),
        ({"funday": []}, "unknown day"),
        ({"mon": [["9", "17:00"]]}, "not a time of day"),
        ({"mon": [["17:00", "09:00"]]}, "closes before it opens"),
        ({"mon": [["09:00", "12:00"], ["11:00", "13:00"]]}, "overlap"),
        ({"mon": [["09:00"]]}, "pair"),
    ],
)
def test_bad_weekly_hours_are_explained(weekly: object, says: str) -> None:
    with pytest.raises(HoursError, match=says):
        validate_weekly(weekly)


def test_unknown_nation_and_zone_are_explained() -> None:
    with pytest.raises(HoursError, match="unknown nation"):
        open_state(Schedule(LONDON, nation="wessex"), utc(2026, 11, 30, 12))
    with pytest.raises(HoursError, match="time zone"):
        open_state(Schedule("Mars/Olympus"), utc(2026, 11, 30, 12))
