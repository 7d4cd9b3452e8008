"""The hot and report statements with realistic parameters, and what EXPLAIN says of them.

Shared by the data-growth benchmark (`benchmarks/growth.py`) and the plan tests
(`tests/regional_api/test_plans.py`): each `Case` is the statement the code runs, taken from
its module, with the parameters of a real call on a database loaded by `benchmarks.history`.
Write statements run inside a transaction that the caller rolls back.
"""

import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
from sqlalchemy import TextClause
from sqlalchemy.dialects.postgresql import psycopg as sqlalchemy_psycopg

from benchmarks.history import History
from regional_api.payments import statements as pay_sql
from regional_api.reports import service as reports
from regional_api.reservations import queries as reservation_queries
from regional_api.reservations import statements as hold_sql
from regional_api.shows import queries as show_queries

# Tables whose size follows the history: a sequential scan of one costs more every day.
GROWING = frozenset(
    {"reservations", "reservation_seats", "payments", "refunds", "show_seats", "shows", "seats"}
)
RID = "res-us-east-planprobe01"
PID = "pay-us-east-planprobe01"


@dataclass(frozen=True)
class Case:
    """One statement as the code runs it: `kind` hot or report."""

    name: str
    kind: str
    sql: bytes
    params: Callable[[History, datetime], dict[str, Any]]


_PSYCOPG = sqlalchemy_psycopg.dialect()  # type: ignore[no-untyped-call]


def psycopg_sql(statement: str | TextClause) -> bytes:
    """A statement constant (psycopg's %(name)s form or a SQLAlchemy text()) as psycopg bytes."""
    if isinstance(statement, str):
        return statement.encode()
    return str(statement.compile(dialect=_PSYCOPG)).encode()


def _claim(h: History, now: datetime) -> dict[str, Any]:
    return {
        "show_id": h.future_show,
        "seat_ids": _seat_ids(h),
        "rid": RID,
        "user_id": "user-probe",
        "email": "probe@example.com",
        "channel": "online",
        "now": now,
        "deadline": now + timedelta(minutes=10),
        "cap": 10,
    }


_SEATS: dict[str, list[int]] = {}


def _seat_ids(h: History) -> list[int]:
    return _SEATS.get(h.future_show, [])


def _open(h: History, now: datetime) -> dict[str, Any]:
    return {
        "rid": RID,
        "pid": PID,
        "method": "card",
        "now": now,
        "guard": now + timedelta(minutes=2),
        "payer": "user-probe",
        "admin": False,
        "cinemas": [],
    }


def _settle(h: History, now: datetime) -> dict[str, Any]:
    codes = [f"code-{i}" for i in range(2)]
    return {"rid": RID, "pid": PID, "show_id": h.future_show, "codes": codes, "now": now}


# The Idempotency-Key a keyed statement carries (the web client sends one with every write).
_KEY = {"scope": "user-probe", "key": "probe-key", "hash": "probe-hash"}


def _report(h: History, now: datetime) -> dict[str, Any]:
    today = now.date()
    return {
        "cinema_id": h.cinema_id,
        "tz": h.timezone,
        "date_from": today - timedelta(days=30),
        "date_to": today - timedelta(days=1),
    }


def _show(h: History, now: datetime) -> dict[str, Any]:
    return {"show_id": h.future_show, "now": now}


def _past_show(h: History, now: datetime) -> dict[str, Any]:
    return {"show_id": "show-us-east-hist0", "now": now}


def _user_page(h: History, now: datetime) -> dict[str, Any]:
    return {"user_id": h.heavy_user, "cinemas": None, "limit": 51, "offset": 0}


