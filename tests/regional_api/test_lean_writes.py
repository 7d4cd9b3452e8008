"""What a hold and a payment's open write, row by row (migration 0009, `OPEN_PAYMENT`).

PostgreSQL's CPU per hold and payment grows with every row version, index entry, WAL record and
foreign-key check a statement makes (docs/benchmarks/floor.md, "PostgreSQL CPU per hold and
payment"); these tests pin the ones removed, and the rules kept, without timing anything.
"""

from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from common.ids import new_id
from regional_api.payments import statements as pay_sql
from regional_api.reservations import statements as hold_sql
from tests.regional_api.factories import hold, make_cinema, query, seed_show

VERSIONS = """
SELECT xmin::text, held_until FROM show_seats WHERE show_id = %s ORDER BY seat_id
"""


def _open(dsn: str, rid: str, now: datetime, guard: datetime) -> None:
    params = {"rid": rid, "pid": new_id("pay", "eu-west"), "method": "card", "now": now}
    params |= {"guard": guard, "payer": "user-pay", "admin": False, "cinemas": []}
    with psycopg.connect(dsn, autocommit=True) as conn:
        opened = conn.execute(pay_sql.OPEN_PAYMENT, params).fetchone()
    assert opened is not None
    assert opened[9:12] == (True, True, True)  # allowed, cash_ok, sellable


def test_paying_a_live_hold_rewrites_neither_its_seats_nor_its_reservation(
    regional_dsn: str,
) -> None:
    show = seed_show(regional_dsn)
    now = datetime.now(UTC)
    rid = hold(regional_dsn, show, ["A1", "A2"], user_id="user-pay", now=now)
    seats = query(regional_dsn, VERSIONS, show.show_id)
    held = query(regional_dsn, "SELECT xmin::text FROM reservations WHERE id = %s", rid)

    _open(regional_dsn, rid, now, guard=now + timedelta(seconds=65))

    assert query(regional_dsn, VERSIONS, show.show_id) == seats
    assert query(regional_dsn, "SELECT xmin::text FROM reservations WHERE id = %s", rid) == held


def test_a_hold_ending_before_the_guard_is_still_extended_to_it(regional_dsn: str) -> None:
    show = seed_show(regional_dsn)
    now = datetime.now(UTC)
    rid = hold(regional_dsn, show, ["A1"], user_id="user-pay", now=now, minutes=1)
    guard = now + timedelta(minutes=5)

    _open(regional_dsn, rid, now, guard=guard)

    seats = "SELECT held_until FROM show_seats WHERE reservation_id = %s"
    assert query(regional_dsn, seats, rid) == [(guard,)]
    deadline = "SELECT status, hold_expires_at FROM reservations WHERE id = %s"
    assert query(regional_dsn, deadline, rid) == [("held", guard)]


def test_a_reservation_is_in_its_shows_cinema(regional_dsn: str) -> None:
    # One foreign key on (show, cinema) replaced one per column: it checks the pair.
    show = seed_show(regional_dsn)
    elsewhere = make_cinema(regional_dsn, region="eu-west")
    insert = (
        "INSERT INTO reservations (id, show_id, cinema_id, channel, status, hold_expires_at,"
        " amount_minor, currency, created_at) VALUES (%s, %s, %s, 'online', 'held',"
        " now() + interval '10 minutes', 0, 'EUR', now())"
    )
    with (
        psycopg.connect(regional_dsn, autocommit=True) as conn,
        pytest.raises(psycopg.errors.ForeignKeyViolation),
    ):
        conn.execute(insert, (new_id("res", "eu-west"), show.show_id, elsewhere))
    with psycopg.connect(regional_dsn, autocommit=True) as conn:
        conn.execute(insert, (new_id("res", "eu-west"), show.show_id, show.cinema_id))


def test_the_seat_caps_count_reads_the_customers_reservations_in_the_show(
    regional_dsn: str,
) -> None:
    # Not every reservation of the show intersected with every one of the customer's: during an
    # on-sale that was thousands of index entries per hold (claim_seats counts the same way).
    show = seed_show(regional_dsn)
    now = datetime.now(UTC)
    for label in ("A1", "A2", "A3"):
        hold(regional_dsn, show, [label], user_id=f"user-{label}", now=now)
    params = {"user_id": "user-A1", "show_id": show.show_id, "now": now}
    with psycopg.connect(regional_dsn, autocommit=True) as conn:
        conn.execute("ANALYZE reservations")
        conn.execute("SET enable_seqscan = off")
        plan = "\n".join(row[0] for row in conn.execute("EXPLAIN " + hold_sql.ACTIVE_SEATS, params))
    assert "ix_reservations_show_user" in plan
    assert "BitmapAnd" not in plan
