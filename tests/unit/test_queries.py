from __future__ import annotations

from pathlib import Path

import pytest

from signvideo.db import Q, load_queries


def test_named_queries_load() -> None:
    assert "match_round" in Q
    assert Q["match_round"].startswith("-- One round trip: see match_round in migration 0005.")


def test_duplicate_query_names_are_refused(tmp_path: Path) -> None:
    (tmp_path / "a.sql").write_text("-- name: one\nSELECT 1;\n-- name: one\nSELECT 2;\n")
    with pytest.raises(ValueError, match="defined twice"):
        load_queries(tmp_path)
