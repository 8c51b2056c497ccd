"""Rating calls and the finance usage export."""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime

import asyncpg

from signvideo.db import Q


@dataclass(frozen=True)
class RateRule:
    """An authority's contract terms for pricing one call."""

    rate_pence_per_minute: int
    billing_increment_seconds: int
    minimum_charge_pence: int = 0


def rate_call(billable_seconds: int, rule: RateRule) -> int:
    """The charge in pence for a call of ``billable_seconds``.

    Time is rounded up to whole billing increments, priced pro rata at the
    per-minute rate, and any fraction of a penny is rounded up; a call that
    was answered at all costs at least the minimum charge.
    """
    if billable_seconds < 0:
        raise ValueError("billable seconds cannot be negative")
    if billable_seconds == 0:
        return 0
    step = rule.billing_increment_seconds
    charged_seconds = -(-billable_seconds // step) * step
    pence = -(-(charged_seconds * rule.rate_pence_per_minute) // 60)
    return max(pence, rule.minimum_charge_pence)


USAGE_COLUMNS = (
    "call_id",
    "authority",
    "queued_at",
    "answered_at",
    "ended_at",
    "queue_wait_seconds",
    "billable_seconds",
    "charge_pence",
    "end_reason",
    "rate_pence_per_minute",
    "billing_increment_seconds",
)


def _iso(value: datetime | None) -> str:
    if value is None:
        return ""
    return value.isoformat(timespec="seconds").replace("+00:00", "Z")


async def usage_csv_chunks(
    con: asyncpg.Connection,
    authority_id: int,
    first_day: object,
    last_day: object,
    batch: int = 500,
) -> AsyncIterator[bytes]:
    """Yield the usage CSV in chunks, reading rows through a cursor so memory
    stays flat; `con` is in a transaction (access.reading_as)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(USAGE_COLUMNS)
    cursor = con.cursor(Q["usage_rows"], authority_id, first_day, last_day, prefetch=batch)
    count = 0
    async for row in cursor:
        writer.writerow(
            (
                row["call_id"],
                row["authority"],
                _iso(row["queued_at"]),
                _iso(row["answered_at"]),
                _iso(row["ended_at"]),
                row["queue_wait_seconds"],
                row["billable_seconds"],
                row["charge_pence"],
                row["end_reason"],
                "" if row["rate_pence_per_minute"] is None else row["rate_pence_per_minute"],
                ""
                if row["billing_increment_seconds"] is None
                else row["billing_increment_seconds"],
            )
        )
        count += 1
        if count % batch == 0:
            yield buffer.getvalue().encode()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue().encode()
