"""What never changes about a show, kept per replica: its facts, and its seat map with all free.

An uncached seat map used to be built as JSON by PostgreSQL on every read (2 ms of server CPU
for 384 seats, docs/benchmarks/reads.md). Most of it is fixed once the show is scheduled: its
seats (label, row, number, grid place), their types and prices, its hall, times, currency and
prices; no statement changes them. A `Layout` keeps the seats as JSON with every status `"free"`,
and a read asks PostgreSQL only for what may change (`queries.show_state`: the show's status,
the names around it, and the seats that are not free), then writes those seats' statuses into a
copy. A show read needs only the show's `Facts` (no seats), read by one cheaper statement.

The grid size comes from the hall's layout document, which a layout replacement changes: what
is kept is kept with the hall's `updated_at`, and read again when the state names another. At
most `max_entries` shows are kept, the least recently used dropped first.
"""

import hashlib
import json
from array import array
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from prometheus_client import Counter

from regional_api.shows.queries import zone
from schemas.catalog import ShowRead

# The status codes of `queries.show_state`'s taken seats (seat_id * 4 + code).
STATUSES = ("free", "held", "sold", "blocked")
BLOCKED = 3
_FREE_TAIL = b'free"}'  # how every seat's JSON ends in a layout
_FREE_SEAT_END = b'"status":"' + _FREE_TAIL
_TAILS = tuple(f'{status}"}}'.encode() for status in STATUSES)
# The columns of `queries._LAYOUT_SHOW` that a show read shows as they are.
_FACTS = ("hall_id", "movie_id", "cinema_id", "starts_at", "ends_at", "currency", "prices")

_LOADS = Counter(
    "show_layout_loads_total", "Show facts or layouts read from the database", ["kind"]
)


