"""The plans of the hot and report statements, on a database with a past (benchmarks.history).

Timings never decide these tests: what PostgreSQL plans does. A hot statement keeps one
generic plan per connection (no planning per call), and no statement reads a whole table that
grows with history.
"""

from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import psycopg
import pytest

from benchmarks import plans
from benchmarks.history import History, load
from common.db import hot_options
from regional_api.reports import service as reports
from regional_api.reservations import queries as reservation_queries
from regional_api.shows import queries as show_queries
from tests.support.db import DatabaseFactory

ROUNDS = 8


@pytest.fixture(scope="module")
def history_dsn(regional_databases: dict[str, DatabaseFactory]) -> Iterator[str]:
    """One regional database with 6,000 past reservations, shared by this module's tests."""
    with regional_databases["us-east"].fresh("plans") as dsn:
        yield dsn


@pytest.fixture(scope="module")
def history(history_dsn: str) -> History:
    """Load the past and look up the seats the write statements claim."""
    with psycopg.connect(history_dsn, autocommit=True) as conn:
        loaded = load(conn, reservations=6_000)
        plans.prepare(conn, loaded)
    return loaded


HOT_READS = {
    "show read, seat map: state",
    "show facts",
    "seat map layout",
    "my reservations, first page",
    "my reservations, next page",
    "reservation details",
}


def test_the_hot_reads_are_checked_as_hot_statements() -> None:
    # They run on the hot pool (generic plans), so the tests below must cover them.
    assert HOT_READS - {case.name for case in plans.HOT} == set()


# Pieces of statements, checked inside the statements that use them; the show listing's
# statement is built per request from _SHOW_SELECT and its filters.
FRAGMENTS = {"_PER_SHOW", "_FREE", "_SHOW_SELECT"}


def test_every_report_and_read_statement_is_a_case() -> None:
    # A statement added to these modules without a case would escape the plan tests below.
    cases = {case.sql for case in (*plans.HOT, *plans.REPORT, *plans.BACKGROUND)}
    missing = [
        f"{module.__name__}.{name}"
        for module in (reports, reservation_queries, show_queries)
        for name, value in vars(module).items()
        if name.isupper() or (name.startswith("_") and name[1:].isupper())
        if isinstance(value, str) and name not in FRAGMENTS
        if plans.psycopg_sql(value) not in cases
    ]
    assert missing == []


def test_hot_statements_keep_one_generic_plan(history_dsn: str, history: History) -> None:
    with psycopg.connect(history_dsn, **hot_options("test", 5000)) as conn:
        counts = plans.prepared_plans(conn, history, rounds=ROUNDS)
    assert set(counts) == {case.name for case in plans.HOT}
    replanned = {name: c for name, c in counts.items() if c != (ROUNDS, 0)}
    assert replanned == {}, "(generic, custom) plans of statements planned per call"


def test_nothing_inside_claim_seats_is_planned_per_call(history_dsn: str, history: History) -> None:
    with psycopg.connect(history_dsn, **hot_options("test", 5000)) as conn:
        try:
            planned = plans.statement_plans(conn, history, rounds=ROUNDS)
        except psycopg.errors.ObjectNotInPrerequisiteState:
            pytest.skip("pg_stat_statements is not loaded on this server")
    nested = [p for p in planned if not p.toplevel]
    assert any("claimed AS" in p.query for p in nested), "claim_seats' statement not seen"
    # At most one plan per ROUNDS calls: a foreign-key check's text is shared by every
    # constraint that references the same table, and each constraint plans it once.
    replanned = [(p.query[:60], p.calls, p.plans) for p in planned if p.plans * ROUNDS > p.calls]
    assert replanned == []


@pytest.mark.parametrize(
    "case", [*plans.HOT, *plans.REPORT, *plans.BACKGROUND], ids=lambda case: case.name
)
def test_no_statement_reads_a_growing_table_whole(
    history_dsn: str, history: History, case: plans.Case
) -> None:
    # With sequential scans priced out, one is still chosen only when nothing else can answer:
    # a missing index or a query that must read everything, whatever the table's size.
    with psycopg.connect(history_dsn, autocommit=True) as conn:
        conn.execute("SET enable_seqscan = off")
        explained = {e.name: e for e in plans.explain(conn, history, analyze=False)}
    assert explained[case.name].seq_scans == ()


# Tables with thousands of rows here (shows and seats have a few hundred, where a sequential
# scan is the planner's right choice).
LARGE_HERE = frozenset({"reservations", "reservation_seats", "payments", "refunds", "show_seats"})


