"""Paying a reservation: record the intent, charge with no lock held, then settle in one statement.

`payments/flow.py` runs the steps; the reconciler (`payments/reconcile.py`) settles the payments
whose replica died between the charge and the settle, asking the provider by reference.
"""

import logging
import secrets
from dataclasses import dataclass
from datetime import datetime
from functools import cache

from prometheus_client import Counter
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from common.db import Conn, HotPool, fetch, fetch_one, run, session_connection
from common.ids import new_id
from common.observability import log_fields
from regional_api.idempotency.service import Key, Stored, check_used
from regional_api.payments import statements as sql
from regional_api.payments.errors import (
    AlreadyPaid,
    CashNeedsStaff,
    InvalidCard,
    NotPayable,
    PaymentInProgress,
    PaymentNotFound,
)
from regional_api.payments.metrics import CHARGES_REFUNDED, PAYMENTS, REVENUE
from regional_api.payments.models import Payment
from regional_api.payments.provider import (
    TIMED_OUT,
    PaymentProvider,
    ProviderResult,
    ProviderStatus,
    charge_with_timeout,
    luhn_valid,
)
from regional_api.reservations import metrics as reservation_metrics
from regional_api.reservations.errors import HoldExpired, ReservationNotFound
from schemas.auth import Role, TokenClaims

log = logging.getLogger("payments")

PAYABLE_STATUSES = frozenset({"held", "expired"})
LOST_SEATS = "hold_lapsed"  # the failure reason of a charge whose seats could not be sold
NEVER_CHARGED = ProviderResult(ProviderStatus.failed, None, "provider_no_charge")


@dataclass(frozen=True)
class Ticket:
    """A sold seat and its check-in code."""

    code: str
    seat_id: int
    seat_label: str
    seat_type: str
    price_minor: int
    checked_in_at: datetime | None


@dataclass(slots=True)
class PaymentRecord:
    """A payment row on the hot path: a plain object, not the ORM's `Payment` (cheaper to build)."""

    id: str
    reservation_id: str
    method: str
    status: str
    amount_minor: int
    currency: str
    provider_ref: str | None = None
    failure_reason: str | None = None
    created_at: datetime | None = None
    completed_at: datetime | None = None


@dataclass(frozen=True)
class PaymentAttempt:
    """A payment row as it stands, the reservation's status and its tickets."""

    payment: PaymentRecord
    reservation_status: str
    tickets: list[Ticket]


@dataclass(frozen=True, slots=True)
class Intent:
    """A recorded pending payment and what settling it needs; no lock outlives its statement."""

    payment: PaymentRecord
    show_id: str
    seats: int

    def pending(self) -> PaymentAttempt:
        """The attempt as it stands while the provider decides (its seats stay held)."""
        return PaymentAttempt(self.payment, "held", [])


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


async def open_payment(
    conn: Conn,
    *,
    reservation_id: str,
    method: str,
    region: str,
    now: datetime,
    guard_until: datetime,
    claims: TokenClaims | None = None,
    key: Key | None = None,
) -> Intent:
    """Record a pending payment of a held reservation and keep its seats held until `guard_until`.

    With `claims`, only the owner, staff of its cinema and admins may pay it (others get
    ReservationNotFound) and cash is recorded by staff only; without, the caller has checked.
    With `key`, the statement stores it with the pending answer, or raises KeyUsed.
    """
    payment_id = new_id("pay", region)
    params = {
        "rid": reservation_id,
        "pid": payment_id,
        "method": method,
        "now": now,
        "guard": guard_until,
        "payer": None if claims is None else claims.sub,
        "admin": claims is not None and claims.role is Role.admin,
        "cinemas": [] if claims is None else list(claims.cinemas),
    }
    # A payment opened concurrently after this snapshot meets the unique index of open
    # payments: its violation is answered `payment_in_progress` (common/errors.py).
    if key is None:
        row = await fetch_one(conn, sql.OPEN_PAYMENT, params)
    else:
        row = await fetch_one(conn, sql.OPEN_PAYMENT_KEYED, params | key.params())
        check_used(row)
    if row is None or not row.allowed:
        raise ReservationNotFound(reservation_id)
    if not row.cash_ok:
        raise CashNeedsStaff()
    if row.status == "confirmed" or row.paid:
        raise AlreadyPaid(reservation_id)
    if row.status not in PAYABLE_STATUSES:
        raise NotPayable(reservation_id, row.status)
    if row.pending:
        raise PaymentInProgress(reservation_id)
    if not row.sellable:
        reservation_metrics.CONFIRM_REFUSALS.inc()
        raise HoldExpired(reservation_id)
    payment = PaymentRecord(
        id=payment_id,
        reservation_id=reservation_id,
        method=method,
        status="pending",
        amount_minor=int(row.amount),
        currency=row.currency,
        created_at=now,
    )
    return Intent(payment, row.show_id, int(row.seats))


async def charge(
    provider: PaymentProvider, intent: Intent, card_number: str | None
) -> ProviderResult:
    """Ask the provider for the money, bounded by its timeout; call it with no connection held."""
    return await charge_with_timeout(
        provider,
        amount_minor=intent.payment.amount_minor,
        currency=intent.payment.currency,
        method=intent.payment.method,
        card_number=card_number,
        reference=intent.payment.id,
    )


