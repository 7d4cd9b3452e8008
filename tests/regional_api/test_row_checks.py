"""The database still refuses every bad row whose rule migration 0013 moved (domains, one CHECK).

Each rule of `reservations`, `payments` and `show_seats` that was a CHECK of its own is now a
domain's CHECK, part of one CHECK per table, or a foreign key (docs/benchmarks/floor.md,
"Seventh round (pgclaim)"); each bad row below is written straight to the table.
"""

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from psycopg import errors

from benchmarks.history import load
from common.db import hot_options
from common.ids import new_id
from regional_api.boxoffice import tickets
from tests.regional_api.factories import ShowSeed, hold, query, seed_show

Refusal = type[psycopg.Error]

RESERVATION = {
    "channel": "online",
    "status": "held",
    "hold_expires_at": datetime(2030, 1, 1, tzinfo=UTC),
    "confirmed_at": None,
    "amount_minor": 0,
    "extensions": 0,
    "refund_minor": None,
}
BAD_RESERVATIONS = [
    ({"status": "lost"}, errors.CheckViolation),
    ({"channel": "phone"}, errors.CheckViolation),
    ({"amount_minor": -1}, errors.CheckViolation),
    ({"extensions": -1}, errors.CheckViolation),
    ({"refund_minor": -1}, errors.CheckViolation),
    ({"hold_expires_at": None}, errors.CheckViolation),  # held without a deadline
    ({"status": "confirmed"}, errors.CheckViolation),  # confirmed without a time
]


def _insert_reservation(dsn: str, show: ShowSeed, **columns: object) -> str:
    rid = new_id("res", "eu-west")
    values = RESERVATION | columns
    names = ", ".join(values)
    marks = ", ".join(f"%({name})s" for name in values)
    insert = (
        f"INSERT INTO reservations (id, show_id, cinema_id, currency, created_at, {names})"  # noqa: S608
        f" VALUES (%(id)s, %(show)s, %(cinema)s, 'EUR', now(), {marks})"
    )
    params = values | {"id": rid, "show": show.show_id, "cinema": show.cinema_id}
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(insert, params)
    return rid


def _refused(refusal: Refusal, write: Callable[[], object]) -> None:
    with pytest.raises(refusal):
        write()


@pytest.mark.parametrize(("columns", "refusal"), BAD_RESERVATIONS)
def test_a_bad_reservation_is_refused(
    regional_dsn: str, columns: dict[str, object], refusal: Refusal
) -> None:
    show = seed_show(regional_dsn)
    _insert_reservation(regional_dsn, show)  # the good row goes in
    _refused(refusal, lambda: _insert_reservation(regional_dsn, show, **columns))


def test_an_update_to_a_bad_reservation_is_refused(regional_dsn: str) -> None:
    show = seed_show(regional_dsn)
    rid = _insert_reservation(regional_dsn, show)
    for assignment in ("status = 'lost'", "status = 'confirmed'", "refund_minor = -5"):
        update = f"UPDATE reservations SET {assignment} WHERE id = %s"  # noqa: S608
        with (
            psycopg.connect(regional_dsn, autocommit=True) as conn,
            pytest.raises(errors.CheckViolation),
        ):
            conn.execute(update, (rid,))
    good = "UPDATE reservations SET status = 'confirmed', confirmed_at = now() WHERE id = %s"
    with psycopg.connect(regional_dsn, autocommit=True) as conn:
        conn.execute(good, (rid,))


BAD_PAYMENTS = [
    ("status", "'lost'", "'card'", "100"),
    ("method", "'pending'", "'cheque'", "100"),
    ("amount", "'pending'", "'card'", "-1"),
]


@pytest.mark.parametrize(("rule", "status", "method", "amount"), BAD_PAYMENTS)
def test_a_bad_payment_is_refused(
    regional_dsn: str, rule: str, status: str, method: str, amount: str
) -> None:
    rid = _insert_reservation(regional_dsn, seed_show(regional_dsn))
    insert = (
        "INSERT INTO payments (id, reservation_id, method, status, amount_minor, currency,"
        " created_at) VALUES (%s, %s, {method}, {status}, {amount}, 'EUR', now())"
    )
    with psycopg.connect(regional_dsn, autocommit=True) as conn:
        conn.execute(insert.format(method="'card'", status="'pending'", amount="1"), ("p1", rid))
        bad = insert.format(method=method, status=status, amount=amount)
        _refused(errors.CheckViolation, lambda: conn.execute(bad, (f"p-{rule}", rid)))


SEAT_STATES = [
    # (status, has an owner, has a deadline, allowed)
    ("free", False, False, True),
    ("free", True, False, False),
    ("free", False, True, False),
    ("held", True, True, True),
    ("held", False, True, False),
    ("held", True, False, False),
    ("sold", True, False, True),
    ("sold", False, False, False),
    ("sold", True, True, False),
    ("blocked", False, False, True),
    ("blocked", True, False, False),
    ("blocked", False, True, False),
    ("gone", False, False, False),
]


@pytest.mark.parametrize(("status", "owned", "deadline", "allowed"), SEAT_STATES)
def test_a_seat_is_in_one_of_its_four_states(
    regional_dsn: str, status: str, owned: bool, deadline: bool, allowed: bool
) -> None:
    # The same states ck_show_seats_state allowed, and no other.
    show = seed_show(regional_dsn)
    rid = hold(regional_dsn, show, ["A1"], user_id="user-rows", now=datetime.now(UTC))
    update = (
        "UPDATE show_seats SET status = %s, reservation_id = %s, held_until = %s"
        " WHERE show_id = %s AND seat_id = %s"
    )
    params = (
        status,
        rid if owned else None,
        datetime(2030, 1, 1, tzinfo=UTC) if deadline else None,
    )
    with psycopg.connect(regional_dsn, autocommit=True) as conn:
        args = (*params, show.show_id, show.seats["A2"])
        if allowed:
            conn.execute(update, args)
        else:
            _refused(errors.CheckViolation, lambda: conn.execute(update, args))


