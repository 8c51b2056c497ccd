"""The service's setting of Python's garbage collector (cli.fewer_full_collections)."""

from __future__ import annotations

import gc

import pytest

from signvideo.cli import fewer_full_collections


def test_the_service_makes_full_collections_ten_times_rarer_and_leaves_the_rest() -> None:
    before = gc.get_threshold()
    if before[2] == 0:
        pytest.skip("this Python's collector has no third generation threshold")
    try:
        gc.set_threshold(700, 10, 10)
        fewer_full_collections()
        assert gc.get_threshold() == (700, 10, 100)
        assert gc.isenabled()
    finally:
        gc.set_threshold(*before)
