"""The hold and pay requests stay within their statement budget (benchmarks/holds.py)."""

from typing import Any

import psycopg
import pytest

from tests.regional_api.factories import GOOD_CARD, ShowSeed, seed_show
from tests.regional_api.served import Live

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
