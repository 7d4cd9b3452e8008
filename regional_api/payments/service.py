"""Paying a reservation: server-computed amount, provider charge, confirmation and tickets."""

import logging
import secrets
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession

from common.db import Conn, fetch, fetch_one, run
from common.ids import new_id
from regional_api.payments import statements as sql
from regional_api.payments.errors import (
    AlreadyPaid,
    CashNeedsStaff,
    InvalidCard,
    NotPayable,
    PaymentNotFound,
)
from regional_api.payments.metrics import PAYMENTS, REVENUE
from regional_api.payments.models import Payment
from regional_api.payments.provider import (
    PaymentProvider,
    ProviderStatus,
    charge_with_timeout,
    luhn_valid,
)
from regional_api.reservations import metrics as reservation_metrics
from regional_api.reservations.errors import HoldExpired, ReservationNotFound
from schemas.auth import TokenClaims

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


async def pay_reservation(
    conn: Conn,
    *,
    reservation_id: str,
    method: str,
    card_number: str | None,
    provider: PaymentProvider,
    region: str,
    now: datetime,
    claims: TokenClaims | None = None,
) -> PaymentAttempt:
    """Charge a held reservation and confirm it; a refused charge leaves a failed row and the hold.

    With `claims`, only the owner, staff of its cinema and admins may pay it (others get
    ReservationNotFound) and cash is recorded by staff only; without, the caller has checked.
    """
    payment, opened = await _open_payment(
        conn, reservation_id=reservation_id, method=method, region=region, now=now
    )
    if claims is not None:
        _check_payer(claims, opened, reservation_id=reservation_id, method=method)
    check_card(method, card_number)
    opened.check_payable(reservation_id)
    if not opened.sellable:
        reservation_metrics.CONFIRM_REFUSALS.inc()
        raise HoldExpired(reservation_id)
    tickets = await _charge_and_confirm(
        conn, payment, opened, provider=provider, card_number=card_number, now=now
    )
    _record(payment)
    status = "confirmed" if payment.status == "completed" else opened.status
    return PaymentAttempt(payment, status, tickets)


def _check_payer(
    claims: TokenClaims, opened: "_Opened", *, reservation_id: str, method: str
) -> None:
    """Hide the reservation from those who may not see it; keep cash for its cinema's staff."""
    if opened.user_id != claims.sub and not claims.may_manage(opened.cinema_id):
        raise ReservationNotFound(reservation_id)
    if method == "cash" and not claims.may_manage(opened.cinema_id):
        raise CashNeedsStaff()


@dataclass(frozen=True, slots=True)
class _Opened:
    """What the payment's opening statement read under the reservation's lock."""

    show_id: str
    cinema_id: str
    user_id: str | None
    status: str
    paid: bool
    seats: int
    sellable: bool

    def check_payable(self, reservation_id: str) -> None:
        """Refuse a paid reservation, then one that is no longer held (409)."""
        if self.status == "confirmed" or self.paid:
            raise AlreadyPaid(reservation_id)
        if self.status not in PAYABLE_STATUSES:
            raise NotPayable(reservation_id, self.status)


async def _open_payment(
    conn: Conn, *, reservation_id: str, method: str, region: str, now: datetime
) -> tuple[Payment, _Opened]:
    """Lock the reservation and insert a pending payment row if it is payable."""
    payment_id = new_id("pay", region)
    params = {"rid": reservation_id, "pid": payment_id, "method": method, "now": now}
    row = await fetch_one(conn, sql.OPEN_PAYMENT, params)
    if row is None:
        raise ReservationNotFound(reservation_id)
    payment = Payment(
        id=payment_id,
        reservation_id=reservation_id,
        method=method,
        status="pending",
        amount_minor=int(row.amount),
        currency=row.currency,
        created_at=now,
    )
    opened = _Opened(
        row.show_id,
        row.cinema_id,
        row.user_id,
        row.status,
        bool(row.paid),
        int(row.seats),
        bool(row.sellable),
    )
    return payment, opened


async def _charge_and_confirm(
    conn: Conn,
    payment: Payment,
    opened: _Opened,
    *,
    provider: PaymentProvider,
    card_number: str | None,
    now: datetime,
) -> list[Ticket]:
    """Charge, then sell the seats and complete the payment, or record why it did not complete.

    The seats were found sellable under their row locks (`_open_payment`), so money only moves
    for seats that will be sold; a refused charge leaves the hold as it was.
    """
    result = await charge_with_timeout(
        provider,
        amount_minor=payment.amount_minor,
        currency=payment.currency,
        method=payment.method,
        card_number=card_number,
        reference=payment.id,
    )
    payment.status = result.status.value
    payment.provider_ref = result.provider_ref
    payment.failure_reason = result.failure_reason
    if result.status is not ProviderStatus.completed:
        outcome = {
            "pid": payment.id,
            "status": payment.status,
            "ref": payment.provider_ref,
            "reason": payment.failure_reason,
            "completed_at": None,
        }
        await run(conn, sql.FINISH_PAYMENT, outcome)
        return []
    payment.completed_at = now
    codes = [secrets.token_urlsafe(16) for _ in range(opened.seats)]
    params = {
        "rid": payment.reservation_id,
        "show_id": opened.show_id,
        "codes": codes,
        "now": now,
        "pid": payment.id,
        "ref": payment.provider_ref,
    }
    sold = await fetch(conn, sql.SELL_AND_COMPLETE, params)
    if len(sold) != opened.seats:  # cannot happen: the seats are locked since they were checked
        reservation_metrics.CONFIRM_REFUSALS.inc()
        raise HoldExpired(payment.reservation_id)
    reservation_metrics.CONFIRMATIONS.inc()
    return [Ticket(**row._asdict()) for row in sold]


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
