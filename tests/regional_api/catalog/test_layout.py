"""The layout parser: labels, numbering, gaps, blocked seats, every refusal, and a property."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from regional_api.halls.layout import (
    MAX_COLS,
    MAX_ROWS,
    InvalidLayout,
    auto_row_label,
    parse_layout,
)
from schemas.catalog import DEFAULT_LEGEND

EXAMPLE = ["AA_AAAA_AA", "PP_PPPP_PP", "VV_VVVV_VV", "WC______AA"]


def test_example_hall_is_labelled_from_the_front_and_numbered_ignoring_gaps() -> None:
    layout = parse_layout(EXAMPLE, DEFAULT_LEGEND)
    assert layout.row_labels == ("A", "B", "C", "D")
    assert (layout.grid_rows, layout.grid_cols) == (4, 10)
    assert len(layout.seats) == 8 + 8 + 8 + 4
    row_a = [seat for seat in layout.seats if seat.row_label == "A"]
    assert [seat.label for seat in row_a] == [f"A{n}" for n in range(1, 9)]
    assert [seat.grid_col for seat in row_a] == [0, 1, 3, 4, 5, 6, 8, 9]
    row_d = {seat.label: seat for seat in layout.seats if seat.row_label == "D"}
    assert row_d["D1"].seat_type == "wheelchair"
    assert row_d["D2"].seat_type == "companion"
    assert (row_d["D3"].grid_col, row_d["D3"].seat_type) == (8, "standard")
    assert layout.seat_types == ["companion", "premium", "standard", "vip", "wheelchair"]


def test_auto_labels_skip_i_and_o_and_continue_with_two_letters() -> None:
    labels = [auto_row_label(index) for index in range(26)]
    assert "I" not in labels
    assert "O" not in labels
    assert labels[:9] == ["A", "B", "C", "D", "E", "F", "G", "H", "J"]
    assert labels[23:] == ["Z", "AA", "AB"]
    assert len({auto_row_label(i) for i in range(MAX_ROWS)}) == MAX_ROWS


def test_aisle_rows_take_a_grid_row_but_no_label_and_spaces_are_gaps() -> None:
    layout = parse_layout(["  AA  ", "______", " A A A"], DEFAULT_LEGEND)
    assert layout.row_labels == ("A", "B")
    assert {seat.label: (seat.grid_row, seat.grid_col) for seat in layout.seats} == {
        "A1": (0, 2),
        "A2": (0, 3),
        "B1": (2, 1),
        "B2": (2, 3),
        "B3": (2, 5),
    }


def test_explicit_labels_are_normalised_and_blocked_codes_block() -> None:
    layout = parse_layout(["AXA", "AAA"], DEFAULT_LEGEND, row_labels=[" r ", "s"])
    assert layout.row_labels == ("R", "S")
    blocked = [seat.label for seat in layout.seats if seat.blocked]
    assert blocked == ["R2"]
    assert layout.sellable_types == ["standard"]


def test_ragged_rows_are_allowed_and_the_grid_is_the_widest_row() -> None:
    layout = parse_layout(["AA", "AAAAAA", "A"], {"A": "standard"})
    assert (layout.grid_rows, layout.grid_cols) == (3, 6)
    assert len(layout.seats) == 9


@pytest.mark.parametrize(
    ("rows", "legend", "labels", "reason"),
    [
        ([], DEFAULT_LEGEND, None, "no_rows"),
        (["AA", ""], DEFAULT_LEGEND, None, "empty_row"),
        (["___", "  "], DEFAULT_LEGEND, None, "no_seats"),
        (["AAZ"], DEFAULT_LEGEND, None, "unknown_legend_char"),
        (["A"] * (MAX_ROWS + 1), DEFAULT_LEGEND, None, "too_many_rows"),
        (["A" * (MAX_COLS + 1)], DEFAULT_LEGEND, None, "too_many_columns"),
        (["AA"], {"A": "gold"}, None, "bad_legend_type"),
        (["AA"], {"A": "standard", "_": "vip"}, None, "bad_legend_char"),
        (["AA"], {"AB": "standard"}, None, "bad_legend_char"),
        (["AA", "AA"], DEFAULT_LEGEND, ["A", "a"], "duplicate_row_label"),
        (["AA", "AA"], DEFAULT_LEGEND, ["A"], "row_label_count"),
        (["AA"], DEFAULT_LEGEND, ["A1"], "bad_row_label"),
        (["AA"], DEFAULT_LEGEND, [""], "bad_row_label"),
    ],
)
def test_refusals_name_a_precise_reason(
    rows: list[str], legend: dict[str, str], labels: list[str] | None, reason: str
) -> None:
    with pytest.raises(InvalidLayout) as caught:
        parse_layout(rows, legend, labels)
    assert caught.value.extra["reason"] == reason
    assert caught.value.status == 422
    assert caught.value.code == "invalid_layout"


def test_unknown_char_error_points_at_the_cell() -> None:
    with pytest.raises(InvalidLayout) as caught:
        parse_layout(["AA", "A_Q"], DEFAULT_LEGEND)
    assert caught.value.extra == {
        "reason": "unknown_legend_char",
        "row": 1,
        "col": 2,
        "char": "Q",
    }


CELLS = st.sampled_from("AAAPVWCX__ ")
ROWS = st.lists(st.text(CELLS, max_size=12), max_size=8)
ANY_ROWS = st.lists(st.text(max_size=90), max_size=70)
LEGENDS = st.one_of(
    st.just(DEFAULT_LEGEND), st.dictionaries(st.text(max_size=2), st.text(max_size=20))
)
LABELS = st.one_of(st.none(), st.lists(st.text(max_size=4), max_size=10))


@settings(max_examples=200, deadline=None)
@given(rows=st.one_of(ROWS, ANY_ROWS), legend=LEGENDS, labels=LABELS)
def test_parse_only_ever_raises_invalid_layout(
    rows: list[str], legend: dict[str, str], labels: list[str] | None
) -> None:
    try:
        layout = parse_layout(rows, legend, labels)
    except InvalidLayout:
        return
    assert len(layout.seats) == sum(1 for row in rows for char in row if char not in "_ ")
    assert len({seat.label for seat in layout.seats}) == len(layout.seats)
    assert len({(seat.grid_row, seat.grid_col) for seat in layout.seats}) == len(layout.seats)


@settings(max_examples=100, deadline=None)
@given(rows=ROWS.filter(lambda rows: any(set(row) - {"_", " "} for row in rows)))
def test_valid_documents_always_parse_with_one_seat_per_seat_char(rows: list[str]) -> None:
    rows = [row or "_" for row in rows]
    layout = parse_layout(rows, DEFAULT_LEGEND)
    assert len(layout.seats) == sum(1 for row in rows for char in row if char not in "_ ")
    assert all(seat.number >= 1 for seat in layout.seats)