HOT = (
    Case("claim", "hot", psycopg_sql(hold_sql.CLAIM), _claim),
    Case("best-available seat map", "hot", psycopg_sql(hold_sql.SEAT_MAP), _show),
    Case("pay: open", "hot", psycopg_sql(pay_sql.OPEN_PAYMENT), _open),
    Case(
        "pay: settle",
        "hot",
        psycopg_sql(pay_sql.SETTLE),
        lambda h, now: _settle(h, now) | {"ref": "r"},
    ),
    Case(
        "claim, keyed",
        "hot",
        psycopg_sql(hold_sql.CLAIM_KEYED),
        lambda h, now: _claim(h, now) | _KEY,
    ),
    Case(
        "pay: open, keyed",
        "hot",
        psycopg_sql(pay_sql.OPEN_PAYMENT_KEYED),
        lambda h, now: _open(h, now) | _KEY,
    ),
    Case(
        "pay: settle, keyed",
        "hot",
        psycopg_sql(pay_sql.SETTLE_KEYED),
        lambda h, now: _settle(h, now) | {"ref": "r"} | _KEY,
    ),
    Case(
        "extend",
        "hot",
        psycopg_sql(hold_sql.MOVE_DEADLINE),
        lambda h, now: {"show_id": h.future_show, "rid": RID, "deadline": now},
    ),
    Case("release", "hot", psycopg_sql(hold_sql.FREE), lambda h, now: _show(h, now) | {"rid": RID}),
    Case("show read, seat map: state", "hot", psycopg_sql(show_queries._SHOW_STATE), _show),
    Case("show facts", "hot", psycopg_sql(show_queries._LAYOUT_SHOW), _show),
    Case("seat map layout", "hot", psycopg_sql(show_queries._LAYOUT_SEATS), _show),
    Case(
        "my reservations, first page",
        "hot",
        psycopg_sql(reservation_queries._USER_PAGE),
        _user_page,
    ),
    Case(
        "my reservations, next page",
        "hot",
        psycopg_sql(reservation_queries._USER_PAGE_BEFORE),
        lambda h, now: _user_page(h, now) | {"before_at": now, "before_id": RID},
    ),
    Case(
        "reservation details",
        "hot",
        psycopg_sql(reservation_queries._DETAILS),
        lambda h, now: {"ids": [RID]},
    ),
)

REPORT = (
    Case("cinema report, 30 days", "report", psycopg_sql(reports._DAILY), _report),
    Case("show report: seats", "report", psycopg_sql(reports._SHOW_SEATS), _past_show),
    Case("show report: refunds", "report", psycopg_sql(reports._SHOW_REFUNDS), _past_show),
    Case("show report: header", "report", psycopg_sql(reports._SHOW_HEADER), _past_show),
    Case(
        "a show's reservations, first page",
        "report",
        psycopg_sql(reservation_queries._SHOW_PAGE),
        lambda h, now: _past_show(h, now) | {"status": None, "limit": 50, "offset": 0},
    ),
    # Not hot since the layouts (a new show's answer); kept flat as history grows all the same.
    Case("show read, one show", "report", psycopg_sql(show_queries._READ_SHOW), _show),
    Case(
        "movie report, 30 days, one cinema",
        "report",
        psycopg_sql(reports._MOVIES),
        lambda h, now: _report(h, now) | {"cinema_ids": [h.cinema_id]},
    ),
)

# Statements of the sweeper and of a failed counter sale: not per request, but they find a
# reservation's seats, which must not mean reading every seat ever sold.
BACKGROUND = (
    Case(
        "sweeper: free lapsed seats",
        "background",
        psycopg_sql(hold_sql.FREE_LAPSED),
        lambda h, now: {"ids": [RID], "now": now},
    ),
    Case(
        "counter sale dropped",
        "background",
        psycopg_sql(pay_sql.DROP_SALE),
        lambda h, now: {"rid": RID, "now": now},
    ),
)


def prepare(conn: psycopg.Connection, history: History) -> None:
    """Look up the seats the write cases claim (two free seats of the future show)."""
    rows = conn.execute(
        "SELECT seat_id FROM show_seats WHERE show_id = %s AND status = 'free'"
        " ORDER BY seat_id LIMIT 2",
        (history.future_show,),
    ).fetchall()
    _SEATS[history.future_show] = [row[0] for row in rows]


