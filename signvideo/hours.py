"""Opening hours: each authority's weekly hours in its own time zone, its nation's
bank holidays, and dated closures.

Pure functions over plain data, so the rules can be tested without a database.
"""

from __future__ import annotations

import datetime as dt
import functools
import itertools
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import holidays

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
DAY_NAMES = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
NATIONS = {
    # The PyPI `holidays` package's subdivisions of GB; Wales keeps England's days.
    "england-and-wales": "ENG",
    "scotland": "SCT",
    "northern-ireland": "NIR",
}
DEFAULT_WEEKLY: dict[str, list[list[str]]] = {
    day: ([["09:00", "17:00"]] if day in DAYS[:5] else []) for day in DAYS
}
ALWAYS_OPEN: dict[str, list[list[str]]] = {day: [["00:00", "24:00"]] for day in DAYS}
_CLOCK = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$|^24:00$")
# How far ahead to look for the next opening before calling a service closed
# indefinitely.
_SEARCH_DAYS = 400


class HoursError(ValueError):
    """Opening hours that cannot be used; the message says what to fix."""


@dataclass(frozen=True)
class Closure:
    first_day: dt.date
    last_day: dt.date
    reason: str


@dataclass(frozen=True)
class Schedule:
    time_zone: str
    weekly: Mapping[str, list[list[str]]] = field(default_factory=lambda: DEFAULT_WEEKLY)
    nation: str = "england-and-wales"
    closures: tuple[Closure, ...] = ()
    # A round-the-clock service usually keeps going on bank holidays.
    closed_on_bank_holidays: bool = True


def _minutes(text: str) -> int:
    if not isinstance(text, str) or not _CLOCK.match(text):
        raise HoursError(f"{text!r} is not a time of day like 09:00 (24:00 may end a day)")
    hours, minutes = text.split(":")
    return int(hours) * 60 + int(minutes)


def validate_weekly(weekly: Any) -> dict[str, list[list[str]]]:
    """Check a weekly table ``{"mon": [["09:00", "17:00"]], ...}`` and return it tidied."""
    if not isinstance(weekly, dict):
        raise HoursError("opening hours must map each day (mon ... sun) to a list of periods")
    unknown = set(weekly) - set(DAYS)
    if unknown:
        raise HoursError(f"unknown day(s) {sorted(unknown)}; use {', '.join(DAYS)}")
    tidy: dict[str, list[list[str]]] = {}
    for day in DAYS:
        periods = weekly.get(day, [])
        if not isinstance(periods, list):
            raise HoursError(f"{day}: a list of [opens, closes] pairs is needed")
        spans = []
        for period in periods:
            if not (isinstance(period, list | tuple) and len(period) == 2):
                raise HoursError(f"{day}: each period is a pair like ['09:00', '17:00']")
            start, end = _minutes(period[0]), _minutes(period[1])
            if start >= end:
                raise HoursError(f"{day}: {period[0]} to {period[1]} closes before it opens")
            spans.append((start, end, [period[0], period[1]]))
        spans.sort()
        for before, after in itertools.pairwise(spans):
            if after[0] < before[1]:
                raise HoursError(f"{day}: periods {before[2]} and {after[2]} overlap")
        tidy[day] = [s[2] for s in spans]
    return tidy


def zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as err:
        raise HoursError(f"{name!r} is not a time zone name like Europe/London") from err


@functools.lru_cache(maxsize=64)
def _bank_holidays(nation: str, year: int) -> Mapping[dt.date, str]:
    if nation not in NATIONS:
        raise HoursError(f"unknown nation {nation!r}; use one of {', '.join(NATIONS)}")
    table = holidays.country_holidays("GB", subdiv=NATIONS[nation], years=year)
    return dict(table.items())


def bank_holiday(nation: str, day: dt.date) -> str | None:
    return _bank_holidays(nation, day.year).get(day)


