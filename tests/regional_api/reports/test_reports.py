"""Reports checked against a known set of sales, holds and refunds (exact figures)."""

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from harness.tokens import TestIssuer
from schemas.auth import Role
from tests.regional_api.factories import (
    GOOD_CARD,
    ShowSeed,
    hold,
    make_cinema,
    make_movie,
    seed_show,
)
from tests.regional_api.served import Live, live_app
from tests.support.db import DatabaseFactory

PARIS = ZoneInfo("Europe/Paris")


@dataclass
class World:
    """Two cinemas, two movies, four shows and their sales; `day` is the first local day."""

    live: Live
    day: date
    cinema: str
    other_cinema: str
    alpha: str
    beta: str
    s1: ShowSeed
    s2: ShowSeed
    s3: ShowSeed


def _local(day: date, hour: int, minute: int = 0) -> datetime:
    return datetime.combine(day, time(hour, minute), tzinfo=PARIS).astimezone(UTC)


def _sell(live: Live, show: ShowSeed, labels: list[str], **extra: Any) -> dict[str, Any]:
    body = {"seat_ids": show.ids(*labels), "method": "cash"} | extra
    response = live.client.post(
        f"/shows/{show.show_id}/sales", json=body, headers=live.issuer.headers(role=Role.admin)
    )
    assert response.status_code == 201, response.text
    result: dict[str, Any] = response.json()
    return result


def _seed_world(live: Live, dsn: str) -> World:
    """S1 (alpha, day 18:00): 3 sold, 1 live hold, 1 lapsed hold; S2 (beta, day 23:30): 2 sold,
    1 sold then refunded, 1 held then canceled unpaid; S3 (alpha, next day 00:30 local, previous day in UTC): 1 sold;
    S4 (alpha, other cinema): 1 vip sold."""
    day = (live.now() + timedelta(days=10)).astimezone(PARIS).date()
    cinema, other_cinema = make_cinema(dsn), make_cinema(dsn)
    alpha, beta = make_movie(dsn, title="Alpha"), make_movie(dsn, title="Beta")
    s1 = seed_show(dsn, cinema_id=cinema, movie_id=alpha, starts_at=_local(day, 18))
    s2 = seed_show(dsn, cinema_id=cinema, movie_id=beta, starts_at=_local(day, 23, 30))
    next_day = day + timedelta(days=1)
    s3 = seed_show(dsn, cinema_id=cinema, movie_id=alpha, starts_at=_local(next_day, 0, 30))
    s4 = seed_show(dsn, cinema_id=other_cinema, movie_id=alpha, starts_at=_local(day, 20))

    hold(dsn, s1, ["A3"], user_id="user-a", now=live.now(), minutes=60)
    hold(dsn, s1, ["A4"], user_id="user-b", now=live.now(), minutes=5)
    live.advance(timedelta(minutes=6))  # the A4 hold lapses: it counts as free
    _sell(live, s1, ["A1", "A2", "B1"])
    _sell(live, s2, ["B1", "B2"], method="card", card_number=GOOD_CARD)
    refunded = _sell(live, s2, ["A1"])
    canceled = live.client.post(
        f"/reservations/{refunded['reservation_id']}/cancel",
        json={"reason": "changed plans"},
        headers=live.issuer.headers(role=Role.admin),
    )
    assert canceled.status_code == 200
    # Canceled before paying: nothing to refund, so no refund in any report.
    unpaid = hold(dsn, s2, ["A2"], user_id="user-c", now=live.now(), minutes=60)
    dropped = live.client.post(
        f"/reservations/{unpaid}/cancel",
        json={"reason": "changed plans"},
        headers=live.issuer.headers(role=Role.admin),
    )
    assert dropped.status_code == 200
    _sell(live, s3, ["A1"])
    _sell(live, s4, ["B1"])
    return World(live, day, cinema, other_cinema, alpha, beta, s1, s2, s3)


@pytest.fixture(scope="module")
def world(regional_databases: dict[str, DatabaseFactory], issuer: TestIssuer) -> Iterator[World]:
    """The seeded world; the tests only read it, so they share one database."""
    with regional_databases["eu-west"].fresh("reports") as dsn, live_app(dsn, issuer) as live:
        yield _seed_world(live, dsn)


def test_show_report_counts_seats_money_and_refunds(world: World) -> None:
    live = world.live
    admin = live.issuer.headers(role=Role.admin)

    s1 = live.client.get(f"/shows/{world.s1.show_id}/report", headers=admin).json()
    s2 = live.client.get(f"/shows/{world.s2.show_id}/report", headers=admin).json()

    assert {k: s1[k] for k in ("capacity", "sold", "held", "free", "blocked")} == {
        "capacity": 6,
        "sold": 3,
        "held": 1,
        "free": 2,
        "blocked": 1,
    }
    assert (s1["occupancy_pct"], s1["revenue_minor"], s1["currency"]) == (50.0, 4500, "EUR")
    assert (s1["refunds_count"], s1["refunds_minor"], s1["movie_title"]) == (0, 0, "Alpha")
    assert s1["by_seat_type"] == [
        {
            "seat_type": "standard",
            "capacity": 4,
            "sold": 2,
            "held": 1,
            "free": 1,
            "revenue_minor": 2000,
        },
        {"seat_type": "vip", "capacity": 2, "sold": 1, "held": 0, "free": 1, "revenue_minor": 2500},
    ]
    assert (s2["sold"], s2["revenue_minor"], s2["refunds_count"], s2["refunds_minor"]) == (
        2,
        5000,
        1,
        1000,
    )
    assert s2["occupancy_pct"] == 33.3


