"""Counter sales: hold and open the payment, charge with nothing locked, then sell or undo."""

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from common.db import Conn
from regional_api.payments.metrics import BOX_OFFICE_SALES
from regional_api.payments.service import Intent, PaymentAttempt, open_payment
from regional_api.reservations.holds import Terms, place_hold
from schemas.reservations import ReservationRead

log = logging.getLogger("boxoffice")

# The hold of a counter sale only has to outlast the charge; a failed sale cancels it at once.
SALE_HOLD_TTL = timedelta(minutes=5)


@dataclass
class CounterSale:
    """One counter sale: what is sold to whom, and the hold once it is placed."""

    show_id: str
    seat_ids: list[int]
    method: str
    customer_email: str | None
    user_id: str | None
    region: str
    now: datetime
    guard_until: datetime
    hold: ReservationRead | None = field(default=None, init=False)

    async def open(self, conn: Conn) -> Intent:
        """Hold the seats and open their payment in the caller's transaction."""
        terms = Terms(
            user_id=self.user_id,
            channel="box_office",
            now=self.now,
            ttl=SALE_HOLD_TTL,
            customer_email=self.customer_email,
        )
        self.hold = await place_hold(conn, self.show_id, terms, self.seat_ids)
        return await open_payment(
            conn,
            reservation_id=self.hold.id,
            method=self.method,
            region=self.region,
            now=self.now,
            guard_until=self.guard_until,
        )

    def record(self, attempt: PaymentAttempt) -> None:
        """Count and log the sale's outcome."""
        payment = attempt.payment
        outcome = "sold" if payment.status == "completed" else "payment_failed"
        BOX_OFFICE_SALES.labels(self.method, outcome).inc()
        log.info(
            "box office sale",
            extra={
                "fields": {
                    "reservation_id": payment.reservation_id,
                    "show_id": self.show_id,
                    "seats": len(self.seat_ids),
                    "amount_minor": payment.amount_minor,
                    "outcome": outcome,
                }
            },
        )
