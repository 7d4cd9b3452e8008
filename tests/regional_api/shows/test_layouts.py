"""A show's layout kept per replica: read once, while every seat status comes from the database.

The apps here run with the show cache off (`show_cache_max_age_ms=0`), so every read is
uncached: whatever a read shows beyond the kept layout was read from PostgreSQL for it.
"""

import json
from datetime import UTC, datetime, timedelta
from typing import NamedTuple

from common.errors import DatabaseUnavailable
from harness.tokens import TestIssuer
from regional_api.shows.layouts import Layout, Layouts, make_facts, make_layout
from schemas.auth import Role
from schemas.catalog import ShowSeatMap
from tests.regional_api.factories import ShowSeed, hold, query, seed_show
from tests.regional_api.shows.conftest import metric, serve

LOADS = "show_layout_loads_total"


def database_map(dsn: str, show_id: str, now: datetime) -> list[dict[str, object]]:
    """The show's seats in grid order as PostgreSQL has them (a lapsed hold is free)."""
    rows = query(
        dsn,
        "SELECT ss.seat_id, se.label, se.row_label, se.number, se.grid_row, se.grid_col,"
        " ss.seat_type, ss.price_minor, ss.status, ss.held_until FROM show_seats ss"
        " JOIN seats se ON se.id = ss.seat_id WHERE ss.show_id = %s ORDER BY grid_row, grid_col",
        show_id,
    )
    names = [*Seat._fields, "status"]
    lapsed = [row[-2] == "held" and row[-1] <= now for row in rows]
    return [
        dict(zip(names, [*row[:-2], "free" if free else row[-2]], strict=True))
        for row, free in zip(rows, lapsed, strict=True)
    ]


def test_the_map_and_the_show_read_agree_with_the_database_in_every_seat_state(
    regional_dsn: str, issuer: TestIssuer, show: ShowSeed
) -> None:
    now = datetime.now(UTC)
    hold(regional_dsn, show, ["A1"], user_id="user-a", now=now)
    hold(regional_dsn, show, ["A2"], user_id="user-b", now=now - timedelta(minutes=11))  # lapsed
    sold = hold(regional_dsn, show, ["B1", "B2"], user_id="user-c", now=now)
    query(
        regional_dsn,
        "UPDATE show_seats SET status = 'sold', held_until = NULL"
        " WHERE reservation_id = %s RETURNING seat_id",
        sold,
    )
    with serve(regional_dsn, issuer, show_cache_max_age_ms=0) as served:
        seat_map = served.seats(show).json()
        read = served.client.get(f"/shows/{show.show_id}").json()
    expected = database_map(regional_dsn, show.show_id, datetime.now(UTC))
    assert seat_map["seats"] == expected
    assert {s["label"]: s["status"] for s in expected} == {
        "A1": "held",
        "A2": "free",
        "A3": "free",
        "A4": "free",
        "A5": "blocked",
        "B1": "sold",
        "B2": "sold",
    }
    assert seat_map["counts"] == {"free": 3, "held": 1, "sold": 2, "blocked": 1}
    assert ShowSeatMap.model_validate(seat_map).show_id == show.show_id
    assert (seat_map["show_status"], seat_map["grid_rows"], seat_map["grid_cols"]) == (
        "scheduled",
        2,
        5,
    )
    assert (read["seat_count"], read["free_seats"]) == (6, 3)


def test_a_replica_reads_a_layout_once_and_seat_statuses_on_every_read(
    regional_dsn: str, issuer: TestIssuer, show: ShowSeed
) -> None:
    with serve(regional_dsn, issuer, show_cache_max_age_ms=0) as served:
        facts, loads = metric(LOADS, "show"), metric(LOADS, "seats")
        assert served.client.get(f"/shows/{show.show_id}").status_code == 200
        assert (metric(LOADS, "show"), metric(LOADS, "seats")) == (facts + 1, loads)  # no seats
        assert served.status(show, "A3") == "free"
        hold(regional_dsn, show, ["A3"], user_id="user-elsewhere", now=datetime.now(UTC))
        assert served.status(show, "A3") == "held"  # taken behind the replica's back
        assert served.hold(show, "A4").status_code == 201  # this replica's own signal
        assert served.status(show, "A4") == "held"
        assert served.client.get(f"/shows/{show.show_id}").json()["free_seats"] == 4
        later = served.app.state.clock
        later.advance(timedelta(minutes=11))  # both holds lapse
        assert (served.status(show, "A3"), served.status(show, "A4")) == ("free", "free")
        assert (metric(LOADS, "show"), metric(LOADS, "seats")) == (facts + 1, loads + 1)


