"""Parse a hall's compact layout document into labelled seats (pure: no I/O, no database).

One string per row, front (screen) first; one char per grid cell. `_` or a space is a gap;
any other char is a seat whose type comes from the legend (`"vip"` or `"vip-blocked"`).
Rows holding seats are labelled A, B, C... (I and O skipped, then AA, AB...) unless explicit
labels are given; seats are numbered 1.. from the left within a row, gaps not counted.
A row made only of gaps is a cross aisle: it takes a grid row but no label.
"""

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from common.errors import Unprocessable
from schemas.catalog import SeatType

MAX_ROWS = 60
MAX_COLS = 80
GAP_CHARS = frozenset("_ ")
BLOCKED_SUFFIX = "-blocked"
ROW_LETTERS = "ABCDEFGHJKLMNPQRSTUVWXYZ"  # no I or O: they read as 1 and 0
_ROW_LABEL_RE = re.compile(r"^[A-Z]{1,3}$")
_SEAT_TYPES = frozenset(seat_type.value for seat_type in SeatType)


class InvalidLayout(Unprocessable):
    """The layout document cannot be turned into a seat map; `reason` says why."""

    code = "invalid_layout"

    def __init__(self, reason: str, detail: str, **extra: Any) -> None:
        super().__init__(detail, reason=reason, **extra)


@dataclass(frozen=True)
class LayoutSeat:
    """One seat of a parsed layout."""

    row_label: str
    number: int
    grid_row: int
    grid_col: int
    seat_type: str
    blocked: bool

    @property
    def label(self) -> str:
        """The printed seat label, e.g. `C12`."""
        return f"{self.row_label}{self.number}"


@dataclass(frozen=True)
class Layout:
    """A parsed layout: seats in grid order and the size of the grid."""

    seats: tuple[LayoutSeat, ...]
    row_labels: tuple[str, ...]
    grid_rows: int
    grid_cols: int

    @property
    def seat_types(self) -> list[str]:
        """The seat types present, sorted."""
        return sorted({seat.seat_type for seat in self.seats})

    @property
    def sellable_types(self) -> list[str]:
        """The seat types of seats that are not blocked, sorted: each show must price them."""
        return sorted({seat.seat_type for seat in self.seats if not seat.blocked})


def auto_row_label(index: int) -> str:
    """The default label of the `index`-th seat row (0 -> A, 23 -> Z, 24 -> AA)."""
    base = len(ROW_LETTERS)
    if index < base:
        return ROW_LETTERS[index]
    return ROW_LETTERS[index // base - 1] + ROW_LETTERS[index % base]


def parse_legend(legend: Mapping[str, str]) -> dict[str, tuple[str, bool]]:
    """Map each legend char to `(seat_type, blocked)`."""
    parsed: dict[str, tuple[str, bool]] = {}
    for char, meaning in legend.items():
        if len(char) != 1 or char in GAP_CHARS or not char.isprintable():
            raise InvalidLayout(
                "bad_legend_char",
                f"legend keys must be single printable chars other than '_' and space: {char!r}",
                char=char,
            )
        value = meaning.strip().lower()
        blocked = value.endswith(BLOCKED_SUFFIX)
        seat_type = value.removesuffix(BLOCKED_SUFFIX) if blocked else value
        if seat_type not in _SEAT_TYPES:
            raise InvalidLayout(
                "bad_legend_type",
                f"legend {char!r} -> {meaning!r}: expected one of {sorted(_SEAT_TYPES)}, "
                f"optionally with '{BLOCKED_SUFFIX}'",
                char=char,
            )
        parsed[char] = (seat_type, blocked)
    return parsed


def _row_cells(
    index: int, row: str, legend: Mapping[str, tuple[str, bool]]
) -> list[tuple[int, str, bool]]:
    if not row:
        raise InvalidLayout(
            "empty_row", f"row {index} is empty (use '_' for an aisle row)", row=index
        )
    if len(row) > MAX_COLS:
        raise InvalidLayout(
            "too_many_columns", f"row {index} has {len(row)} cells, max {MAX_COLS}", row=index
        )
    cells = []
    for col, char in enumerate(row):
        if char in GAP_CHARS:
            continue
        if char not in legend:
            raise InvalidLayout(
                "unknown_legend_char",
                f"row {index} col {col}: {char!r} is not in the legend",
                row=index,
                col=col,
                char=char,
            )
        seat_type, blocked = legend[char]
        cells.append((col, seat_type, blocked))
    return cells


def _labels(explicit: Sequence[str] | None, count: int) -> list[str]:
    if explicit is None:
        return [auto_row_label(index) for index in range(count)]
    labels = [label.strip().upper() for label in explicit]
    if len(labels) != count:
        raise InvalidLayout(
            "row_label_count",
            f"{len(labels)} row labels given for {count} rows holding seats",
        )
    for label in labels:
        if not _ROW_LABEL_RE.match(label):
            raise InvalidLayout(
                "bad_row_label", f"row label {label!r} must be 1-3 letters", label=label
            )
    seen: set[str] = set()
    for label in labels:
        if label in seen:
            raise InvalidLayout(
                "duplicate_row_label", f"row label {label!r} is used twice", label=label
            )
        seen.add(label)
    return labels


def parse_layout(
    rows: Sequence[str],
    legend: Mapping[str, str],
    row_labels: Sequence[str] | None = None,
) -> Layout:
    """Turn a layout document into seats, or raise InvalidLayout with a precise reason."""
    if not rows:
        raise InvalidLayout("no_rows", "the layout has no rows")
    if len(rows) > MAX_ROWS:
        raise InvalidLayout("too_many_rows", f"{len(rows)} rows, max {MAX_ROWS}")
    parsed_legend = parse_legend(legend)
    seat_rows = [(index, _row_cells(index, row, parsed_legend)) for index, row in enumerate(rows)]
    seat_rows = [(index, cells) for index, cells in seat_rows if cells]
    if not seat_rows:
        raise InvalidLayout("no_seats", "the layout has no seats, only gaps")
    labels = _labels(row_labels, len(seat_rows))
    seats = tuple(
        LayoutSeat(label, number, grid_row, col, seat_type, blocked)
        for label, (grid_row, cells) in zip(labels, seat_rows, strict=True)
        for number, (col, seat_type, blocked) in enumerate(cells, start=1)
    )
    return Layout(
        seats=seats,
        row_labels=tuple(labels),
        grid_rows=len(rows),
        grid_cols=max(len(row) for row in rows),
    )
