"""Business counters of holds and reservations."""

from functools import cache

from prometheus_client import Counter

HOLDS = Counter("reservation_holds_total", "Hold attempts by outcome", ["outcome", "kind"])
SEATS_HELD = Counter("reservation_seats_held_total", "Seats put on hold")
CONFLICTS = Counter("reservation_conflicts_total", "Holds refused because seats were taken")
EXPIRIES = Counter("reservation_expiries_total", "Lapsed holds marked expired", ["by"])
RELEASES = Counter("reservation_releases_total", "Holds released by their owner or staff")
EXTENSIONS = Counter("reservation_extensions_total", "Hold extensions by outcome", ["outcome"])
CANCELLATIONS = Counter("reservation_cancellations_total", "Reservations canceled", ["reason"])
CONFIRMATIONS = Counter("reservation_confirmations_total", "Reservations confirmed (sold)")
CONFIRM_REFUSALS = Counter(
    "reservation_confirm_refusals_total", "Confirmations refused because the hold's seats were gone"
)
HOLDS_REFUSED_FULL = Counter(
    "holds_refused_full",
    "Holds refused from the replica's recent seat map (full show, seats taken, no block)"
    " without a database statement",
    ["kind"],
)


@cache
def held(kind: str) -> Counter:
    """The `ok` child of HOLDS for `kind`, looked up once (`labels()` takes a lock each time)."""
    return HOLDS.labels("ok", kind)