def test_a_new_hall_layout_a_renamed_movie_and_a_canceled_show_show_at_once(
    regional_dsn: str, issuer: TestIssuer
) -> None:
    show = seed_show(regional_dsn, starts_at=datetime.now(UTC) - timedelta(days=2))  # past
    admin = issuer.headers(role=Role.admin)
    path = f"/shows/{show.show_id}"
    with serve(regional_dsn, issuer, show_cache_max_age_ms=0) as served:
        loads = metric(LOADS, "seats")
        before = served.seats(show).json()
        assert (before["grid_rows"], before["grid_cols"]) == (2, 5)
        hall = {"name": "Renamed", "rows": ["AAAAAAA", "_", "PPP"]}
        replaced = served.client.put(f"/halls/{show.hall_id}", json=hall, headers=admin)
        assert replaced.status_code == 200, replaced.text
        after = served.seats(show).json()
        assert (after["grid_rows"], after["grid_cols"]) == (3, 7)  # the new document's grid
        assert after["seats"] == before["seats"]  # the show keeps the seats it was sold with
        assert served.client.get(path).json()["hall_name"] == "Renamed"
        assert metric(LOADS, "seats") == loads + 2  # once, then once for the replaced hall

        renamed = served.client.patch(
            f"/movies/{show.movie_id}", json={"title": "A New Title"}, headers=admin
        )
        assert renamed.status_code == 200, renamed.text
        assert served.client.get(path).json()["movie_title"] == "A New Title"
        query(
            regional_dsn,
            "UPDATE shows SET status = 'canceled' WHERE id = %s RETURNING id",
            show.show_id,
        )
        assert served.seats(show).json()["show_status"] == "canceled"
        assert served.client.get(path).json()["status"] == "canceled"
        assert metric(LOADS, "seats") == loads + 2


def test_two_replicas_render_one_map_with_one_etag(
    regional_dsn: str, issuer: TestIssuer, show: ShowSeed
) -> None:
    hold(regional_dsn, show, ["A1", "B2"], user_id="user-a", now=datetime.now(UTC))
    with (
        serve(regional_dsn, issuer, show_cache_max_age_ms=0) as one,
        serve(regional_dsn, issuer, show_cache_max_age_ms=0) as two,
    ):
        first, second = one.seats(show), two.seats(show)
        assert (first.content, first.headers["etag"]) == (second.content, second.headers["etag"])
        unchanged = two.seats(show, **{"If-None-Match": first.headers["etag"]})
        assert unchanged.status_code == 304


class Show(NamedTuple):
    """A show's row as `queries.layout_rows` reads it."""

    id: str
    hall_id: str
    movie_id: str
    cinema_id: str
    starts_at: datetime
    ends_at: datetime
    currency: str
    prices: dict[str, int]
    hall_changed_at: datetime
    grid_rows: int
    grid_cols: int
    seat_total: int


class Seat(NamedTuple):
    """A seat's row as `queries.layout_rows` reads it."""

    seat_id: int
    label: str
    row_label: str
    number: int
    grid_row: int
    grid_col: int
    seat_type: str
    price_minor: int


def layout_of(show_id: str, changed_at: datetime, label: str = "A1") -> Layout:
    """A layout of two seats, the first labelled `label`."""
    now = datetime.now(UTC)
    show = Show(show_id, "hall", "mov", "cin", now, now, "EUR", {}, changed_at, 1, 1, 2)
    seats = [Seat(7, label, "A", 1, 0, 0, "standard", 900), Seat(3, "A2", "A", 2, 0, 1, "vip", 5)]
    return make_layout(make_facts(show), seats)


class State(NamedTuple):
    """What `queries.show_state` reads that a seat map shows."""

    status: str
    taken: list[int]


def test_a_layout_renders_any_label_and_hashes_its_state() -> None:
    tricky = 'é "status":"free"} \\'  # a label that looks like the end of a seat
    layout = layout_of("show-1", datetime.now(UTC), label=tricky)
    body, etag = layout.seat_map(State("scheduled", [3 * 4 + 2]))  # seat 3 sold
    document = json.loads(body)
    assert [(s["label"], s["status"]) for s in document["seats"]] == [
        (tricky, "free"),
        ("A2", "sold"),
    ]
    assert (document["grid_rows"], document["grid_cols"]) == (1, 2)
    assert document["counts"] == {"free": 1, "held": 0, "sold": 1, "blocked": 0}
    same = layout.seat_map(State("scheduled", [3 * 4 + 2]))
    held = layout.seat_map(State("scheduled", [3 * 4 + 1]))
    canceled = layout.seat_map(State("canceled", [3 * 4 + 2]))
    assert same == (body, etag)
    assert len({etag, held[1], canceled[1]}) == 3


def test_layouts_are_bounded_and_replaced_when_their_hall_changes() -> None:
    changed, later = datetime.now(UTC), datetime.now(UTC) + timedelta(seconds=1)
    layouts = Layouts(max_entries=2)
    for show_id in ("a", "b"):
        layouts.put(layout_of(show_id, changed))
    assert layouts.layout("a", changed) is not None  # "b" is now the least recently used
    layouts.put(layout_of("c", changed))
    assert (len(layouts), layouts.layout("b", changed)) == (2, None)
    assert layouts.layout("c", changed) is not None
    assert layouts.facts("a", later) is None  # read from the hall before its layout changed
    c = layouts.layout("c", changed)
    assert c is not None
    layouts.put(c.facts)  # facts alone never replace the layout they came with
    assert layouts.layout("c", changed) is c


class _Down:
    """A pool whose database is unreachable (its breaker open)."""

    def connection(self) -> None:
        raise DatabaseUnavailable(retry_after=2)


def test_a_read_the_database_cannot_answer_gets_the_error_body_at_once(
    regional_dsn: str, issuer: TestIssuer, show: ShowSeed
) -> None:
    with serve(regional_dsn, issuer, show_cache_max_age_ms=0) as served:
        pool, served.app.state.pool = served.app.state.pool, _Down()
        try:
            for path in (f"/shows/{show.show_id}", f"/shows/{show.show_id}/seats"):
                answer = served.client.get(path)
                assert answer.status_code == 503, answer.text
                assert answer.json()["error"] == "database_unavailable"
                assert answer.headers["retry-after"] == "2"
        finally:
            served.app.state.pool = pool