def test_daily_report_groups_by_the_cinema_local_day(world: World) -> None:
    live = world.live
    staff = live.issuer.headers(role=Role.staff, cinemas=(world.cinema,))
    params = {
        "date_from": world.day.isoformat(),
        "date_to": (world.day + timedelta(days=1)).isoformat(),
    }

    report = live.client.get(f"/cinemas/{world.cinema}/reports/daily", params=params, headers=staff)

    assert report.status_code == 200
    body = report.json()
    assert body["timezone"] == "Europe/Paris"
    assert body["days"] == [
        {
            "day": world.day.isoformat(),
            "currency": "EUR",
            "shows": 2,
            "capacity": 12,
            "tickets_sold": 5,
            "occupancy_pct": 41.7,
            "revenue_minor": 9500,
            "refunds_count": 1,
            "refunds_minor": 1000,
        },
        {
            "day": (world.day + timedelta(days=1)).isoformat(),
            "currency": "EUR",
            "shows": 1,
            "capacity": 6,
            "tickets_sold": 1,
            "occupancy_pct": 16.7,
            "revenue_minor": 1000,
            "refunds_count": 0,
            "refunds_minor": 0,
        },
    ]
    first_day_only = params | {"date_to": world.day.isoformat()}
    one = live.client.get(
        f"/cinemas/{world.cinema}/reports/daily", params=first_day_only, headers=staff
    )
    assert [d["day"] for d in one.json()["days"]] == [world.day.isoformat()]


def _movies(world: World, headers: dict[str, str]) -> list[tuple[str, int, int, int, int]]:
    params = {
        "date_from": world.day.isoformat(),
        "date_to": (world.day + timedelta(days=1)).isoformat(),
    }
    response = world.live.client.get("/reports/movies", params=params, headers=headers)
    assert response.status_code == 200
    return [
        (m["title"], m["shows"], m["tickets_sold"], m["revenue_minor"], m["refunds_minor"])
        for m in response.json()["movies"]
    ]


def test_movie_report_limits_staff_to_their_cinemas(world: World) -> None:
    issuer = world.live.issuer

    admin = _movies(world, issuer.headers(role=Role.admin))
    staff = _movies(world, issuer.headers(role=Role.staff, cinemas=(world.cinema,)))
    other = _movies(world, issuer.headers(role=Role.staff, cinemas=(world.other_cinema,)))

    assert admin == [("Alpha", 3, 5, 8000, 0), ("Beta", 1, 2, 5000, 1000)]
    assert staff == [("Alpha", 2, 4, 5500, 0), ("Beta", 1, 2, 5000, 1000)]
    assert other == [("Alpha", 1, 1, 2500, 0)]


def test_reports_refuse_customers_foreign_staff_and_bad_ranges(world: World) -> None:
    live = world.live
    customer = live.issuer.headers()
    foreign = live.issuer.headers(role=Role.staff, cinemas=(world.other_cinema,))
    admin = live.issuer.headers(role=Role.admin)
    show_url = f"/shows/{world.s1.show_id}/report"
    daily_url = f"/cinemas/{world.cinema}/reports/daily"

    def status(url: str, headers: dict[str, str] | None = None, **params: str) -> tuple[int, str]:
        response = live.client.get(url, params=params, headers=headers)
        return response.status_code, response.json().get("error", "")

    assert status(show_url)[0] == 401
    assert status(show_url, customer)[0] == 403
    assert status(show_url, foreign)[0] == 403
    assert status(daily_url, customer)[0] == 403
    assert status(daily_url, foreign)[0] == 403
    assert status("/reports/movies", customer)[0] == 403
    assert status("/shows/show-eu-west-000000000000/report", admin) == (404, "show_not_found")
    assert status(daily_url, admin, date_from="2026-02-01", date_to="2026-01-01") == (
        422,
        "invalid_date_range",
    )
    assert status("/reports/movies", admin, date_from="2025-01-01", date_to="2026-01-02") == (
        422,
        "date_range_too_long",
    )
    assert status("/reports/movies", admin, date_from="9999-12-31") == (422, "invalid_date_range")
    assert status(daily_url, admin, date_from="yesterday")[0] == 422
    assert status(daily_url, admin)[0] == 200
    assert status("/reports/movies", admin, date_to="0001-01-01")[0] == 422
