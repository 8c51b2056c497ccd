"""The usage export, as CSV, XLSX or JSON, for one authority and either a
billing month (what that month's invoice carries) or a range of days (by when
the service was given). The same for the finance page, the API and the
`signvideo export` command.

Memory stays flat however many lines: CSV is PostgreSQL's own COPY, streamed
chunk by chunk; JSON is read through a cursor, each line made into JSON by
PostgreSQL; XLSX is written row by row to a temporary file (xlsxwriter's
constant-memory mode) and then streamed. Columns: docs/exports.md.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import re
import tempfile
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

import asyncpg
import xlsxwriter

from signvideo import hours
from signvideo.db import Q

FORMATS = ("csv", "xlsx", "json")
MEDIA_TYPES = {
    "csv": "text/csv; charset=utf-8; header=present",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "json": "application/json",
}
MAX_DAYS = 366
# A worksheet holds 1,048,576 rows, one of them the header.
XLSX_MAX_LINES = 1_048_575
# The JSON document's version; a change of meaning gets a new one.
JSON_VERSION = 1

# The columns, in order, and what each means: shown on the finance page and
# in docs/exports.md; a test holds the query to this list.
COLUMN_NOTES: dict[str, str] = {
    "line_id": "The ledger line's number; credits refer to it.",
    "line_type": "call, standing_charge or credit.",
    "billing_month": "The month whose invoice carries the line (YYYY-MM): the month of "
    "service, or the next open month for a line recorded after that month's invoice.",
    "invoice_number": "The invoice that carries the line; empty while the month is open.",
    "authority": "The authority's short name.",
    "call_id": "The call's reference.",
    "cost_centre": "The department or cost-centre code chosen for the call, if any.",
    "language": "The sign language of the call.",
    "specialism": "The specialism the call needed, if any.",
    "queued_at_utc": "When the caller joined the queue, UTC (ISO 8601).",
    "queued_at_local": "The same in the authority's local time, with its offset.",
    "answered_at_utc": "When an interpreter answered, UTC; empty if never answered.",
    "answered_at_local": "The same in local time.",
    "ended_at_utc": "When the call ended, UTC: for a call lost to a dropped connection, "
    "when the connection was lost.",
    "ended_at_local": "The same in local time.",
    "queue_wait_seconds": "Seconds from joining to the answer (or to the end, if never "
    "answered). Reported, not charged.",
    "billable_seconds": "Seconds from the answer to the end, a part second counting as one.",
    "charged_seconds": "Billable seconds rounded up to whole billing increments.",
    "rate_band": "in_hours, out_of_hours or bank_holiday, at the moment of answer.",
    "rate_pence_per_minute": "The rate of that band on the rate card in force.",
    "billing_increment_seconds": "The rate card's billing increment.",
    "minimum_charge_pence": "The rate card's minimum charge per call.",
    "net_pence": "The charge before VAT, in pence; negative for a credit.",
    "vat_rate_percent": "The VAT rate applied, like 20.00.",
    "vat_pence": "VAT on the line, to the nearest penny (halves away from zero).",
    "gross_pence": "net_pence plus vat_pence.",
    "end_reason": "Why the call ended.",
    "zero_rated_reason": "Why a call was not charged: not_answered, technical_failure "
    "(the connection failed within the first seconds) or no_rate_card.",
    "credit_for_line": "For a credit: the line it corrects, if any.",
    "credit_reason": "For a credit: why it was given.",
    "credited_by": "For a credit: who gave it.",
    "recorded_at_utc": "When the line was written to the ledger, UTC.",
}

Writer = Callable[[bytes], Awaitable[None]]
Progress = Callable[[int], None]

_MONTH = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])\Z")
_EARLIEST = dt.datetime(1, 1, 2, tzinfo=dt.UTC)
_LATEST = dt.datetime(9999, 12, 30, tzinfo=dt.UTC)
_FIRST_MONTH = dt.date(1, 1, 1)
_LAST_MONTH = dt.date(9999, 12, 1)


class SelectionError(ValueError):
    """A bad month, range or format; ``field`` names the parameter at fault."""

    def __init__(self, message: str, field: str) -> None:
        super().__init__(message)
        self.field = field


@dataclass(frozen=True)
class Selection:
    """Which lines: one authority, and a billing month or a range of days."""

    authority_id: int
    slug: str
    time_zone: str
    month: dt.date | None = None
    first_day: dt.date | None = None
    last_day: dt.date | None = None

    def params(self) -> tuple[Any, ...]:
        """usage_lines' parameters $1 to $5."""
        if self.month is not None:
            return (self.authority_id, self.month, self.month, _EARLIEST, _LATEST)
        assert self.first_day is not None and self.last_day is not None
        zone = hours.zone(self.time_zone)
        start = dt.datetime.combine(self.first_day, dt.time(), zone)
        end = dt.datetime.combine(self.last_day + dt.timedelta(days=1), dt.time(), zone)
        return (self.authority_id, _FIRST_MONTH, _LAST_MONTH, start, end)

    @property
    def described(self) -> dict[str, str | None]:
        if self.month is not None:
            return {"month": self.month.strftime("%Y-%m"), "from": None, "to": None}
        assert self.first_day is not None and self.last_day is not None
        return {"month": None, "from": self.first_day.isoformat(), "to": self.last_day.isoformat()}

    def filename(self, fmt: str) -> str:
        if self.month is not None:
            span = self.month.strftime("%Y-%m")
        else:
            span = f"{self.first_day}-to-{self.last_day}"
        return f"signvideo-usage-{self.slug}-{span}.{fmt}"