@dataclass(frozen=True)
class Explained:
    """What EXPLAIN ANALYZE said of one run of a case."""

    name: str
    kind: str
    planning_ms: float
    execution_ms: float
    seq_scans: tuple[str, ...]
    jit: bool


def _explained(case: Case, plan: dict[str, Any], partial: frozenset[str]) -> Explained:
    """One case's figures from its JSON plan."""
    return Explained(
        case.name,
        case.kind,
        float(plan.get("Planning Time", 0.0)),
        float(plan.get("Execution Time", 0.0)),
        tuple(sorted(set(seq_scans(plan["Plan"], partial)) & GROWING)),
        "JIT" in plan,
    )


def explain(
    conn: psycopg.Connection,
    history: History,
    *,
    analyze: bool = True,
    extra: tuple[Case, ...] = (),
) -> Iterator[Explained]:
    """EXPLAIN every case, then the `extra` ones, in one transaction, in order (the writes
    build on each other)."""
    now = datetime.now(UTC)
    # TIMING OFF: only the totals are used, and clock reads per row of every node would add
    # more than the report statements' own work (131 against 58 ms, docs/benchmarks/growth.md).
    options = "ANALYZE, BUFFERS, TIMING OFF, FORMAT JSON" if analyze else "FORMAT JSON"
    partial = partial_indexes(conn)
    with conn.transaction(force_rollback=True):
        for case in (*HOT, *REPORT, *BACKGROUND, *extra):
            params = case.params(history, now)
            raw = conn.execute(b"EXPLAIN (" + options.encode() + b") " + case.sql, params)
            plan = as_plan(raw.fetchone())
            yield _explained(case, plan, partial)


def as_plan(row: Any) -> dict[str, Any]:
    """The plan document of an EXPLAIN (FORMAT JSON) row."""
    value = row[0]
    document = json.loads(value) if isinstance(value, str) else value
    return dict(document[0])


_INDEX_SCANS = frozenset({"Index Scan", "Index Only Scan", "Bitmap Index Scan"})


def seq_scans(node: dict[str, Any], partial: frozenset[str] = frozenset()) -> Iterator[str]:
    """Every relation the plan reads whole: a sequential scan, or an index scan with no
    condition (except on a `partial` index, which holds only the rows of its predicate)."""
    kind = node.get("Node Type")
    if kind == "Seq Scan":
        yield str(node.get("Relation Name"))
    elif (
        kind in _INDEX_SCANS and "Index Cond" not in node and node.get("Index Name") not in partial
    ):
        yield str(node.get("Relation Name") or node.get("Index Name"))
    for child in node.get("Plans", []):
        yield from seq_scans(child, partial)


def partial_indexes(conn: psycopg.Connection) -> frozenset[str]:
    """The names of the database's partial indexes."""
    rows = conn.execute(
        "SELECT c.relname FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid"
        " WHERE i.indpred IS NOT NULL"
    ).fetchall()
    return frozenset(row[0] for row in rows)


def prepared_plans(
    conn: psycopg.Connection, history: History, *, rounds: int = 8
) -> dict[str, tuple[int, int]]:
    """Run the hot cases `rounds` times as prepared statements: (generic, custom) plans each.

    The counts come from `pg_prepared_statements` on `conn` (an autocommit connection), so
    they show what the connection's settings (`plan_cache_mode`) make PostgreSQL do with
    psycopg's prepared statements.
    """
    for _ in range(rounds):
        now = datetime.now(UTC)
        conn.execute("BEGIN")
        try:
            for case in HOT:
                conn.execute(case.sql, case.params(history, now), prepare=True)
        finally:
            # Not conn.rollback(): psycopg forgets its prepared statements on a ROLLBACK.
            conn.pgconn.exec_(b"ROLLBACK")
    rows = conn.execute(
        "SELECT statement, generic_plans, custom_plans FROM pg_prepared_statements"
    ).fetchall()
    by_text = {text: (generic, custom) for text, generic, custom in rows}
    return {
        case.name: by_text[numbered(case.sql)[0]]
        for case in HOT
        if numbered(case.sql)[0] in by_text
    }


