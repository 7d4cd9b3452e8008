"""Paying a reservation: server-computed amount, provider charge, confirmation and tickets."""

import logging
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession

from common.ids import new_id
from regional_api.payments.errors import AlreadyPaid, InvalidCard, NotPayable, PaymentNotFound
from regional_api.payments.metrics import PAYMENTS, REVENUE
from regional_api.payments.models import Payment
from regional_api.payments.provider import (
    PaymentProvider,
    ProviderStatus,
    charge_with_timeout,
    luhn_valid,
)
from regional_api.reservations.errors import ReservationNotFound
from regional_api.reservations.models import Reservation
from regional_api.reservations.service import confirm_reservation

log = logging.getLogger("payments")

PAYABLE_STATUSES = frozenset({"held", "expired"})


@dataclass(frozen=True)
class Ticket:
    """A sold seat and its check-in code."""

    code: str
    seat_id: int
    seat_label: str
    seat_type: str
    price_minor: int
    checked_in_at: datetime | None


@dataclass(frozen=True)
class PaymentAttempt:
    """A payment row after the charge, the reservation's status and its tickets."""

    payment: Payment
    reservation_status: str
    tickets: list[Ticket]


def check_card(method: str, card_number: str | None) -> None:
    """Refuse a card payment without a well-formed, Luhn-valid number (and card data on cash)."""
    if method != "card":
        if card_number is not None:
            raise InvalidCard("card_number is only accepted with method 'card'")
        return
    if card_number is None:
        raise InvalidCard("card_number is required with method 'card'")
    if not luhn_valid(card_number):
        raise InvalidCard("card_number is not a valid card number")


async def lock_reservation(session: AsyncSession, reservation_id: str) -> Reservation:
    """Load a reservation and lock its row so that concurrent payments queue behind us."""
    reservation = await session.scalar(
        select(Reservation)
        .where(Reservation.id == reservation_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    if reservation is None:
        raise ReservationNotFound(reservation_id)
    return reservation


async def _has_completed_payment(session: AsyncSession, reservation_id: str) -> bool:
    found = await session.scalar(
        text("SELECT 1 FROM payments WHERE reservation_id = :rid AND status = 'completed'"),
        {"rid": reservation_id},
    )
    return found is not None


async def amount_due(session: AsyncSession, reservation_id: str) -> int:
    """The price of the reservation: the sum of its seats' price snapshots."""
    total = await session.scalar(
        text(
            "SELECT coalesce(sum(price_minor), 0) FROM reservation_seats"
            " WHERE reservation_id = :rid"
        ),
        {"rid": reservation_id},
    )
    return int(total or 0)


async def pay_reservation(
    session: AsyncSession,
    *,
    reservation_id: str,
    method: str,
    card_number: str | None,
    provider: PaymentProvider,
    region: str,
    now: datetime,
) -> PaymentAttempt:
    """Charge a held reservation and confirm it; a refused charge leaves a failed row and the hold."""
    check_card(method, card_number)
    payment = await _open_payment(
        session, reservation_id=reservation_id, method=method, region=region, now=now
    )
    await _charge_and_confirm(session, payment, provider=provider, card_number=card_number, now=now)
    _record(payment)
    status = await session.scalar(
        text("SELECT status FROM reservations WHERE id = :rid"), {"rid": reservation_id}
    )
    return PaymentAttempt(payment, str(status), await tickets_of(session, reservation_id))


async def _open_payment(
    session: AsyncSession, *, reservation_id: str, method: str, region: str, now: datetime
) -> Payment:
    """Lock the reservation, refuse a paid or dead one, and insert a pending payment row."""
    reservation = await lock_reservation(session, reservation_id)
    if reservation.status == "confirmed" or await _has_completed_payment(session, reservation_id):
        raise AlreadyPaid(reservation_id)
    if reservation.status not in PAYABLE_STATUSES:
        raise NotPayable(reservation_id, reservation.status)
    payment = Payment(
        id=new_id("pay", region),
        reservation_id=reservation_id,
        method=method,
        status="pending",
        amount_minor=await amount_due(session, reservation_id),
        currency=reservation.currency,
        created_at=now,
    )
    session.add(payment)
    await session.flush()
    return payment


async def _charge_and_confirm(
    session: AsyncSession,
    payment: Payment,
    *,
    provider: PaymentProvider,
    card_number: str | None,
    now: datetime,
) -> None:
    """Confirm the seats in a savepoint, charge, then keep the savepoint only if it completed.

    Confirming BEFORE charging means money never moves for seats we cannot sell (HoldExpired
    aborts the request first); a refused charge rolls the confirmation back and keeps the hold.
    """
    savepoint = await session.begin_nested()
    await confirm_reservation(session, reservation_id=payment.reservation_id, now=now)
    result = await charge_with_timeout(
        provider,
        amount_minor=payment.amount_minor,
        currency=payment.currency,
        method=payment.method,
        card_number=card_number,
        reference=payment.id,
    )
    if result.status is ProviderStatus.completed:
        await savepoint.commit()
        payment.completed_at = now
    else:
        await savepoint.rollback()
    payment.status = result.status.value
    payment.provider_ref = result.provider_ref
    payment.failure_reason = result.failure_reason
    await session.flush()


def _record(payment: Payment) -> None:
    PAYMENTS.labels(payment.method, payment.status).inc()
    if payment.status == "completed":
        REVENUE.labels(payment.currency).inc(payment.amount_minor)
    log.info(
        "payment",
        extra={
            "fields": {
                "payment_id": payment.id,
                "reservation_id": payment.reservation_id,
                "method": payment.method,
                "status": payment.status,
                "amount_minor": payment.amount_minor,
                "currency": payment.currency,
                "failure_reason": payment.failure_reason,
            }
        },
    )


async def tickets_of(session: AsyncSession, reservation_id: str) -> list[Ticket]:
    """The issued tickets of a reservation, in seat-map order."""
    rows = await session.execute(
        text(
            "SELECT rs.ticket_code AS code, rs.seat_id, s.label AS seat_label, rs.seat_type,"
            " rs.price_minor, rs.checked_in_at"
            " FROM reservation_seats rs JOIN seats s ON s.id = rs.seat_id"
            " WHERE rs.reservation_id = :rid AND rs.ticket_code IS NOT NULL"
            " ORDER BY s.grid_row, s.grid_col"
        ),
        {"rid": reservation_id},
    )
    return [Ticket(**row) for row in rows.mappings()]


async def payments_of(session: AsyncSession, reservation_id: str) -> list[Payment]:
    """Every payment attempt of a reservation, oldest first."""
    rows = await session.scalars(
        select(Payment)
        .where(Payment.reservation_id == reservation_id)
        .order_by(Payment.created_at, Payment.id)
    )
    return list(rows)


async def get_payment(session: AsyncSession, payment_id: str) -> Payment:
    """A payment by id, or PaymentNotFound."""
    payment = await session.get(Payment, payment_id)
    if payment is None:
        raise PaymentNotFound(payment_id)
    return payment
