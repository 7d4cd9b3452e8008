"""What never changes about a show, kept per replica: its seat map rendered with every seat free.

An uncached seat map used to be built as JSON by PostgreSQL on every read (2 ms of server CPU
for 384 seats, docs/benchmarks/reads.md). Most of it is fixed once the show is scheduled: its
seats (label, row, number, grid place), their types and prices, its hall, times and currency;
no statement changes them. A `Layout` keeps that part as the seats' JSON with every status
`"free"`, and a read asks PostgreSQL only for what may change (`queries.show_state`: the show's
status, the names around it, and the ids of the seats that are not free), then writes those
seats' statuses into a copy. The grid size comes from the hall's layout document, which a layout
replacement changes: a layout is kept with the hall's `updated_at` and loaded again when the
state names another. At most `max_entries` layouts are kept, the least recently used dropped.
"""

import hashlib
import json
from array import array
from bisect import bisect_left
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from prometheus_client import Counter

from regional_api.shows.queries import zone
from schemas.catalog import ShowRead

# The status codes of `queries.show_state`'s taken seats (seat_id * 4 + code).
STATUSES = ("free", "held", "sold", "blocked")
_FREE_TAIL = b'free"}'  # how every seat's JSON ends in a layout
_FREE_SEAT_END = b'"status":"' + _FREE_TAIL
_TAILS = tuple(f'{status}"}}'.encode() for status in STATUSES)

_LOADS = Counter("show_layout_loads_total", "Show layouts read from the database")


def _json(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()


@dataclass(frozen=True, slots=True)
class Layout:
    """A show's fixed part: its seats' JSON (all free), where each status is, and its facts."""

    show_id: str
    facts: dict[str, Any]  # hall_id, movie_id, cinema_id, starts_at, ends_at, currency, prices
    hall_changed_at: datetime
    head: tuple[bytes, bytes]  # the seat map's fields around its status: ids, currency, grid
    seats: bytes  # every seat's JSON, comma-separated, each with status "free"
    status_at: "array[int]"  # where each seat's (grid order) status value starts in `seats`
    seat_ids: "array[int]"  # seat ids, sorted
    positions: "array[int]"  # the grid position of each of `seat_ids`
    digest: bytes  # of everything above that a seat map shows

    def taken(self, codes: list[int]) -> list[tuple[int, int]]:
        """(grid position, status code) of the seats in `codes`, by position."""
        found = []
        for code in codes:
            seat_id = code >> 2
            index = bisect_left(self.seat_ids, seat_id)
            if index < len(self.seat_ids) and self.seat_ids[index] == seat_id:
                found.append((self.positions[index], code & 3))
        found.sort()
        return found

    def seat_map(self, show_status: str, taken: list[tuple[int, int]]) -> tuple[bytes, str]:
        """The `ShowSeatMap` body with these seats taken, and its ETag."""
        counts = dict.fromkeys(STATUSES, 0)
        parts: list[bytes] = []
        start = 0
        for position, code in taken:
            counts[STATUSES[code]] += 1
            at = self.status_at[position]
            parts += (self.seats[start:at], _TAILS[code])
            start = at + len(_FREE_TAIL)
        counts["free"] = len(self.status_at) - len(taken)
        head = (self.head[0], _json(show_status), self.head[1], _json(counts), b',"seats":[')
        body = b"".join((*head, *parts, self.seats[start:], b"]}"))
        # The body follows from the layout, the show's status and the taken seats: hash those
        # few bytes, not the whole map (a 384-seat map's hash costs 50-90 us).
        taken_codes = array("q", (position * 4 + code for position, code in taken)).tobytes()
        key = self.digest + show_status.encode() + taken_codes
        return body, f'"{hashlib.blake2b(key, digest_size=16).hexdigest()}"'

    def show_read(self, state: Any, taken: list[tuple[int, int]]) -> bytes:
        """The `ShowRead` body (as FastAPI renders the model) given the show's state."""
        blocked = sum(1 for _, code in taken if code == 3)
        total = len(self.status_at)
        item = self.facts | {
            "id": self.show_id,
            "status": state.status,
            "movie_title": state.movie_title,
            "duration_minutes": state.duration_minutes,
            "hall_name": state.hall_name,
            "cinema_name": state.cinema_name,
            "city": state.city,
            "timezone": state.timezone,
            "starts_at_local": self.facts["starts_at"].astimezone(zone(state.timezone)),
            "seat_count": total - blocked,
            "free_seats": total - len(taken),
        }
        return ShowRead.model_validate(item).model_dump_json().encode()


def make_layout(show: Any, seats: list[Any]) -> Layout:
    """A layout from the show's row and its seat rows in grid order (`queries.layout_rows`)."""
    grid_rows = max(show.grid_rows, *(seat.grid_row + 1 for seat in seats), 0)
    grid_cols = max(show.grid_cols, *(seat.grid_col + 1 for seat in seats), 0)
    fields = {"hall_id": show.hall_id, "currency": show.currency}
    fields |= {"grid_rows": grid_rows, "grid_cols": grid_cols}
    # The fields before the show's status, and those after it up to the counts.
    head = (
        _json({"show_id": show.id})[:-1] + b',"show_status":',
        b"," + _json(fields)[1:-1] + b',"counts":',
    )
    # One encoding of every seat (a call per seat costs twice as much). "status" is each seat's
    # last field and a string value cannot hold an unescaped quote: each find is one seat's.
    body = _json([seat._asdict() | {"status": "free"} for seat in seats])[1:-1]
    status_at, at = array("l"), body.find(_FREE_SEAT_END)
    while at >= 0:
        status_at.append(at + len(_FREE_SEAT_END) - len(_FREE_TAIL))
        at = body.find(_FREE_SEAT_END, at + len(_FREE_SEAT_END))
    by_id = sorted((seat.seat_id, position) for position, seat in enumerate(seats))
    facts = {name: getattr(show, name) for name in _FACTS}
    _LOADS.inc()
    return Layout(
        show_id=show.id,
        facts=facts,
        hall_changed_at=show.hall_changed_at,
        head=head,
        seats=body,
        status_at=status_at,
        seat_ids=array("q", (seat_id for seat_id, _ in by_id)),
        positions=array("l", (position for _, position in by_id)),
        digest=hashlib.blake2b(b"".join((*head, body)), digest_size=16).digest(),
    )


_FACTS = ("hall_id", "movie_id", "cinema_id", "starts_at", "ends_at", "currency", "prices")


class Layouts:
    """The replica's layouts by show id, bounded, least recently used dropped first."""

    def __init__(self, max_entries: int) -> None:
        self.max_entries = max_entries
        self._layouts: OrderedDict[str, Layout] = OrderedDict()

    def __len__(self) -> int:
        return len(self._layouts)

    def get(self, show_id: str, hall_changed_at: datetime) -> Layout | None:
        """The show's layout if it was made from the hall as it is now, else None."""
        layout = self._layouts.get(show_id)
        if layout is None or layout.hall_changed_at != hall_changed_at:
            return None
        self._layouts.move_to_end(show_id)
        return layout

    def put(self, layout: Layout) -> None:
        """Keep `layout` (replacing the show's previous one)."""
        self._layouts[layout.show_id] = layout
        self._layouts.move_to_end(layout.show_id)
        while len(self._layouts) > self.max_entries:
            self._layouts.popitem(last=False)
