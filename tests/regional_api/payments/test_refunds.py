"""Refunds when paid reservations or whole shows are canceled."""

from sqlalchemy.ext.asyncio import AsyncSession

from regional_api.payments.models import Refund
from regional_api.payments.refunds import refund_reservation
from regional_api.reservations.models import Reservation
from schemas.auth import Role
from tests.regional_api.factories import GOOD_CARD, PRICES, ShowSeed, hold, query, run_db
from tests.regional_api.served import Live

USER = "user-alice"


def paid(live: Live, show: ShowSeed, labels: list[str], user: str = USER) -> str:
    rid = hold(live.dsn, show, labels, user_id=user, now=live.now())
    response = live.client.post(
        f"/reservations/{rid}/payments",
        json={"method": "card", "card_number": GOOD_CARD},
        headers=live.issuer.headers(sub=user),
    )
    assert response.status_code == 201
    return rid


def test_canceling_a_paid_reservation_refunds_it_in_full(live: Live, show: ShowSeed) -> None:
    rid = paid(live, show, ["A1", "B1"])
    headers = live.issuer.headers(sub=USER)

    canceled = live.client.post(f"/reservations/{rid}/cancel", json={}, headers=headers)

    assert canceled.status_code == 200
    amount = PRICES["standard"] + PRICES["vip"]
    assert canceled.json()["refund_minor"] == amount
    payment_id = query(live.dsn, "SELECT id FROM payments WHERE reservation_id = %s", rid)[0][0]
    assert query(
        live.dsn,
        "SELECT payment_id, amount_minor, currency FROM refunds WHERE reservation_id = %s",
        rid,
    ) == [(payment_id, amount, "EUR")]
    assert query(live.dsn, "SELECT refund_minor FROM reservations WHERE id = %s", rid) == [
        (amount,)
    ]


def test_refund_is_recorded_once_and_never_for_unpaid_reservations(
    live: Live, show: ShowSeed
) -> None:
    paid_id = paid(live, show, ["A1"])
    unpaid_id = hold(live.dsn, show, ["A2"], user_id=USER, now=live.now())

    async def refund_twice(session: AsyncSession) -> list[Refund | None]:
        results = []
        for rid in (paid_id, paid_id, unpaid_id):
            reservation = await session.get(Reservation, rid)
            assert reservation is not None
            results.append(
                await refund_reservation(
                    session, reservation=reservation, now=live.now(), reason="t"
                )
            )
        return results

    first, again, unpaid = run_db(live.dsn, refund_twice)

    assert first is not None
    assert again is not None
    assert (again.id, again.amount_minor) == (first.id, PRICES["standard"])
    assert unpaid is None
    assert query(live.dsn, "SELECT count(*) FROM refunds") == [(1,)]


def test_canceling_a_show_refunds_every_paid_reservation(live: Live, show: ShowSeed) -> None:
    first = paid(live, show, ["A1", "A2"])
    second = paid(live, show, ["B1"], user="user-bob")
    held = hold(live.dsn, show, ["A3"], user_id="user-carol", now=live.now())
    admin = live.issuer.headers(role=Role.admin)

    answer = live.client.post(
        f"/shows/{show.show_id}/cancel", json={"reason": "projector"}, headers=admin
    )

    assert answer.status_code == 200
    assert answer.json()["refunded_minor"] == 2 * PRICES["standard"] + PRICES["vip"]
    refunds = query(
        live.dsn, "SELECT reservation_id, amount_minor, reason FROM refunds ORDER BY amount_minor"
    )
    assert sorted(refunds) == sorted(
        [(first, 2 * PRICES["standard"], "projector"), (second, PRICES["vip"], "projector")]
    )
    assert query(live.dsn, "SELECT refund_minor FROM reservations WHERE id = %s", held) == [(None,)]