def numbered(statement: bytes) -> tuple[str, list[str]]:
    """The statement with $1, $2... for its %(name)s parameters (as psycopg sends it)."""
    names: list[str] = []

    def number(match: re.Match[str]) -> str:
        if match.group(1) not in names:
            names.append(match.group(1))
        return f"${names.index(match.group(1)) + 1}"

    text = _PARAM.sub(number, statement.decode()).replace("%%", "%")
    return text, names


_PARAM = re.compile(r"%\((\w+)\)s")


def explain_generic(conn: psycopg.Connection, history: History) -> Iterator[Explained]:
    """EXPLAIN ANALYZE the hot cases as prepared statements with their generic plans."""
    now = datetime.now(UTC)
    cursor = psycopg.ClientCursor(conn)  # EXECUTE's arguments are spelled out as literals
    conn.execute("DEALLOCATE ALL")
    partial = partial_indexes(conn)
    with conn.transaction(force_rollback=True):
        conn.execute("SET LOCAL plan_cache_mode = force_generic_plan")
        for number_, case in enumerate(HOT):
            text, names = numbered(case.sql)
            conn.execute(f"PREPARE probe{number_} AS {text}".encode())
            params = case.params(history, now)
            args = ", ".join(["%s"] * len(names))
            values = [params[name] for name in names]
            # The first EXECUTE builds the generic plan; the second is what every call costs.
            cursor.execute(
                f"EXPLAIN (ANALYZE, TIMING OFF, FORMAT JSON) EXECUTE probe{number_}({args})".encode(),
                values,
            )
            cursor.execute(
                f"EXPLAIN (ANALYZE, TIMING OFF, FORMAT JSON) EXECUTE probe{number_}({args})".encode(),
                values,
            )
            plan = as_plan(cursor.fetchone())
            yield _explained(case, plan, partial)


@dataclass(frozen=True)
class Planned:
    """How often pg_stat_statements saw one statement run and planned."""

    query: str
    toplevel: bool
    calls: int
    plans: int
    mean_plan_ms: float


def statement_plans(
    conn: psycopg.Connection, history: History, *, rounds: int = 8
) -> list[Planned]:
    """Run the hot cases `rounds` times on `conn`; every statement's calls and plans, nested too.

    Needs pg_stat_statements loaded and a superuser `conn` (autocommit); the statements inside
    `claim_seats` appear with `toplevel` false.
    """
    conn.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
    conn.execute("SET pg_stat_statements.track = 'all'")
    conn.execute("SET pg_stat_statements.track_planning = on")
    conn.execute("SELECT pg_stat_statements_reset()")
    prepared_plans(conn, history, rounds=rounds)
    rows = conn.execute(
        "SELECT query, toplevel, calls, plans, mean_plan_time FROM pg_stat_statements"
        " WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())"
        " AND calls >= %s",
        (rounds,),
    ).fetchall()
    return [Planned(q, top, calls, plans, float(mean)) for q, top, calls, plans, mean in rows]


CLAIM_FUNCTION = (
    "claim_seats(text, bigint[], text, text, text, text, timestamptz, timestamptz, integer)"
)


def claim_planning(conn: psycopg.Connection, history: History, *, rounds: int = 20) -> Planned:
    """The statement inside `claim_seats` over `rounds` claims on one new connection."""
    planned = statement_plans(conn, history, rounds=rounds)
    return next(p for p in planned if not p.toplevel and "claimed AS" in p.query)
