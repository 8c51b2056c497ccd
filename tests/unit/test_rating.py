"""Golden cases for pricing one call."""

from __future__ import annotations

import pytest

from signvideo.billing import RateRule, rate_call

PER_MINUTE = RateRule(rate_pence_per_minute=150, billing_increment_seconds=60)
PER_SECOND = RateRule(rate_pence_per_minute=150, billing_increment_seconds=1)
PER_FIFTEEN_MINUTES = RateRule(rate_pence_per_minute=100, billing_increment_seconds=900)
WITH_MINIMUM = RateRule(
    rate_pence_per_minute=150, billing_increment_seconds=60, minimum_charge_pence=500
)


@pytest.mark.parametrize(
    ("rule", "seconds", "pence"),
    [
        (PER_MINUTE, 0, 0),
        (PER_MINUTE, 1, 150),
        (PER_MINUTE, 59, 150),
        (PER_MINUTE, 60, 150),
        (PER_MINUTE, 61, 300),
        (PER_MINUTE, 600, 1500),
        (PER_MINUTE, 601, 1650),
        (PER_SECOND, 1, 3),  # 2.5 p rounds up
        (PER_SECOND, 2, 5),
        (PER_SECOND, 61, 153),  # 152.5 p rounds up
        (PER_FIFTEEN_MINUTES, 1, 1500),
        (PER_FIFTEEN_MINUTES, 900, 1500),
        (PER_FIFTEEN_MINUTES, 901, 3000),
        (WITH_MINIMUM, 0, 0),  # not answered: no minimum
        (WITH_MINIMUM, 30, 500),
        (WITH_MINIMUM, 240, 600),
    ],
)
def test_rate_call(rule: RateRule, seconds: int, pence: int) -> None:
    assert rate_call(seconds, rule) == pence


def test_negative_time_is_refused() -> None:
    with pytest.raises(ValueError, match="negative"):
        rate_call(-1, PER_MINUTE)