@pytest.mark.parametrize(
    ("assignment", "refusal"),
    [
        ("seat_type = 'sofa'", errors.ForeignKeyViolation),
        ("price_minor = -1", errors.CheckViolation),
    ],
)
def test_a_seat_with_a_bad_type_or_price_is_refused(
    regional_dsn: str, assignment: str, refusal: Refusal
) -> None:
    show = seed_show(regional_dsn)
    update = f"UPDATE show_seats SET {assignment} WHERE show_id = %s AND seat_id = %s"  # noqa: S608
    insert = (
        "INSERT INTO show_seats (show_id, seat_id, seat_type, price_minor)"
        " SELECT %s, seat_id, 'sofa', 100 FROM show_seats WHERE show_id = %s LIMIT 1"
    )
    with psycopg.connect(regional_dsn, autocommit=True) as conn:
        _refused(refusal, lambda: conn.execute(update, (show.show_id, show.seats["A1"])))
        other = seed_show(regional_dsn, cinema_id=show.cinema_id)
        _refused(
            errors.ForeignKeyViolation, lambda: conn.execute(insert, (other.show_id, show.show_id))
        )


def test_a_reservations_seat_with_a_negative_price_is_refused(regional_dsn: str) -> None:
    show = seed_show(regional_dsn)
    rid = hold(regional_dsn, show, ["A1"], user_id="user-price", now=datetime.now(UTC))
    update = "UPDATE reservation_seats SET price_minor = -1 WHERE reservation_id = %s"
    with psycopg.connect(regional_dsn, autocommit=True) as conn:
        _refused(errors.CheckViolation, lambda: conn.execute(update, (rid,)))


def test_a_seat_type_in_use_cannot_be_removed(regional_dsn: str) -> None:
    seed_show(regional_dsn)
    with psycopg.connect(regional_dsn, autocommit=True) as conn:
        delete = "DELETE FROM seat_types WHERE code = 'standard'"
        _refused(errors.ForeignKeyViolation, lambda: conn.execute(delete))


def test_a_ticket_code_is_unique_and_a_held_seat_adds_no_entry(regional_dsn: str) -> None:
    show = seed_show(regional_dsn)
    now = datetime.now(UTC)
    first = hold(regional_dsn, show, ["A1", "A2"], user_id="user-codes", now=now)
    second = hold(regional_dsn, show, ["A3"], user_id="user-codes", now=now)
    code = (
        "UPDATE reservation_seats SET ticket_code = %s WHERE reservation_id = %s AND seat_id = %s"
    )
    with psycopg.connect(regional_dsn, autocommit=True) as conn:
        conn.execute(code, ("code-1", first, show.seats["A1"]))
        _refused(
            errors.UniqueViolation, lambda: conn.execute(code, ("code-1", second, show.seats["A3"]))
        )
        conn.execute("VACUUM reservation_seats")  # sets each index's reltuples to its entries
    entries = "SELECT relname, reltuples FROM pg_class WHERE relname LIKE %s ORDER BY relname"
    assert query(regional_dsn, entries, "%reservation_seats_%") == [
        ("reservation_seats_pkey", 3.0),
        ("uq_reservation_seats_ticket_code", 1.0),
    ]


def test_a_ticket_is_still_found_by_its_code_through_the_index(regional_dsn: str) -> None:
    # A code is never NULL in these lookups, so the partial index answers them (generic plans),
    # on a database with a past whose statistics the planner reads.
    params = {"now": datetime.now(UTC), "code": "c", "cinema_id": "cin", "show_id": None}
    params |= {"doors_open": timedelta(hours=1)}
    with psycopg.connect(regional_dsn, **hot_options("test", 5000)) as conn:
        load(conn, reservations=2_000)
        conn.execute("ANALYZE")
        for statement in (tickets._CHECK_IN, tickets._DIAGNOSE):
            plan = "\n".join(row[0] for row in conn.execute("EXPLAIN " + statement, params))
            assert "uq_reservation_seats_ticket_code" in plan, plan


def test_a_fresh_database_plans_a_holds_seat_cap_by_its_index(regional_dsn: str) -> None:
    # Migration 0013 retypes columns; analyzing the empty tables then made every table "known
    # empty", and a connection's first generic plan of the cap's count scanned reservations whole
    # (make bench: PostgreSQL's CPU per hold doubled). Unknown size keeps the index.
    with psycopg.connect(regional_dsn, autocommit=True) as conn:
        unknown = conn.execute(
            "SELECT count(*) FROM pg_class WHERE reltuples < 0"
            " AND relname IN ('reservations', 'payments', 'reservation_seats')"
        ).fetchone()
        conn.execute("SET plan_cache_mode = force_generic_plan")
        conn.execute(
            "PREPARE cap(text, text) AS SELECT count(*) FROM reservations r"
            " JOIN reservation_seats rs ON rs.reservation_id = r.id"
            " WHERE r.user_id = $1 AND r.show_id = $2 AND r.status IN ('held', 'confirmed')"
        )
        plan = "\n".join(row[0] for row in conn.execute("EXPLAIN EXECUTE cap('u', 's')"))
    assert unknown == (3,)
    assert "ix_reservations_show_user" in plan, plan
