"""Counter sales: hold, charge and confirm in one transaction, or leave nothing behind."""

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from common.db import Conn
from regional_api.payments.errors import PaymentFailed
from regional_api.payments.metrics import BOX_OFFICE_SALES
from regional_api.payments.provider import PaymentProvider
from regional_api.payments.service import PaymentAttempt, check_card, pay_reservation
from regional_api.reservations.service import Hold, place_hold

log = logging.getLogger("boxoffice")

# The hold of a counter sale lives only inside its own transaction; the deadline just has to
# outlast the charge.
SALE_HOLD_TTL = timedelta(minutes=5)


@dataclass(frozen=True)
class Sale:
    """A completed counter sale: its reservation and the payment with the tickets."""

    reservation: Hold
    attempt: PaymentAttempt


async def sell_seats(
    conn: Conn,
    *,
    show_id: str,
    seat_ids: list[int],
    method: str,
    card_number: str | None,
    customer_email: str | None,
    user_id: str | None,
    provider: PaymentProvider,
    region: str,
    now: datetime,
) -> Sale:
    """Sell seats at the counter; a taken seat or a refused charge raises and rolls all back."""
    check_card(method, card_number)
    reservation = await place_hold(
        conn,
        show_id=show_id,
        seat_ids=seat_ids,
        user_id=user_id,
        channel="box_office",
        now=now,
        ttl=SALE_HOLD_TTL,
        customer_email=customer_email,
    )
    attempt = await pay_reservation(
        conn,
        reservation_id=reservation.id,
        method=method,
        card_number=card_number,
        provider=provider,
        region=region,
        now=now,
    )
    if attempt.payment.status != "completed":
        BOX_OFFICE_SALES.labels(method, "payment_failed").inc()
        # Raising rolls the whole transaction back: no hold, no reservation stays behind.
        raise PaymentFailed(attempt.payment.failure_reason, show_id=show_id)
    BOX_OFFICE_SALES.labels(method, "sold").inc()
    log.info(
        "box office sale",
        extra={
            "fields": {
                "reservation_id": reservation.id,
                "show_id": show_id,
                "seats": len(seat_ids),
                "amount_minor": attempt.payment.amount_minor,
            }
        },
    )
    return Sale(reservation, attempt)
