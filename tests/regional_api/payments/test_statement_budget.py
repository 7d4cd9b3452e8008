"""The hold and pay requests stay within their statement budget (benchmarks/holds.py)."""

from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import event

from tests.regional_api.payments.seed import GOOD_CARD, Live, Show, live_app, seed_cinema, seed_show
from tests.support.tokens import TestIssuer

USER = "user-budget"


@pytest.fixture
def live(regional_dsn: str, issuer: TestIssuer) -> Iterator[Live]:
    """A served regional app with a fast simulated provider."""
    with live_app(regional_dsn, issuer) as served:
        yield served


def _statements(live: Live) -> list[str]:
    """Record the statements the app sends from now on (psycopg's BEGIN/COMMIT are not seen)."""
    seen: list[str] = []
    engine = live.app.state.engine.sync_engine

    @event.listens_for(engine, "before_cursor_execute")
    def record(*args: Any) -> None:
        statement = " ".join(str(args[2]).split())
        if "lapsed" not in statement:  # the hold sweeper runs on its own schedule
            seen.append(statement[:60])

    return seen


def test_hold_then_pay_within_budget(live: Live, regional_dsn: str) -> None:
    show: Show = seed_show(regional_dsn, cinema_id=seed_cinema(regional_dsn))
    headers = live.issuer.headers(sub=USER)
    seen = _statements(live)

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
    assert hold_count <= 3, seen
    assert len(seen) - hold_count <= 4, seen[hold_count:]