@pytest.mark.parametrize(
    "case", [*plans.HOT, *plans.REPORT, *plans.BACKGROUND], ids=lambda case: case.name
)
def test_the_planner_reads_no_large_table_whole(
    history_dsn: str, history: History, case: plans.Case
) -> None:
    # As the service runs them (sequential scans allowed): with thousands of rows, a statement
    # that has an index to use prefers it, so a whole read here means there is none.
    with psycopg.connect(history_dsn, autocommit=True) as conn:
        explained = {e.name: e for e in plans.explain(conn, history, analyze=False)}
    assert set(explained[case.name].seq_scans) & LARGE_HERE == set()


def test_a_hold_its_extension_and_its_release_touch_no_index(
    history_dsn: str, history: History
) -> None:
    # No index covers a column these updates change and each page keeps room for the next
    # versions (migration 0007): every seat update is HOT, and the primary key stays its size.
    # Another future show than the other tests', whose rolled-back writes fill its pages.
    show = replace(history, future_show=f"show-us-east-hist{history.shows + 10}")
    cases = {case.name: case for case in plans.HOT}
    with psycopg.connect(history_dsn, autocommit=True) as conn:
        plans.prepare(conn, show)
        now = datetime.now(UTC)
        with conn.transaction(force_rollback=True):
            for name in ("claim", "extend", "release"):
                conn.execute(cases[name].sql, cases[name].params(show, now))
            row = conn.execute(  # this transaction's own counts
                "SELECT n_tup_upd, n_tup_hot_upd FROM pg_stat_xact_user_tables"
                " WHERE relname = 'show_seats'"
            ).fetchone()
    assert row == (6, 6)


def _unbounded_index_scans(node: dict[str, Any]) -> Iterator[str]:
    """Every index a plan scans without a condition, partial ones included."""
    if node.get("Node Type") in {"Index Scan", "Index Only Scan"} and "Index Cond" not in node:
        yield str(node.get("Index Name"))
    for child in node.get("Plans", []):
        yield from _unbounded_index_scans(child)


@pytest.mark.parametrize("case", plans.HOT, ids=lambda case: case.name)
def test_a_hot_statements_generic_plan_reads_every_index_by_a_key(
    history_dsn: str, history: History, case: plans.Case
) -> None:
    # A partial index is no bound on a hot path: the unsettled payments' index holds every
    # payment in flight (and the dead entries of the settled ones until a vacuum), and a settle
    # whose status test proved its predicate scanned all of it for one payment (migration 0014).
    text, names = plans.numbered(case.sql)
    params = case.params(history, datetime.now(UTC))
    with psycopg.connect(history_dsn, autocommit=True) as conn:
        cursor = psycopg.ClientCursor(conn)
        with conn.transaction(force_rollback=True):
            conn.execute("SET LOCAL plan_cache_mode = force_generic_plan")
            conn.execute(f"PREPARE probe AS {text}".encode())
            args = ", ".join(["%s"] * len(names))
            cursor.execute(
                f"EXPLAIN (FORMAT JSON) EXECUTE probe({args})".encode(), [params[n] for n in names]
            )
            plan = plans.as_plan(cursor.fetchone())
    assert list(_unbounded_index_scans(plan["Plan"])) == []


def test_a_hold_reads_no_table_whole_inside_claim_seats(history_dsn: str, history: History) -> None:
    # Every statement of a hold looks rows up by a key; on a small catalog the planner read
    # `shows` and `movies` whole for them, and for the reservation's foreign-key check of its
    # show (migration 0014 turns sequential scans off for the function). auto_explain shows the
    # nested statements' plans, the foreign-key check's included.
    case = next(case for case in plans.HOT if case.name == "claim")
    notices: list[str] = []
    with psycopg.connect(history_dsn, **hot_options("test", 5000)) as conn:
        conn.add_notice_handler(lambda diagnostic: notices.append(diagnostic.message_primary or ""))
        conn.execute("LOAD 'auto_explain'")
        for setting in ("log_min_duration = 0", "log_nested_statements = on", "log_level = notice"):
            conn.execute(f"SET auto_explain.{setting}")
        with conn.transaction(force_rollback=True):
            rows = conn.execute(case.sql, case.params(history, datetime.now(UTC))).fetchall()
    assert {row[0] for row in rows} == {True}, "the probe's claim was refused"
    assert any("Update on show_seats" in n for n in notices), "no plan of claim_seats seen"
    assert [n for n in notices if "Seq Scan" in n] == []
