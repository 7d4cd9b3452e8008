"""The best-seat chooser as a pure function."""

from hypothesis import given
from hypothesis import strategies as st

from regional_api.reservations.best_seats import SeatCell, choose_blocks
from regional_api.reservations.holds import _spread


def choose_block(
    seats: list[SeatCell], count: int, seat_type: str | None = None
) -> list[int] | None:
    """The best block `choose_blocks` gives (what a lone best-available request tries first)."""
    best = choose_blocks(seats, count, seat_type, limit=1)
    return best[0] if best else None


def hall(
    rows: int,
    cols: int,
    *,
    taken: frozenset[tuple[int, int]] | set[tuple[int, int]] = frozenset(),
    aisle_after: int = 0,
) -> list[SeatCell]:
    """Seats with id = row * 100 + col; an aisle (grid gap) after column `aisle_after`."""
    cells = []
    for r in range(rows):
        for c in range(cols):
            grid_col = c + 1 if aisle_after and c >= aisle_after else c
            cells.append(SeatCell(r * 100 + c, r, grid_col, "standard", (r, c) not in taken))
    return cells


def test_empty_hall_picks_centre_two_thirds_back() -> None:
    block = choose_block(hall(10, 10), 2)
    assert block == [604, 605]


def test_block_never_crosses_an_aisle() -> None:
    # 4 + 4 with an aisle: 5 adjacent seats exist nowhere.
    assert choose_block(hall(3, 8, aisle_after=4), 5) is None
    block = choose_block(hall(3, 8, aisle_after=4), 4)
    assert block is not None
    assert len({seat_id % 100 < 4 for seat_id in block}) == 1


def test_avoids_stranding_a_single_seat() -> None:
    # One row of 6, seat 0 taken: taking 1-2 or 3-4 would strand a single seat.
    cells = hall(1, 6, taken={(0, 0)})
    block = choose_block(cells, 3)
    assert block in ([1, 2, 3], [3, 4, 5])
    assert choose_block(cells, 4) in ([1, 2, 3, 4], [2, 3, 4, 5])
    # With 5 free after a taken seat, a block of 2 leaving no single gap wins over the centre.
    row = hall(1, 7, taken={(0, 0)})
    chosen = choose_block(row, 2)
    assert chosen is not None
    assert 1 not in _free_runs(row, set(chosen))


def _free_runs(cells: list[SeatCell], chosen: set[int]) -> list[int]:
    runs, current = [], 0
    for cell in sorted(cells, key=lambda c: c.grid_col):
        if cell.free and cell.seat_id not in chosen:
            current += 1
        else:
            if current:
                runs.append(current)
            current = 0
    if current:
        runs.append(current)
    return runs


def test_seat_type_filter_and_accessibility_default() -> None:
    cells = [
        SeatCell(1, 0, 0, "wheelchair", True),
        SeatCell(2, 0, 1, "companion", True),
        SeatCell(3, 1, 0, "vip", True),
        SeatCell(4, 1, 1, "vip", True),
    ]
    assert choose_block(cells, 2) == [3, 4]
    assert choose_block(cells, 1, "wheelchair") == [1]
    assert choose_block(cells, 3) is None
    assert choose_block([], 1) is None
    assert choose_block(cells, 0) is None


@given(
    rows=st.integers(1, 6),
    cols=st.integers(1, 10),
    count=st.integers(1, 6),
    taken=st.sets(st.tuples(st.integers(0, 5), st.integers(0, 9)), max_size=30),
)
def test_result_is_always_free_adjacent_and_in_one_row(
    rows: int, cols: int, count: int, taken: set[tuple[int, int]]
) -> None:
    cells = hall(rows, cols, taken=taken, aisle_after=cols // 2)
    by_id = {c.seat_id: c for c in cells}
    block = choose_block(cells, count)
    if block is None:
        assert not _some_block_exists(cells, count)
        return
    chosen = [by_id[i] for i in block]
    assert len(chosen) == count
    assert all(c.free for c in chosen)
    assert len({c.grid_row for c in chosen}) == 1
    cols_used = [c.grid_col for c in chosen]
    assert cols_used == list(range(cols_used[0], cols_used[0] + count))


def _some_block_exists(cells: list[SeatCell], count: int) -> bool:
    free = {(c.grid_row, c.grid_col) for c in cells if c.free}
    return any(all((r, c0 + i) in free for i in range(count)) for r, c0 in free)


def test_the_best_blocks_share_no_seat_and_come_best_first() -> None:
    cells = hall(10, 10)
    blocks = choose_blocks(cells, 2, limit=8)
    assert len(blocks) == 8
    assert blocks[0] == choose_block(cells, 2)
    seats = [seat for block in blocks for seat in block]
    assert len(seats) == len(set(seats))
    assert choose_blocks(hall(1, 3), 2, limit=8) in ([[0, 1]], [[1, 2]])  # 2 overlapping: one


def test_best_available_tries_the_best_block_first_then_spreads_the_rest() -> None:
    blocks = [[n, n + 1] for n in range(0, 18, 2)]  # 9 blocks, best first
    for _ in range(20):
        order = _spread(blocks)
        assert order[0] == blocks[0]  # a lone request gets the best block
        assert sorted(map(tuple, order[1:5])) == sorted(map(tuple, blocks[1:5]))
        assert sorted(map(tuple, order[5:])) == sorted(map(tuple, blocks[5:]))
