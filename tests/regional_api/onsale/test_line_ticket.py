"""Line tickets: a poll that shows one is answered from the replica's counters, not the database."""

import dataclasses
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import psycopg
import pytest
from prometheus_client import REGISTRY

from regional_api.onsale import passes, rooms, service
from regional_api.onsale.rooms import REFRESH_SECONDS, STALE_SECONDS, Line
from tests.regional_api.factories import ShowSeed, seed_show
from tests.regional_api.onsale.test_waiting_room import (
    PASS,
    announce,
    buy_every_seat,
    customer,
    join,
)
from tests.regional_api.served import Live
from tests.support.poll import wait_until

TICKET = "X-Line-Ticket"


def poll(live: Live, show: ShowSeed, n: int | str, ticket: str | bytes | None) -> Any:
    """GET the caller's place, showing `ticket`; the body with its HTTP status."""
    headers: dict[str, Any] = customer(live, n)
    if ticket is not None:
        headers[TICKET] = ticket
    answer = live.client.get(f"/shows/{show.show_id}/line", headers=headers)
    return {**answer.json(), "http": answer.status_code}


def answered(by: str) -> float:
    """Polls answered so far by the replica's counters ('memory') or the database."""
    return REGISTRY.get_sample_value("onsale_line_polls_total", {"answered": by}) or 0.0


