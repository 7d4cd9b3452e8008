"""Full refunds of canceled paid reservations."""

import logging
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.attributes import set_committed_value

from common.db import fetch_one, run, session_connection
from regional_api.payments.metrics import REFUNDED, REFUNDS
from regional_api.payments.models import Refund
from regional_api.reservations.models import Reservation

log = logging.getLogger("payments.refunds")

# One refund per reservation (unique index): a repeated cancel finds the existing row.
_INSERT_REFUND = (
    "INSERT INTO refunds (reservation_id, payment_id, amount_minor, currency, reason, created_at)"
    " SELECT p.reservation_id, p.id, p.amount_minor, p.currency, %(reason)s, %(now)s"
    " FROM payments p WHERE p.reservation_id = %(rid)s AND p.status = 'completed'"
    " ON CONFLICT (reservation_id) DO NOTHING"
    " RETURNING id"
)
_EXISTING_REFUND = "SELECT id FROM refunds WHERE reservation_id = %(rid)s"
_SET_REFUNDED = "UPDATE reservations SET refund_minor = %(amount)s WHERE id = %(rid)s"


async def refund_reservation(
    session: AsyncSession, *, reservation: Reservation, now: datetime, reason: str
) -> Refund | None:
    """Record a full refund of the completed payment; None when nothing was paid."""
    conn = await session_connection(session)
    params = {"rid": reservation.id, "reason": reason, "now": now}
    inserted = await fetch_one(conn, _INSERT_REFUND, params)
    if inserted is None:
        existing = await fetch_one(conn, _EXISTING_REFUND, {"rid": reservation.id})
        if existing is None:
            return None
        return await session.get(Refund, existing.id)
    refund = await session.get(Refund, inserted.id)
    assert refund is not None
    await run(conn, _SET_REFUNDED, {"amount": refund.amount_minor, "rid": reservation.id})
    # Keep the caller's object in step without making it dirty (the row is already written).
    set_committed_value(reservation, "refund_minor", refund.amount_minor)
    REFUNDS.labels(refund.currency).inc()
    REFUNDED.labels(refund.currency).inc(refund.amount_minor)
    log.info(
        "refund",
        extra={
            "fields": {
                "reservation_id": reservation.id,
                "payment_id": refund.payment_id,
                "amount_minor": refund.amount_minor,
                "currency": refund.currency,
                "reason": reason,
            }
        },
    )
    return refund
