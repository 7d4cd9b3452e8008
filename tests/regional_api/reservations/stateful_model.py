"""The model the reservation state machine (test_stateful.py) checks the database against."""

from dataclasses import dataclass
from datetime import datetime, timedelta

from regional_api.clock import Clock

# The hold rules of `make_app`'s settings.
TTL = timedelta(minutes=10)
EXTENSION = timedelta(minutes=5)
MAX_EXTENSIONS = 2
CAP = timedelta(minutes=20)
SEAT_CAP = 6
CUSTOMERS = ("ann", "ben", "cat")
STAFF = "staff"  # staff of the show's cinema: holds without the per-customer seat cap
EXCLUDED_TYPES = ("wheelchair", "companion")  # best available offers them only by type

SEATS_SQL = """
SELECT ss.seat_id, ss.status, ss.reservation_id, ss.held_until, ss.price_minor, st.label,
       st.grid_row, st.grid_col, ss.seat_type
FROM show_seats ss JOIN seats st ON st.id = ss.seat_id WHERE ss.show_id = %(s)s
"""
RESERVATIONS_SQL = """
SELECT r.id, r.status, r.hold_expires_at, r.amount_minor, r.refund_minor,
  (SELECT coalesce(sum(price_minor), 0) FROM reservation_seats
    WHERE reservation_id = r.id) AS seat_total,
  (SELECT array_agg(seat_id ORDER BY seat_id) FROM reservation_seats
    WHERE reservation_id = r.id) AS seat_ids,
  (SELECT count(*) FROM reservation_seats rs
     JOIN show_seats ss ON ss.show_id = rs.show_id AND ss.seat_id = rs.seat_id
    WHERE rs.reservation_id = r.id AND ss.status = 'sold' AND ss.reservation_id = r.id) AS sold,
  (SELECT count(*) FROM reservation_seats WHERE reservation_id = r.id) AS n,
  (SELECT count(*) FROM payments
    WHERE reservation_id = r.id AND status = 'completed') AS payments,
  (SELECT coalesce(sum(amount_minor), 0) FROM payments
    WHERE reservation_id = r.id AND status = 'completed') AS paid_minor
FROM reservations r WHERE r.show_id = %(s)s
"""


class StoppedClock(Clock):
    """The app's clock, moved only by the test (`advance`), so deadlines are exact."""

    def __init__(self, start: datetime) -> None:
        super().__init__()
        self.start = start

    def now(self) -> datetime:
        return self.start + self.offset


@dataclass
class Res:
    """The model of one reservation."""

    id: str
    user: str
    seats: frozenset[int]
    status: str
    created: datetime
    deadline: datetime | None
    extensions: int = 0
    paid: bool = False


@dataclass
class Owner:
    """The model of one seat's row: who holds or bought it, and until when."""

    rid: str
    status: str
    until: datetime | None


@dataclass(frozen=True)
class Cell:
    """A seat of the example's hall, as best available sees it."""

    seat_id: int
    row: int
    col: int
    seat_type: str
    price: int