def _json(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()


@dataclass(frozen=True, slots=True)
class Facts:
    """What a show read keeps of a show: its fixed fields, its seat count, its hall's grid."""

    show_id: str
    fields: dict[str, Any]  # _FACTS
    hall_changed_at: datetime
    seat_total: int  # every seat of the show, blocked ones included
    grid: tuple[int, int]  # rows and columns of the hall's layout document

    def show_read(self, state: Any) -> bytes:
        """The `ShowRead` body (as FastAPI renders the model) given the show's state."""
        blocked = sum(1 for code in state.taken if code & 3 == BLOCKED)
        timezone = state.timezone
        item = self.fields | {
            "id": self.show_id,
            "status": state.status,
            "movie_title": state.movie_title,
            "duration_minutes": state.duration_minutes,
            "hall_name": state.hall_name,
            "cinema_name": state.cinema_name,
            "city": state.city,
            "timezone": timezone,
            "starts_at_local": self.fields["starts_at"].astimezone(zone(timezone)),
            "seat_count": self.seat_total - blocked,
            "free_seats": self.seat_total - len(state.taken),
        }
        return ShowRead.model_validate(item).model_dump_json().encode()


def make_facts(show: Any) -> Facts:
    """A show's facts from its `queries._LAYOUT_SHOW` row."""
    _LOADS.labels("show").inc()
    fields = {name: getattr(show, name) for name in _FACTS}
    grid = (show.grid_rows, show.grid_cols)
    return Facts(show.id, fields, show.hall_changed_at, show.seat_total, grid)


@dataclass(frozen=True, slots=True)
class Layout:
    """A show's seat map with every seat free, where each status is, and the show's facts."""

    facts: Facts
    head: tuple[bytes, bytes]  # the seat map's fields around its status: ids, currency, grid
    seats: bytes  # every seat's JSON, comma-separated, each with status "free"
    status_at: "array[int]"  # where each seat's (grid order) status value starts in `seats`
    where: dict[int, int]  # seat id -> grid position (a dict: 3 times faster than bisecting)
    digest: bytes  # of everything above that a seat map shows

    def seat_map(self, state: Any) -> tuple[bytes, str]:
        """The `ShowSeatMap` body given the show's state, and its ETag."""
        taken = self._taken(state.taken)
        counts = [len(self.status_at) - len(taken), 0, 0, 0]
        parts: list[bytes] = []
        start, seats, status_at = 0, self.seats, self.status_at
        for key in taken:
            code = key & 3
            counts[code] += 1
            at = status_at[key >> 2]
            parts += (seats[start:at], _TAILS[code])
            start = at + len(_FREE_TAIL)
        counted = _json(dict(zip(STATUSES, counts, strict=True)))
        head = (self.head[0], _json(state.status), self.head[1], counted, b',"seats":[')
        body = b"".join((*head, *parts, seats[start:], b"]}"))
        # The body follows from the layout, the show's status and the taken seats: hash those
        # few bytes, not the whole map (a 384-seat map's hash costs 50-90 us).
        key = self.digest + state.status.encode() + array("q", taken).tobytes()
        return body, f'"{hashlib.blake2b(key, digest_size=16).hexdigest()}"'

    def _taken(self, codes: list[int]) -> list[int]:
        """grid position * 4 + status code of the seats of this map in `codes`, by position."""
        where, found = self.where.get, []
        for code in codes:
            position = where(code >> 2)
            if position is not None:
                found.append(position << 2 | code & 3)
        found.sort()
        return found


def make_layout(facts: Facts, seats: list[Any]) -> Layout:
    """A layout from a show's facts and its seat rows in grid order (`queries.layout_rows`)."""
    _LOADS.labels("seats").inc()
    # Seats of a past show may come from a replaced layout: size the grid to fit them too.
    grid_rows = max(facts.grid[0], *(seat.grid_row + 1 for seat in seats), 0)
    grid_cols = max(facts.grid[1], *(seat.grid_col + 1 for seat in seats), 0)
    fields = {"hall_id": facts.fields["hall_id"], "currency": facts.fields["currency"]}
    fields |= {"grid_rows": grid_rows, "grid_cols": grid_cols}
    # The fields before the show's status, and those after it up to the counts.
    head = (
        _json({"show_id": facts.show_id})[:-1] + b',"show_status":',
        b"," + _json(fields)[1:-1] + b',"counts":',
    )
    # One encoding of every seat (a call per seat costs twice as much). "status" is each seat's
    # last field and a string value cannot hold an unescaped quote: each find is one seat's.
    body = _json([seat._asdict() | {"status": "free"} for seat in seats])[1:-1]
    status_at, at = array("l"), body.find(_FREE_SEAT_END)
    while at >= 0:
        status_at.append(at + len(_FREE_SEAT_END) - len(_FREE_TAIL))
        at = body.find(_FREE_SEAT_END, at + len(_FREE_SEAT_END))
    return Layout(
        facts=facts,
        head=head,
        seats=body,
        status_at=status_at,
        where={seat.seat_id: position for position, seat in enumerate(seats)},
        digest=hashlib.blake2b(b"".join((*head, body)), digest_size=16).digest(),
    )


class Layouts:
    """The replica's facts or layouts by show id, bounded, least recently used dropped first."""

    def __init__(self, max_entries: int) -> None:
        self.max_entries = max_entries
        self._kept: OrderedDict[str, Facts | Layout] = OrderedDict()

    def __len__(self) -> int:
        return len(self._kept)

    def facts(self, show_id: str, hall_changed_at: datetime) -> Facts | None:
        """The show's facts if they were read from the hall as it is now, else None."""
        kept = self._current(show_id, hall_changed_at)
        return kept.facts if isinstance(kept, Layout) else kept

    def layout(self, show_id: str, hall_changed_at: datetime) -> Layout | None:
        """The show's layout if it was made from the hall as it is now, else None."""
        kept = self._current(show_id, hall_changed_at)
        return kept if isinstance(kept, Layout) else None

    def put(self, kept: Facts | Layout) -> None:
        """Keep a show's facts or layout (a layout replaces its facts, not the other way)."""
        facts = kept.facts if isinstance(kept, Layout) else kept
        show_id = facts.show_id
        if isinstance(kept, Facts) and self.layout(show_id, facts.hall_changed_at) is not None:
            return
        self._kept[show_id] = kept
        self._kept.move_to_end(show_id)
        while len(self._kept) > self.max_entries:
            self._kept.popitem(last=False)

    def _current(self, show_id: str, hall_changed_at: datetime) -> Facts | Layout | None:
        kept = self._kept.get(show_id)
        if kept is None:
            return None
        facts = kept.facts if isinstance(kept, Layout) else kept
        if facts.hall_changed_at != hall_changed_at:
            return None
        self._kept.move_to_end(show_id)
        return kept
