"""The demo dataset: pure functions producing the documents `demo` sends to the APIs."""

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from deploy.local.topology import REGIONS

LEGEND = {"A": "standard", "P": "premium", "V": "vip", "W": "wheelchair", "C": "companion"}

EARLY_SHOW_AFTER = timedelta(minutes=40)  # the early show starts this long after the demo loads
ONSALE_OPENS_AFTER = timedelta(minutes=5)  # the demo's on-sale opens this long after it loads
DEMO_CARD = "4242424242424242"  # the simulated provider's always-accepted test card

PRICES = {
    "EUR": {"standard": 1150, "premium": 1450, "vip": 1900, "wheelchair": 950, "companion": 950},
    "USD": {"standard": 1400, "premium": 1700, "vip": 2200, "wheelchair": 1100, "companion": 1100},
}


@dataclass(frozen=True)
class HallSpec:
    """A hall's shape: seat rows and the three seat blocks between two aisles."""

    name: str
    rows: int
    left: int
    centre: int
    right: int

    @property
    def seat_count(self) -> int:
        """Seats in the hall."""
        return self.rows * (self.left + self.centre + self.right)


@dataclass(frozen=True)
class CinemaSpec:
    """A demo cinema with its halls."""

    name: str
    city: str
    address: str
    timezone: str
    region: str
    halls: tuple[HallSpec, ...]


STUDIO = HallSpec("Studio", rows=8, left=3, centre=8, right=3)  # 112 seats
SALLE = HallSpec("Hall 2", rows=10, left=4, centre=10, right=4)  # 180 seats
GRAND = HallSpec("Grand", rows=14, left=5, centre=12, right=5)  # 308 seats
IMAX = HallSpec("Panorama", rows=16, left=5, centre=14, right=5)  # 384 seats

CINEMAS: tuple[CinemaSpec, ...] = (
    CinemaSpec("Lumière Bastille", "Paris", "12 rue de la Roquette", "Europe/Paris", "eu-west",
               (GRAND, SALLE, STUDIO)),
    CinemaSpec("Kino Spreeufer", "Berlin", "Holzmarktstraße 25", "Europe/Berlin", "eu-west",
               (IMAX, STUDIO)),
    CinemaSpec("Cine Retiro", "Madrid", "Calle de Alcalá 120", "Europe/Madrid", "eu-west",
               (SALLE, STUDIO)),
    CinemaSpec("Hudson Pictures", "New York", "410 W 42nd St", "America/New_York", "us-east",
               (IMAX, SALLE, STUDIO)),
    CinemaSpec("Lakeshore Cinema", "Chicago", "600 N Michigan Ave", "America/Chicago", "us-east",
               (GRAND, STUDIO)),
)  # fmt: skip

MOVIES: tuple[tuple[str, tuple[str, ...], int, str], ...] = (
    ("The Lighthouse Keeper's Daughter", ("drama",), 118, "12"),
    ("Orbit of Glass", ("science fiction", "thriller"), 142, "12"),
    ("Midnight at the Paternoster", ("comedy",), 96, "6"),
    ("Salt and Iron", ("history", "drama"), 155, "16"),
    ("The Quiet Cartographer", ("documentary",), 88, "0"),
    ("Run, Little Fox", ("animation", "family"), 92, "0"),
    ("Cold Harbour", ("crime", "thriller"), 124, "16"),
    ("A Summer in Lisbon", ("romance",), 105, "6"),
    ("Beneath the Ninth Wave", ("adventure",), 131, "12"),
    ("The Clockmaker's Wager", ("mystery",), 111, "12"),
    ("Neon Prairie", ("western", "science fiction"), 127, "16"),
    ("Paper Giants", ("family", "fantasy"), 99, "0"),
)

DAY_OPENS = time(11, 0)
LAST_START = time(22, 30)


def region_documents(endpoints: dict[str, list[str]]) -> list[dict[str, Any]]:
    """`RegionWrite` bodies for every local region, with their regional_api base URLs."""
    return [
        {"code": s.code, "name": s.name, "currency": s.currency, "endpoints": endpoints[s.code]}
        for s in REGIONS
    ]


def cinemas(*, small: bool = False) -> list[CinemaSpec]:
    """The demo cinemas: several cities per region, or one cinema with one hall when small."""
    if not small:
        return list(CINEMAS)
    firsts: dict[str, CinemaSpec] = {}
    for spec in CINEMAS:
        firsts.setdefault(spec.region, spec)
    return [
        CinemaSpec(c.name, c.city, c.address, c.timezone, c.region, (STUDIO,))
        for c in firsts.values()
    ]


