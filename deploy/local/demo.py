"""The demo dataset: pure functions producing the documents the loader sends to the APIs."""

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx

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


# --- loader: sends the documents above through the public HTTP APIs -------------------------

Progress = Callable[[str], None]


class ApiError(RuntimeError):
    """An API answered something the loader did not expect."""


@dataclass
class DemoApi:
    """Thin JSON client over the router (or the services directly) as the demo admin."""

    client: httpx.Client
    global_url: str
    region_urls: dict[str, str]
    token: str = ""

    def call(self, method: str, url: str, *, ok: tuple[int, ...] = (200, 201), **kw: Any) -> Any:
        """Send one request; raise ApiError unless the status is in `ok`."""
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        headers |= kw.pop("headers", {})
        response = self.client.request(method, url, headers=headers, **kw)
        if response.status_code not in ok:
            raise ApiError(f"{method} {url} -> {response.status_code}: {response.text[:300]}")
        return response.json() if response.content else None

    def login(self, email: str, password: str) -> str:
        """Log in and return an access token."""
        body = self.call(
            "POST", f"{self.global_url}/auth/login", json={"email": email, "password": password}
        )
        return str(body["access_token"])


def _items(body: Any) -> list[dict[str, Any]]:
    return list(body["items"] if isinstance(body, dict) else body)


def demo_loaded(api: DemoApi) -> bool:
    """Tell whether the demo cinemas are already in the directory (loaded by an earlier start)."""
    names = {spec.name for spec in CINEMAS}
    found = _items(api.call("GET", f"{api.global_url}/directory/cinemas"))
    return any(cinema["name"] in names for cinema in found)


def register_regions(api: DemoApi, endpoints: dict[str, list[str]]) -> None:
    """Upsert every region with its current endpoints (every start: ports may have changed)."""
    for document in region_documents(endpoints):
        api.call("PUT", f"{api.global_url}/directory/regions/{document['code']}", json=document)


def _ensure_user(api: DemoApi, who: dict[str, str], password: str) -> str:
    """Register a demo account (or find it) and return its user id."""
    body = {"email": who["email"], "password": password, "display_name": who["display_name"]}
    response = api.client.post(f"{api.global_url}/auth/register", json=body)
    if response.status_code == 201:
        return str(response.json()["id"])
    if response.status_code != 409:
        raise ApiError(f"register {who['email']} -> {response.status_code}: {response.text[:300]}")
    found = _items(api.call("GET", f"{api.global_url}/users", params={"q": who["email"]}))
    return str(next(u["id"] for u in found if u["email"].lower() == who["email"].lower()))


def load_people(api: DemoApi, credentials: dict[str, dict[str, str]], staff_cinema: str) -> None:
    """Create the demo customer and the staff member assigned to one cinema."""
    _ensure_user(api, credentials["customer"], credentials["customer"]["password"])
    staff_id = _ensure_user(api, credentials["staff"], credentials["staff"]["password"])
    api.call("PATCH", f"{api.global_url}/users/{staff_id}", json={"role": "staff"})
    api.call(
        "PUT", f"{api.global_url}/users/{staff_id}/cinemas", json={"cinema_ids": [staff_cinema]}
    )
    credentials["staff"]["cinema_id"] = staff_cinema


def early_show_start(now: datetime) -> datetime:
    """When the demo's early show starts: doors (an hour before) are open as soon as it loads."""
    return _round_up(now + EARLY_SHOW_AFTER, 5)


def _load_cinema(
    api: DemoApi, spec: CinemaSpec, movies: list[dict[str, Any]], *, currency: str, days: int,
    cleaning_minutes: int, pool: ThreadPoolExecutor, early_show: bool = False,
) -> tuple[str, int, str | None]:  # fmt: skip
    """Create one cinema, its halls and their shows; return its id, the number of shows and the
    id of the early show (first hall, shortly after now) when asked for one."""
    cinema = api.call("POST", f"{api.global_url}/directory/cinemas", json=cinema_document(spec))
    region_url = api.region_urls[spec.region]
    zone = ZoneInfo(spec.timezone)
    now = datetime.now(zone)
    durations = [int(m["duration_minutes"]) for m in movies]
    jobs = []
    early_id = None
    for index, hall_spec in enumerate(spec.halls):
        layout = hall_document(hall_spec)
        hall = api.call("POST", f"{region_url}/cinemas/{cinema['id']}/halls", json=layout)
        hall_prices = prices(currency, seat_types(layout))
        not_before = now + timedelta(minutes=30)
        if early_show and index == 0:
            # Check-in can be tried at once: a show whose doors are already open.
            start = early_show_start(now)
            body = {
                "movie_id": movies[0]["id"],
                "starts_at": start.isoformat(),
                "prices": hall_prices,
            }
            early_id = api.call("POST", f"{region_url}/halls/{hall['id']}/shows", json=body)["id"]
            not_before = start + timedelta(minutes=durations[0] + cleaning_minutes)
        plan = schedule(
            now.date(), days, spec.timezone, durations, cleaning_minutes=cleaning_minutes,
            hall_index=index, not_before=not_before,
        )  # fmt: skip
        for movie, starts_at in plan:
            show = {
                "movie_id": movies[movie]["id"],
                "starts_at": starts_at.isoformat(),
                "prices": hall_prices,
            }
            url = f"{region_url}/halls/{hall['id']}/shows"
            jobs.append(pool.submit(api.call, "POST", url, json=show))
    for job in jobs:
        job.result()
    return str(cinema["id"]), len(jobs) + (early_id is not None), early_id