# The years the service deals in; outside them a date is a mistake (and the
# end of the calendar is too near to add a day to).
FIRST_YEAR, LAST_YEAR = 2000, 2999


def _in_service_years(year: int, text: str, name: str) -> None:
    if not FIRST_YEAR <= year <= LAST_YEAR:
        raise SelectionError(
            f"The '{name}' {text[:20]!r} is not between the years {FIRST_YEAR} and {LAST_YEAR}.",
            name,
        )


def parse_month(text: str | None, name: str = "month") -> dt.date:
    if not text:
        raise SelectionError(f"Enter a '{name}', like 2026-11.", name)
    match = _MONTH.match(text)
    if match is None:
        raise SelectionError(
            f"The '{name}' {text[:20]!r} is not a month; write it like 2026-11.", name
        )
    _in_service_years(int(match[1]), text, name)
    return dt.date(int(match[1]), int(match[2]), 1)


def _parse_day(text: str | None, name: str) -> dt.date:
    if not text:
        raise SelectionError(f"Enter a '{name}' date, like 2026-11-01.", name)
    try:
        day = dt.date.fromisoformat(text)
    except ValueError:
        raise SelectionError(
            f"The '{name}' date {text[:40]!r} is not a date; write it like 2026-11-01.", name
        ) from None
    _in_service_years(day.year, text, name)
    return day


def parse_range(query: Mapping[str, str]) -> tuple[dt.date | None, dt.date | None, dt.date | None]:
    """(month, first day, last day) from `month`, or from `from` and `to`."""
    if "month" in query:
        if query.get("from") or query.get("to"):
            raise SelectionError(
                "Give either a 'month' or 'from' and 'to' dates, not both.", "month"
            )
        return parse_month(query["month"]), None, None
    first_day = _parse_day(query.get("from"), "from")
    last_day = _parse_day(query.get("to"), "to")
    if last_day < first_day:
        raise SelectionError("The 'to' date is before the 'from' date.", "to")
    if (last_day - first_day).days >= MAX_DAYS:
        raise SelectionError(f"Choose a range of at most {MAX_DAYS} days.", "from")
    return None, first_day, last_day


def parse_format(text: str | None) -> str:
    wanted = text or "csv"
    if wanted not in FORMATS:
        raise SelectionError(
            f"'format' must be one of: {', '.join(FORMATS)}; {wanted[:20]!r} is not.", "format"
        )
    return wanted


def selection(authority: Mapping[str, Any], query: Mapping[str, str]) -> Selection:
    month, first_day, last_day = parse_range(query)
    return Selection(
        authority["id"], authority["slug"], authority["time_zone"], month, first_day, last_day
    )


async def _local_time(con: asyncpg.Connection, sel: Selection) -> None:
    """Local times in the export are the authority's (for this transaction)."""
    await con.execute("SELECT set_config('TimeZone', $1, true)", sel.time_zone)


async def totals(con: asyncpg.Connection, sel: Selection) -> asyncpg.Record:
    row: asyncpg.Record = await con.fetchrow(Q["usage_totals"], *sel.params())
    return row


async def write_csv(
    con: asyncpg.Connection, sel: Selection, out: Writer, progress: Progress | None = None
) -> None:
    """RFC 4180: a header, CRLF line ends, UTF-8. PostgreSQL writes the CSV;
    no field can hold a line break (export_text), so every LF ends a record."""
    await _local_time(con, sel)
    header = [True]  # the first line ends the header, not a record

    async def chunk(data: bytes) -> None:
        await out(data.replace(b"\n", b"\r\n"))
        if progress is not None:
            lines = data.count(b"\n")
            if header[0] and lines:
                lines, header[0] = lines - 1, False
            progress(lines)

    await con.copy_from_query(
        _lines_query(), *sel.params(), output=chunk, format="csv", header=True
    )


def _lines_query() -> str:
    """usage_lines without its closing semicolon, to go inside another statement."""
    return Q["usage_lines"].rstrip().rstrip(";")


