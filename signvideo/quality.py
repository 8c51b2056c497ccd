"""The call's quality record: samples each side's page measures of the video
it receives (frames a second, picture size, round trip, packet loss, and the
warning it showed), sent over the signalling socket in batches and kept
append-only in `call_quality`. Never any content of the call."""

from __future__ import annotations

import math
import uuid
from typing import Any

import asyncpg

from signvideo.db import Q
from signvideo.errors import InvalidField, OutOfTurn

MAX_SAMPLES = 30
WARNINGS = (None, "low_frame_rate", "unstable")
# (field, lowest, highest, whole numbers only)
FIELDS = (
    ("fps", 0, 240, False),
    ("width", 0, 10_000, True),
    ("height", 0, 10_000, True),
    ("rtt_ms", 0, 60_000, False),
    ("loss_percent", 0, 100, False),
)


def _number(sample: dict[str, Any], name: str, low: int, high: int, whole: bool) -> Any:
    value = sample.get(name)
    if value is None:
        return None
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or (isinstance(value, float) and not math.isfinite(value))
        or not low <= value <= high
        or (whole and not float(value).is_integer())
    ):
        kind = "a whole number" if whole else "a number"
        raise InvalidField(f'"{name}" in a sample must be {kind} from {low} to {high}, or null.')
    return int(value) if whole else float(value)


def samples_field(data: dict[str, Any]) -> list[list[Any]]:
    """The samples as columns (fps, width, height, rtt, loss, warning)."""
    samples = data.get("samples")
    if not isinstance(samples, list) or not 1 <= len(samples) <= MAX_SAMPLES:
        raise InvalidField(f'"samples" must be a list of 1 to {MAX_SAMPLES} samples.')
    columns: list[list[Any]] = [[] for _ in range(len(FIELDS) + 1)]
    for sample in samples:
        if not isinstance(sample, dict):
            raise InvalidField('Each of "samples" must be an object.')
        for column, (name, low, high, whole) in zip(columns, FIELDS, strict=False):
            column.append(_number(sample, name, low, high, whole))
        warning = sample.get("warning")
        if warning not in WARNINGS:
            raise InvalidField(
                '"warning" in a sample must be "low_frame_rate", "unstable" or null.'
            )
        columns[-1].append(warning)
    return columns


async def record(
    pool: asyncpg.Pool,
    call_id: uuid.UUID,
    side: str,
    user_id: int | None,
    data: dict[str, Any],
) -> int:
    columns = samples_field(data)
    rows = await pool.fetch(Q["quality_samples"], call_id, side, user_id, *columns)
    if not rows:
        raise OutOfTurn("Quality samples are only for a connected call of yours.")
    return len(rows)