def sell_early_tickets(api: DemoApi, customer: dict[str, str], show_ids: list[str]) -> None:
    """The demo customer buys two seats of each early show (tickets to check in at once)."""
    token = api.login(customer["email"], customer["password"])
    as_customer = DemoApi(api.client, api.global_url, api.region_urls, token)
    base = api.global_url  # the router: it routes each show and reservation to its region
    for show_id in show_ids:
        held = as_customer.call(
            "POST", f"{base}/shows/{show_id}/best-available", json={"count": 2},
            headers={"Idempotency-Key": f"demo-hold-{show_id}"},
        )  # fmt: skip
        as_customer.call(
            "POST", f"{base}/reservations/{held['id']}/payments",
            json={"method": "card", "card_number": DEMO_CARD},
            headers={"Idempotency-Key": f"demo-pay-{show_id}"},
        )  # fmt: skip


def announce_onsale(api: DemoApi, cinema_id: str, region: str) -> dict[str, Any]:
    """Put tomorrow's first show of a cinema on sale through its waiting room, soon."""
    region_url = api.region_urls[region]
    listing = _items(api.call("GET", f"{region_url}/cinemas/{cinema_id}/shows?limit=200"))
    tomorrow = datetime.now(UTC) + timedelta(days=1)
    show = min(
        (s for s in listing if datetime.fromisoformat(s["starts_at"]) > tomorrow),
        key=lambda s: str(s["starts_at"]),
    )
    opens_at = _round_up(datetime.now(UTC) + ONSALE_OPENS_AFTER, 1)
    body = {"opens_at": opens_at.isoformat(), "waiting_room": True, "max_admit_per_second": 5}
    api.call("PUT", f"{region_url}/shows/{show['id']}/onsale", json=body)
    return {"show_id": show["id"], "movie": show["movie_title"], "opens_at": opens_at.isoformat()}


def load_demo(
    api: DemoApi,
    credentials: dict[str, dict[str, str]],
    *,
    small: bool = False,
    cleaning_minutes: int = 15,
    progress: Progress = print,
) -> dict[str, Any]:
    """Load cinemas, halls, movies, two weeks of shows and the demo accounts; return a summary."""
    # Three days even when small: the browser tests need a dozen shows still ahead at any hour.
    days = 3 if small else 14
    summary: dict[str, Any] = {"cinemas": {}, "movies": {}, "shows": 0, "early_shows": {}}
    with ThreadPoolExecutor(max_workers=4) as pool:
        for region in REGIONS:
            url = f"{api.region_urls[region.code]}/movies"
            movies = [
                api.call("POST", url, json=doc)
                for doc in movie_documents(region.code, count=2 if small else 12)
            ]
            summary["movies"][region.code] = [m["id"] for m in movies]
            for n, spec in enumerate(c for c in cinemas(small=small) if c.region == region.code):
                cinema_id, shows, early = _load_cinema(
                    api, spec, movies, currency=region.currency, days=days,
                    cleaning_minutes=cleaning_minutes, pool=pool, early_show=n == 0,
                )  # fmt: skip
                summary["cinemas"][cinema_id] = spec.city
                summary["shows"] += shows
                if early:
                    summary["early_shows"][region.code] = early
                progress(f"demo: {spec.name} ({spec.city}): {len(spec.halls)} halls, {shows} shows")
    load_people(api, credentials, staff_cinema=next(iter(summary["cinemas"])))
    sell_early_tickets(api, credentials["customer"], list(summary["early_shows"].values()))
    progress("demo: the customer has 2 tickets for an early show in each region (doors open)")
    first = next(iter(summary["cinemas"]))
    summary["onsale"] = announce_onsale(api, first, REGIONS[0].code)
    progress(
        f"demo: on-sale of {summary['onsale']['movie']} (show {summary['onsale']['show_id']})"
        f" opens at {summary['onsale']['opens_at']} through its waiting room"
    )
    return summary
