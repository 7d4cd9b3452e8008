"""The hold and pay requests stay within their statement budget (benchmarks/holds.py)."""

from typing import Any

import httpx
import psycopg
import pytest

from harness.live import live_server
from harness.tokens import TestIssuer
from tests.regional_api.factories import GOOD_CARD, ShowSeed, seed_show
from tests.regional_api.served import Live, fast_provider, regional_app

USER = "user-budget"


@pytest.fixture
def seen(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Record the statements psycopg cursors send from now on (BEGIN/COMMIT are not seen)."""
    statements: list[str] = []
    execute = psycopg.AsyncCursor.execute

    async def record(cursor: psycopg.AsyncCursor[Any], query: Any, *args: Any, **kw: Any) -> Any:
        text = query.decode() if isinstance(query, bytes) else str(query)
        statement = " ".join(text.split())
        # The hold sweeper and the waiting-room refresh and admitter run on their own schedule.
        if "lapsed" not in statement and "onsale" not in statement:
            statements.append(statement[:60])
        return await execute(cursor, query, *args, **kw)

    monkeypatch.setattr(psycopg.AsyncCursor, "execute", record)
    return statements


def test_hold_then_pay_within_budget(live: Live, regional_dsn: str, seen: list[str]) -> None:
    show: ShowSeed = seed_show(regional_dsn)
    headers = live.issuer.headers(sub=USER)
    seen.clear()

    held = live.client.post(
        f"/shows/{show.show_id}/holds", json={"seat_ids": show.ids("A1", "A2")}, headers=headers
    )
    assert held.status_code == 201, held.text
    hold_count = len(seen)
    paid = live.client.post(
        f"/reservations/{held.json()['id']}/payments",
        json={"method": "card", "card_number": GOOD_CARD},
        headers=headers,
    )

    assert paid.status_code == 201, paid.text
    assert len(paid.json()["tickets"]) == 2
    assert [s.split("(")[0] for s in seen[:hold_count]] == ["SELECT * FROM claim_seats"], seen
    assert len(seen) - hold_count <= 2, seen[hold_count:]


# What the app runs on its own meanwhile: the waiting rooms' refresh and admitter (every 0.5 s)
# and the reconciler's first look for unsettled payments (the sweeper is put off below).
BACKGROUND = ("%pg_stat_statements%", "%onsale%", "%IN ('pending', 'refunding')%")


def _reset(dsn: str) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        try:
            conn.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
            conn.execute("SELECT pg_stat_statements_reset()")
        except psycopg.errors.ObjectNotInPrerequisiteState:
            pytest.skip("pg_stat_statements is not loaded on this server")


def _round_trips(dsn: str) -> dict[str, int]:
    """Top-level statements run in this database since `_reset` (BEGIN and COMMIT included)."""
    unlike = " ".join("AND query NOT LIKE %s" for _ in BACKGROUND)
    with psycopg.connect(dsn, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT query, calls FROM pg_stat_statements WHERE toplevel"  # noqa: S608 - constant
            " AND dbid = (SELECT oid FROM pg_database WHERE datname = current_database()) "
            + unlike,
            BACKGROUND,
        ).fetchall()
    return {" ".join(query.split())[:70]: int(calls) for query, calls in rows}


def test_a_keyed_hold_is_one_statement_and_its_payment_two(
    regional_dsn: str, issuer: TestIssuer
) -> None:
    # As the web client sends them, with an Idempotency-Key: the key rides in the claim, the
    # open and the settle (no BEGIN, COMMIT or key statements of their own).
    show = seed_show(regional_dsn)
    app = regional_app(
        regional_dsn, issuer, sweeper_interval_seconds=3600, payment_reconcile_interval_seconds=3600
    )
    app.state.payment_provider = fast_provider()
    headers = issuer.headers(sub=USER)
    with live_server(app) as url, httpx.Client(base_url=url, timeout=10) as client:
        _reset(regional_dsn)
        held = client.post(
            f"/shows/{show.show_id}/holds",
            json={"seat_ids": show.ids("A1", "A2")},
            headers=headers | {"Idempotency-Key": "hold-1"},
        )
        assert held.status_code == 201, held.text
        hold = _round_trips(regional_dsn)
        _reset(regional_dsn)
        paid = client.post(
            f"/reservations/{held.json()['id']}/payments",
            json={"method": "card", "card_number": GOOD_CARD},
            headers=headers | {"Idempotency-Key": "pay-1"},
        )
        assert paid.status_code == 201, paid.text
        pay = _round_trips(regional_dsn)

    assert sum(hold.values()) <= 1, hold
    assert sum(pay.values()) <= 2, pay
    assert len(paid.json()["tickets"]) == 2
    with psycopg.connect(regional_dsn) as conn:
        keys = conn.execute("SELECT key, status_code FROM idempotency_keys ORDER BY key").fetchall()
    assert keys == [("hold-1", 201), ("pay-1", 201)]
