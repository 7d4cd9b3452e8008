"""Choose the best block of N adjacent free seats in a hall (a pure function)."""

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

# Accessibility seats are given only when asked for by type.
DEFAULT_EXCLUDED_TYPES = frozenset({"wheelchair", "companion"})
SWEET_SPOT_DEPTH = 2 / 3  # the best row is about two thirds of the way back
ROW_WEIGHT = 1.5  # a row away from the sweet spot costs more than a seat off centre
ORPHAN_PENALTY = 1000.0  # a single stranded seat is worse than any position


@dataclass(frozen=True, slots=True)
class SeatCell:
    """One seat of a show as the chooser sees it."""

    seat_id: int
    grid_row: int
    grid_col: int
    seat_type: str
    free: bool


def _runs(cells: list[SeatCell]) -> list[list[SeatCell]]:
    """Split one row, sorted by column, into runs with no aisle (column gap) inside."""
    runs: list[list[SeatCell]] = []
    for cell in cells:
        if runs and cell.grid_col == runs[-1][-1].grid_col + 1:
            runs[-1].append(cell)
        else:
            runs.append([cell])
    return runs


def _fits(cell: SeatCell, seat_type: str | None) -> bool:
    if not cell.free:
        return False
    if seat_type is None:
        return cell.seat_type not in DEFAULT_EXCLUDED_TYPES
    return cell.seat_type == seat_type


def _orphans(run: list[SeatCell], start: int, count: int) -> int:
    """How many single free seats the block would strand at its two sides."""
    stranded = 0
    left, right = start - 1, start + count
    if left >= 0 and run[left].free and (left == 0 or not run[left - 1].free):
        stranded += 1
    if right < len(run) and run[right].free and (right == len(run) - 1 or not run[right + 1].free):
        stranded += 1
    return stranded


def choose_blocks(
    seats: Iterable[SeatCell], count: int, seat_type: str | None = None, *, limit: int
) -> list[list[int]]:
    """Return up to `limit` blocks of `count` adjacent free seats, best first, none sharing a seat."""
    cells = list(seats)
    if count < 1 or not cells:
        return []
    rows: dict[int, list[SeatCell]] = defaultdict(list)
    for cell in cells:
        rows[cell.grid_row].append(cell)
    first_row, last_row = min(rows), max(rows)
    sweet_row = first_row + SWEET_SPOT_DEPTH * (last_row - first_row)
    centre_col = (min(c.grid_col for c in cells) + max(c.grid_col for c in cells)) / 2
    found: list[tuple[tuple[float, int, int], Sequence[SeatCell]]] = []
    for row in sorted(rows):
        for run in _runs(sorted(rows[row], key=lambda c: c.grid_col)):
            for start in range(len(run) - count + 1):
                block = run[start : start + count]
                if not all(_fits(cell, seat_type) for cell in block):
                    continue
                middle = (block[0].grid_col + block[-1].grid_col) / 2
                score = (
                    ROW_WEIGHT * abs(row - sweet_row)
                    + abs(middle - centre_col)
                    + ORPHAN_PENALTY * _orphans(run, start, count)
                )
                found.append(((score, row, block[0].grid_col), block))
    found.sort(key=lambda item: item[0])
    chosen: list[list[int]] = []
    used: set[int] = set()
    for _, seats_of in found:
        ids = [cell.seat_id for cell in seats_of]
        if used.isdisjoint(ids):
            chosen.append(ids)
            used.update(ids)
            if len(chosen) == limit:
                break
    return chosen
