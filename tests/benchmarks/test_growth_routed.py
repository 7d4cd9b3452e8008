"""The routed growth measurement's pure parts: the median run and the ratio to the empty size."""

from typing import Any

import pytest

from benchmarks import growth_routed


def _row(app: float) -> dict[str, Any]:
    spent = {"router": 0.5, "app": app, "pg_backends": 0.5, "pg_background": 0.0}
    return {"cpu_ms_per_op": spent, "ok_per_s": 100.0, "errors": 0, "new_connections": 0}


def test_the_ratio_is_the_median_of_each_rounds_ratio() -> None:
    # Round 2 ran while the machine was busy for both sizes: a ratio per round cancels that,
    # a ratio of the sizes' medians would not (2.0 / 1.0 here).
    empty = [_row(1.0), _row(3.0), _row(1.0)]  # totals 2, 4, 2
    grown = [_row(1.2), _row(3.2), _row(1.4)]  # totals 2.2, 4.2, 2.4
    runs = {0: {"hold": empty}, 5_000_000: {"hold": grown}}
    median = growth_routed._median(runs, 5_000_000, "hold")
    assert growth_routed.cpu_total(median) == pytest.approx(2.4)
    assert median["vs_first"] == pytest.approx(1.1)  # of 1.1, 1.05, 1.2
    assert growth_routed._median(runs, 0, "hold")["vs_first"] == 1.0


def test_the_table_has_a_line_per_operation_and_size() -> None:
    row = _row(1.0) | {"vs_first": 1.0}
    text = growth_routed.table({0: dict.fromkeys(growth_routed.OPS, row), 10: {}})
    lines = [line for line in text.splitlines() if line.startswith("| hold ")]
    assert lines == ["| hold | 0 | 100 | 0 | 0.50 | 1.00 | 0.50 | 0.00 | 2.00 | 1.00 | 0 |"]
    assert growth_routed.table({}) == ""
