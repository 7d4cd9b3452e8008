"""The demo loader: sends the dataset's documents through the public HTTP APIs, once."""

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx

from deploy.local.dataset import (
    CINEMAS,
    DEMO_CARD,
    CinemaSpec,
    cinema_document,
    cinemas,
    early_show_start,
    hall_document,
    movie_documents,
    onsale_opens_at,
    prices,
    region_documents,
    schedule,
    seat_types,
)
from deploy.local.topology import REGIONS

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
    opens_at = onsale_opens_at(datetime.now(UTC))
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