def place_reads(dsn: str) -> int | None:
    """Calls of the statement that reads a customer's place, by pg_stat_statements (if loaded)."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        try:
            conn.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
            row = conn.execute(
                "SELECT coalesce(sum(calls), 0) FROM pg_stat_statements"
                " WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())"
                " AND query LIKE %s",
                ("%LEFT JOIN line_entries e%",),
            ).fetchone()
        except psycopg.errors.ObjectNotInPrerequisiteState:
            return None  # this server's build does not load it: the metric still counts
    return int(row[0]) if row else 0


def counted(live: Live, show: ShowSeed) -> None:
    """Wait until the replica's counters know the show's waiting room."""
    wait_until(lambda: live.app.state.waiting_rooms.fresh(show.show_id) is not None)


def test_a_poll_with_a_ticket_needs_no_database_statement(
    live: Live, show: ShowSeed, regional_dsn: str
) -> None:
    announce(live, show, opens_in=timedelta(hours=1))
    first = join(live, show, 1)
    assert first["line_ticket"]
    assert first["poll_after_seconds"] > 0
    counted(live, show)
    # A reading taken between the announcement and the join does not count the customer yet.
    rooms = live.app.state.waiting_rooms
    wait_until(lambda: rooms.fresh(show.show_id) is not None and rooms.lines[show.show_id].waiting)
    memory, database, reads = answered("memory"), answered("database"), place_reads(regional_dsn)

    for _ in range(5):
        again = poll(live, show, 1, first["line_ticket"])
        assert (again["http"], again["state"], again["line_length"]) == (200, "waiting", 1)
    traced = customer(live, 1) | {TICKET: first["line_ticket"], "X-Request-Id": "poll-1"}
    answer = live.client.get(f"/shows/{show.show_id}/line", headers=traced)
    assert answer.headers["x-request-id"] == "poll-1"  # the router's request id comes back

    assert (answered("memory") - memory, answered("database") - database) == (6, 0)
    if reads is not None:
        assert place_reads(regional_dsn) == reads
    # Without a ticket (a new tab) the database answers, with the customer's ticket.
    fresh = poll(live, show, 1, None)
    assert fresh["line_ticket"] == first["line_ticket"]
    assert fresh == again  # the same answer, whoever gives it
    assert answered("database") - database == 1


def test_a_forged_or_another_customers_ticket_is_refused(
    live: Live, show: ShowSeed, regional_dsn: str
) -> None:
    announce(live, show, opens_in=timedelta(hours=1))
    mine = join(live, show, 1)["line_ticket"]
    join(live, show, 2)
    other = seed_show(regional_dsn)
    announce(live, other, opens_in=timedelta(hours=1))
    join(live, other, 1)
    counted(live, show)
    counted(live, other)

    rank, _, signature = mine.partition(".")
    for ticket in (
        "1." + signature,  # another rank under the same signature
        f"{rank}.forged",
        "garbage",
        "-.é".encode("latin-1"),  # a byte no signature has
    ):
        refused = poll(live, show, 1, ticket)
        assert (refused["http"], refused["error"]) == (403, "line_ticket_invalid"), ticket
    assert poll(live, show, 2, mine)["error"] == "line_ticket_invalid"  # another customer's
    assert poll(live, other, 1, mine)["error"] == "line_ticket_invalid"  # another show's
    assert poll(live, show, 1, mine)["http"] == 200


def test_a_pass_with_a_byte_no_signature_has_is_refused_not_a_500(
    live: Live, show: ShowSeed
) -> None:
    announce(live, show, opens_in=timedelta(hours=1))
    counted(live, show)
    headers: dict[str, Any] = customer(live, 1) | {PASS: "99999999999.é".encode("latin-1")}
    answer = live.client.post(
        f"/shows/{show.show_id}/holds", json={"seat_ids": show.ids("A1")}, headers=headers
    )
    assert (answer.status_code, answer.json()["reason"]) == (403, "forged")


def test_the_draw_comes_from_memory_and_the_pass_from_the_database(
    live: Live, show: ShowSeed
) -> None:
    # The opening's batch is half an admission: the first comes 2 s after the draw (6 s at 0.5).
    announce(live, show, opens_in=timedelta(seconds=30), rate=1.0)
    early = join(live, show, 1)["line_ticket"]
    key = int(early.split(".")[0])
    assert 0 < key < passes.LATER  # numbered by its draw key already, before the draw
    counted(live, show)
    assert poll(live, show, 1, early)["position"] is None

    live.advance(timedelta(seconds=31))  # the opening: the admitter draws the line
    database = answered("database")
    # Each replica reads the draw once (one statement), then answers early tickets with it.
    wait_until(lambda: show.show_id in live.app.state.waiting_rooms.draws)
    drawn = poll(live, show, 1, early)
    assert (drawn["state"], drawn["position"]) == ("waiting", 1)
    assert drawn["line_ticket"] == early  # the same number: nothing to learn at the draw
    assert answered("database") == database
    wait_until(lambda: poll(live, show, 1, drawn["line_ticket"])["state"] == "admitted")
    admitted = poll(live, show, 1, drawn["line_ticket"])  # the pass: from the database
    assert admitted["admission_pass"]
    assert admitted["line_ticket"] is None
    assert answered("database") > database


def test_sold_out_reaches_a_waiting_ticket_from_the_counters(live: Live, show: ShowSeed) -> None:
    announce(live, show, opens_in=timedelta(seconds=-1), rate=20.0)
    for n in range(10):
        join(live, show, n)
    counted(live, show)
    wait_until(lambda: poll(live, show, 0, None)["state"] == "admitted")
    waiting = poll(live, show, 9, None)
    assert waiting["state"] == "waiting"
    buy_every_seat(live, show, poll(live, show, 0, None)["admission_pass"])
    database = answered("database")

    # The counters are read every REFRESH_SECONDS; a waiting customer's poll says sold out
    # from them, with no database statement (timing is not asserted: the machine is shared).
    wait_until(lambda: poll(live, show, 9, waiting["line_ticket"])["state"] == "sold_out")
    assert answered("database") == database
    assert REFRESH_SECONDS <= 0.5
    assert STALE_SECONDS <= 1.5


@pytest.mark.parametrize(
    ("opened", "sell_rate", "expected"),
    [
        (True, 300.0, service.POLL_MIN_SECONDS),  # every unsold seat may go within a second
        (True, 1.0, service.POLL_OPEN_MAX_SECONDS),  # they last minutes: far back polls rarely
        (True, 0.0, service.POLL_UNKNOWN_SECONDS),  # open, nothing sold yet
        (False, 0.0, service.POLL_MAX_SECONDS),  # (a drawn line before its opening)
    ],
)
def test_waiting_customers_are_told_to_poll_sooner_when_the_seats_may_go(
    opened: bool, sell_rate: float, expected: float
) -> None:
    now = datetime.now(UTC)
    line = Line(
        opens_at=now + timedelta(seconds=-5 if opened else 5),
        shuffled=True,
        early_count=0,
        next_rank=5000,
        admitted_through=100,
        admit_rate=10.0,
        max_admit_per_second=20.0,
        sold_out=False,
        unsold=300,
        sell_rate=sell_rate,
        read_at=0.0,
    )
    status = service.place_from_line(line, show_id="s", rank=4000, ticket="t", now=now)
    assert status is not None
    assert status.position == 3900
    assert status.poll_after_seconds == expected


def test_the_rate_seats_go_at_decays_by_time_not_by_reading() -> None:
    now = datetime.now(UTC)
    counters = SimpleNamespace(
        opens_at=now, shuffled=True, early_count=0, next_rank=10, admitted_through=5,
        admit_rate=1.0, max_admit_per_second=20.0, sold_out_at=None, unsold=100, admitted_mark=0,
    )  # fmt: skip
    peak = rooms._line(counters, None, read_at=0.0)
    peak = dataclasses.replace(peak, sell_rate=40.0)
    # Read more often than DECAY_SECONDS, nothing sold: the rate falls by the time gone.
    later = rooms._line(counters, peak, read_at=REFRESH_SECONDS)
    assert later.sell_rate == pytest.approx(40.0 * rooms.DECAY ** (REFRESH_SECONDS / 0.5))
    assert STALE_SECONDS >= 5 * REFRESH_SECONDS  # a replica late by a few readings still answers


def test_the_counters_are_read_often_only_while_customers_wait_in_a_moving_line() -> None:
    now = datetime.now(UTC)
    counters = SimpleNamespace(
        opens_at=now - timedelta(seconds=5), shuffled=True, early_count=0, next_rank=10,
        admitted_through=5, admit_rate=1.0, max_admit_per_second=20.0, sold_out_at=None,
        unsold=100, admitted_mark=0,
    )  # fmt: skip
    line = rooms._line(counters, None, read_at=0.0)
    assert rooms.next_refresh({"s": line}, now) == REFRESH_SECONDS
    assert rooms.next_refresh({}, now) == rooms.IDLE_REFRESH_SECONDS
    everyone_in = dataclasses.replace(line, admitted_through=10)
    assert rooms.next_refresh({"s": everyone_in}, now) == rooms.IDLE_REFRESH_SECONDS
    gone = dataclasses.replace(line, sold_out=True)
    assert rooms.next_refresh({"s": gone}, now) == rooms.IDLE_REFRESH_SECONDS
    early = dataclasses.replace(line, shuffled=False, early_count=50)
    later = dataclasses.replace(early, opens_at=now + timedelta(minutes=5))
    assert rooms.next_refresh({"s": later}, now) == rooms.IDLE_REFRESH_SECONDS
    opening = dataclasses.replace(early, opens_at=now + timedelta(seconds=0.5))
    assert rooms.next_refresh({"s": opening}, now) == REFRESH_SECONDS
    assert rooms.IDLE_REFRESH_SECONDS <= 0.5  # an announced on-sale takes effect within it