def _json_query() -> str:
    return (
        f"SELECT row_to_json(u)::text AS line, u.net_pence, u.vat_pence FROM ({_lines_query()}) u"
    )


async def write_json(
    con: asyncpg.Connection,
    sel: Selection,
    out: Writer,
    progress: Progress | None = None,
    batch: int = 2000,
) -> None:
    """{"format", "version", "authority", "time_zone", "month", "from", "to",
    "lines": [...], "totals": {...}}; each line has the CSV's columns, with
    numbers as numbers and empty values as null."""
    await _local_time(con, sel)
    head = {
        "format": "signvideo-usage",
        "version": JSON_VERSION,
        "authority": sel.slug,
        "time_zone": sel.time_zone,
        **sel.described,
    }
    await out((json.dumps(head)[:-1] + ', "lines": [\n').encode())
    count = net = vat = 0
    cursor = await (await con.prepare(_json_query())).cursor(*sel.params())
    while rows := await cursor.fetch(batch):
        lines = ",\n".join(row["line"] for row in rows)
        await out(((",\n" if count else "") + lines).encode())
        count += len(rows)
        net += sum(row["net_pence"] for row in rows)
        vat += sum(row["vat_pence"] for row in rows)
        if progress is not None:
            progress(len(rows))
    summary = {"lines": count, "net_pence": net, "vat_pence": vat, "gross_pence": net + vat}
    await out(f'\n], "totals": {json.dumps(summary)}}}\n'.encode())


# Columns shown as whole numbers in the spreadsheet; the rest are text.
_NUMBERS = {
    "line_id",
    "queue_wait_seconds",
    "billable_seconds",
    "charged_seconds",
    "rate_pence_per_minute",
    "billing_increment_seconds",
    "minimum_charge_pence",
    "net_pence",
    "vat_pence",
    "gross_pence",
    "credit_for_line",
}


class TooManyLines(ValueError):
    """More lines than a spreadsheet holds."""


async def check_size(con: asyncpg.Connection, sel: Selection, fmt: str) -> None:
    """Refuse, before anything is sent, an export its format cannot hold."""
    if fmt != "xlsx":
        return
    count = (await totals(con, sel))["lines"]
    if count > XLSX_MAX_LINES:
        raise TooManyLines(
            f"{count:,} lines are more than a spreadsheet holds ({XLSX_MAX_LINES:,}); "
            "choose a shorter range, or CSV."
        )


async def write_xlsx(
    con: asyncpg.Connection,
    sel: Selection,
    out: Writer,
    progress: Progress | None = None,
    batch: int = 5000,
) -> None:
    """One worksheet with the CSV's columns, written to a temporary file in
    constant memory (off the event loop, a batch at a time), then streamed."""
    await check_size(con, sel, "xlsx")
    await _local_time(con, sel)
    # Everything xlsxwriter writes, its row files too, goes in one folder that
    # is removed however the export ends.
    with tempfile.TemporaryDirectory(prefix="signvideo-xlsx-") as folder:
        path = os.path.join(folder, "usage.xlsx")
        book = xlsxwriter.Workbook(
            path, {"constant_memory": True, "strings_to_numbers": False, "tmpdir": folder}
        )
        sheet = book.add_worksheet("Usage")
        bold = book.add_format({"bold": True})
        statement = await con.prepare(Q["usage_lines"])
        columns = [attribute.name for attribute in statement.get_attributes()]
        number_columns = {i for i, name in enumerate(columns) if name in _NUMBERS}
        for col, name in enumerate(columns):
            sheet.write_string(0, col, name, bold)
        sheet.freeze_panes(1, 0)
        cursor = await statement.cursor(*sel.params())
        row_number = 0

        def write(rows: list[asyncpg.Record]) -> None:
            nonlocal row_number
            for record in rows:
                row_number += 1
                for col, value in enumerate(record.values()):
                    if value is None:
                        continue
                    if col in number_columns:
                        sheet.write_number(row_number, col, value)
                    else:
                        sheet.write_string(row_number, col, str(value))

        while True:
            rows = await cursor.fetch(batch)
            if not rows:
                break
            await asyncio.to_thread(write, rows)
            if progress is not None:
                progress(len(rows))
        await asyncio.to_thread(book.close)
        with open(path, "rb") as f:
            while chunk := f.read(256 * 1024):
                await out(chunk)


WRITERS = {"csv": write_csv, "xlsx": write_xlsx, "json": write_json}


async def export(
    con: asyncpg.Connection,
    sel: Selection,
    fmt: str,
    out: Writer,
    progress: Progress | None = None,
) -> None:
    """Write the export; `con` is in a transaction, reading as whoever asked
    (access.reading_for), so row-level security holds."""
    await WRITERS[fmt](con, sel, out, progress)