async def settle(
    conn: Conn,
    intent: Intent,
    result: ProviderResult,
    *,
    now: datetime,
    is_sale: bool = False,
    key: Key | None = None,
) -> PaymentAttempt:
    """Sell the seats of a completed charge, or record why the payment did not complete.

    A charge whose seats were lost meanwhile (the hold lapsed while its replica was down, or the
    reservation was canceled) and a timed-out charge become `refunding`: see `return_money`. A
    counter sale (`is_sale`) that does not complete cancels its reservation and frees its seats.
    With `key`, the same statement stores the key's final status.
    """
    payment = intent.payment
    if result.status is ProviderStatus.pending:
        return intent.pending()  # the provider decides later; the reconciler asks it
    row = None
    if result.status is ProviderStatus.failed:
        status = "refunding" if result is TIMED_OUT else "failed"
        finish = {"pid": payment.id, "status": status, "reason": result.failure_reason}
        finish |= {"ref": result.provider_ref} | (key.params() if key else {})
        row = await fetch_one(conn, sql.FINISH_KEYED if key else sql.FINISH, finish)
    else:
        params = _sale_params(intent, result, now) | (key.params() if key else {})
        sold = await fetch(conn, sql.SETTLE_KEYED if key else sql.SETTLE, params)
        if sold:
            payment.status, payment.completed_at = "completed", now
            payment.provider_ref = result.provider_ref
            reservation_metrics.CONFIRMATIONS.inc()
            return PaymentAttempt(payment, "confirmed", [Ticket(**row._asdict()) for row in sold])
    if row is None:  # settled meanwhile, or its seats were lost: read what it became
        row = await fetch_one(conn, sql.PAYMENT, {"pid": payment.id})
    payment.status, payment.provider_ref = row.status, row.provider_ref
    payment.failure_reason, payment.completed_at = row.failure_reason, row.completed_at
    if payment.failure_reason == LOST_SEATS:
        reservation_metrics.CONFIRM_REFUSALS.inc()
    if is_sale:
        await run(conn, sql.DROP_SALE, {"rid": payment.reservation_id, "now": now})
    return PaymentAttempt(payment, "held", [])


def _sale_params(intent: Intent, result: ProviderResult, now: datetime) -> dict[str, object]:
    """The parameters of `SETTLE`: one fresh ticket code per seat."""
    return {
        "rid": intent.payment.reservation_id,
        "show_id": intent.show_id,
        "codes": [secrets.token_urlsafe(16) for _ in range(intent.seats)],
        "now": now,
        "pid": intent.payment.id,
        "ref": result.provider_ref,
    }


async def replay(conn: Conn, stored: Stored) -> PaymentAttempt | None:
    """The payment a used key opened, as it stands now (None: its answer was stored whole)."""
    payment_id = stored.made("payment_id")
    if payment_id is None:
        return None
    row = await fetch_one(conn, sql.PAYMENT_READ, {"pid": payment_id})
    fields = row._asdict()
    reservation_status = fields.pop("reservation_status")
    payment = PaymentRecord(**fields)
    if payment.status != "completed":
        return PaymentAttempt(payment, reservation_status, [])
    tickets = await fetch(conn, sql.TICKETS, {"rid": payment.reservation_id})
    return PaymentAttempt(payment, reservation_status, [Ticket(**t._asdict()) for t in tickets])


async def return_money(pool: HotPool, provider: PaymentProvider, payment: PaymentRecord) -> None:
    """Refund (or void) a `refunding` payment at the provider, then record it; safe to repeat."""
    returned = await provider.refund(payment.id)
    async with pool.connection() as conn:
        row = await fetch_one(conn, sql.REFUNDED, {"pid": payment.id, "returned": returned})
    if row is not None:
        payment.status = row.status
        if returned:
            CHARGES_REFUNDED.labels(payment.failure_reason or "unknown").inc()
            log.warning(
                "charge refunded",
                extra={
                    "fields": {
                        "payment_id": payment.id,
                        "reservation_id": payment.reservation_id,
                        "reason": payment.failure_reason,
                        "amount_minor": payment.amount_minor,
                        "currency": payment.currency,
                    }
                },
            )


@cache
def _payments(method: str, status: str) -> Counter:
    """The payments counter's child for one method and outcome (a bounded set), found once."""
    return PAYMENTS.labels(method, status)


@cache
def _revenue(currency: str) -> Counter:
    """The revenue counter's child for one currency, found once."""
    return REVENUE.labels(currency)


def record(payment: PaymentRecord) -> None:
    """Count and log a payment attempt's outcome."""
    _payments(payment.method, payment.status).inc()
    if payment.status == "completed":
        _revenue(payment.currency).inc(payment.amount_minor)
    fields = {
        "payment_id": payment.id,
        "reservation_id": payment.reservation_id,
        "method": payment.method,
        "status": payment.status,
        "amount_minor": payment.amount_minor,
        "currency": payment.currency,
        "failure_reason": payment.failure_reason,
    }
    log_fields(log, "payment", fields)


async def tickets_of(session: AsyncSession, reservation_id: str) -> list[Ticket]:
    """The issued tickets of a reservation, in seat-map order."""
    rows = await fetch(await session_connection(session), sql.TICKETS, {"rid": reservation_id})
    return [Ticket(**row._asdict()) for row in rows]


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