def _closure(schedule: Schedule, day: dt.date) -> Closure | None:
    return next((c for c in schedule.closures if c.first_day <= day <= c.last_day), None)


def _day_periods(schedule: Schedule, day: dt.date) -> list[tuple[int, int]]:
    """The open periods of one local date, in minutes from local midnight."""
    if _closure(schedule, day):
        return []
    if schedule.closed_on_bank_holidays and bank_holiday(schedule.nation, day):
        return []
    return [(_minutes(a), _minutes(b)) for a, b in schedule.weekly.get(DAYS[day.weekday()], [])]


def _at(day: dt.date, minutes: int, tz: ZoneInfo) -> dt.datetime:
    # Wall-clock arithmetic: 09:00 means 09:00 local time on every day,
    # whichever side of a clock change it falls.
    naive = dt.datetime.combine(day, dt.time(0)) + dt.timedelta(minutes=minutes)
    return naive.replace(tzinfo=tz)


@dataclass(frozen=True)
class OpenState:
    is_open: bool
    # When closed: why, and when it next opens (None if not within a year).
    reason: str | None = None
    next_open: dt.datetime | None = None
    # When open: when the current period ends.
    closes_at: dt.datetime | None = None


def open_state(schedule: Schedule, now: dt.datetime) -> OpenState:
    """Whether the service is open at ``now`` (aware), and the next change."""
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    tz = zone(schedule.time_zone)
    local = now.astimezone(tz)
    today = local.date()
    minute = local.hour * 60 + local.minute
    for start, end in _day_periods(schedule, today):
        if start <= minute < end:
            closes = _at(today, end, tz)
            # A period that runs to midnight joins one that opens at midnight.
            following = _day_periods(schedule, today + dt.timedelta(days=1))
            if end == 1440 and following and following[0][0] == 0:
                closes = _at(today + dt.timedelta(days=1), following[0][1], tz)
            return OpenState(True, closes_at=closes)
    reason = _closed_reason(schedule, today)
    return OpenState(False, reason=reason, next_open=next_opening(schedule, now))


def _closed_reason(schedule: Schedule, day: dt.date) -> str:
    closure = _closure(schedule, day)
    if closure:
        return f"closed: {closure.reason}" if closure.reason else "closed today"
    holiday = bank_holiday(schedule.nation, day)
    if holiday:
        return f"closed for {holiday}"
    return "outside opening hours"


def next_opening(schedule: Schedule, now: dt.datetime) -> dt.datetime | None:
    tz = zone(schedule.time_zone)
    local = now.astimezone(tz)
    minute = local.hour * 60 + local.minute
    for offset in range(_SEARCH_DAYS):
        day = local.date() + dt.timedelta(days=offset)
        for start, _end in _day_periods(schedule, day):
            if offset == 0 and start <= minute:
                continue
            return _at(day, start, tz)
    return None


def describe_opening(when: dt.datetime, now: dt.datetime, time_zone: str) -> str:
    """Plain words for a next opening: 'today at 9am', 'on Monday 4 May at 9am'."""
    tz = zone(time_zone)
    local, today = when.astimezone(tz), now.astimezone(tz).date()
    clock = local.strftime("%I:%M%p").lstrip("0").lower().replace(":00", "")
    if local.date() == today:
        return f"today at {clock}"
    if local.date() == today + dt.timedelta(days=1):
        return f"tomorrow at {clock}"
    return f"on {DAY_NAMES[local.weekday()]} {local.day} {local.strftime('%B')} at {clock}"


def describe_weekly(weekly: Mapping[str, Iterable[Iterable[str]]]) -> list[str]:
    """Lines like 'Monday: 9:00 to 17:00' for the caller page."""
    lines = []
    for day, name in zip(DAYS, DAY_NAMES, strict=True):
        periods = [f"{a} to {b}" for a, b in weekly.get(day, [])]
        lines.append(f"{name}: {', '.join(periods) if periods else 'closed'}")
    return lines