def cinema_document(spec: CinemaSpec) -> dict[str, Any]:
    """`CinemaCreate` body of a demo cinema."""
    return {
        "name": spec.name,
        "city": spec.city,
        "address": spec.address,
        "timezone": spec.timezone,
        "region": spec.region,
    }


def _row(spec: HallSpec, index: int) -> str:
    """One row of seats: wheelchair places in front, VIP in the middle, premium at the back."""
    if index == 0:
        left = "WC" + "A" * (spec.left - 2)
        right = "A" * (spec.right - 2) + "CW"
        return f"{left}_{'A' * spec.centre}_{right}"
    if index >= spec.rows - 2:
        return "_".join("P" * n for n in (spec.left, spec.centre, spec.right))
    if index in (spec.rows * 2 // 3 - 1, spec.rows * 2 // 3):
        return f"{'A' * spec.left}_{'V' * spec.centre}_{'A' * spec.right}"
    return "_".join("A" * n for n in (spec.left, spec.centre, spec.right))


def hall_document(spec: HallSpec) -> dict[str, Any]:
    """The layout document of a hall: rows of seat codes, `_` for an aisle, and a legend."""
    rows = [_row(spec, i) for i in range(spec.rows)]
    used = {char for row in rows for char in row if char != "_"}
    return {
        "name": spec.name,
        "rows": rows,
        "legend": {code: kind for code, kind in LEGEND.items() if code in used},
    }


def seat_types(layout: dict[str, Any]) -> set[str]:
    """The seat types present in a layout document."""
    legend: dict[str, str] = layout["legend"]
    return {legend[char] for row in layout["rows"] for char in row if char in legend}


def prices(currency: str, types: set[str]) -> dict[str, int]:
    """Prices in minor units for the seat types of one hall."""
    table = PRICES.get(currency, PRICES["EUR"])
    return {kind: table[kind] for kind in sorted(types)}


def movie_documents(region: str, *, count: int = 12) -> list[dict[str, Any]]:
    """`MovieCreate` bodies of the region's programme."""
    return [
        {
            "title": title,
            "description": f"{title}: now showing in {region}.",
            "genres": list(genres),
            "duration_minutes": minutes,
            "age_rating": rating,
        }
        for title, genres, minutes, rating in MOVIES[:count]
    ]


def _round_up(moment: datetime, minutes: int = 15) -> datetime:
    extra = -moment.minute % minutes
    return (moment + timedelta(minutes=extra)).replace(second=0, microsecond=0)


def day_schedule(
    day: date, tz: str, durations: list[int], *, cleaning_minutes: int, offset: int = 0
) -> list[tuple[int, datetime]]:
    """Non-overlapping (movie index, start) pairs for one hall and one local day."""
    zone = ZoneInfo(tz)
    start = datetime.combine(day, DAY_OPENS, zone)
    last = datetime.combine(day, LAST_START, zone)
    shows = []
    turn = offset
    while start <= last:
        movie = turn % len(durations)
        shows.append((movie, start))
        end = start + timedelta(minutes=durations[movie] + cleaning_minutes)
        start = _round_up(end)
        turn += 1
    return shows


def schedule(
    first_day: date,
    days: int,
    tz: str,
    durations: list[int],
    *,
    cleaning_minutes: int,
    hall_index: int = 0,
    not_before: datetime | None = None,
) -> list[tuple[int, datetime]]:
    """(movie index, start) pairs for one hall over `days` local days, none before `not_before`."""
    shows = []
    for n in range(days):
        offset = hall_index * 3 + n
        day = day_schedule(
            first_day + timedelta(days=n), tz, durations, cleaning_minutes=cleaning_minutes,
            offset=offset,
        )  # fmt: skip
        shows += [(m, s) for m, s in day if not_before is None or s >= not_before]
    return shows


def people() -> dict[str, dict[str, str]]:
    """Demo accounts (passwords are generated by the caller, never written here)."""
    return {
        "admin": {"email": "admin@demo.example.com", "display_name": "Demo Admin"},
        "staff": {"email": "staff@demo.example.com", "display_name": "Demo Box Office"},
        "customer": {"email": "customer@demo.example.com", "display_name": "Demo Customer"},
    }


def early_show_start(now: datetime) -> datetime:
    """When the demo's early show starts: doors (an hour before) are open as soon as it loads."""
    return _round_up(now + EARLY_SHOW_AFTER, 5)


def onsale_opens_at(now: datetime) -> datetime:
    """When the demo's on-sale opens: soon enough to watch the line fill, on a whole minute."""
    return _round_up(now + ONSALE_OPENS_AFTER, 1)
