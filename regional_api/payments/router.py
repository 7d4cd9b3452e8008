"""Payment endpoints: pay a reservation, read a payment, list its payments and tickets."""

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from common.auth import Claims
from common.ids import parse_id
from regional_api.clock import ClockDep
from regional_api.db import ConnDep, SessionDep
from regional_api.idempotency.deps import IdempotencyKeyDep, outcome_response
from regional_api.idempotency.service import run_idempotent
from regional_api.payments import service
from regional_api.payments.deps import ProviderDep, SettingsDep
from regional_api.payments.errors import PaymentNotFound
from regional_api.payments.service import PaymentAttempt
from regional_api.reservations.deps import ReservationDep, may_see
from regional_api.reservations.errors import ReservationNotFound
from regional_api.reservations.models import Reservation
from schemas.errors import ErrorBody, error_body
from schemas.payments import (
    PaymentCreate,
    PaymentOutcome,
    PaymentRead,
    TicketList,
    TicketRead,
)

router = APIRouter(tags=["payments"])


def attempt_answer(attempt: PaymentAttempt) -> tuple[int, dict[str, Any]]:
    """The status and JSON body that answer a payment attempt (201, 202 or 402)."""
    payment = PaymentRead.model_validate(attempt.payment).model_dump(mode="json")
    if attempt.payment.status == "failed":
        body = error_body(
            "payment_failed",
            f"payment failed: {attempt.payment.failure_reason}",
            reason=attempt.payment.failure_reason,
            payment=payment,
        )
        return 402, body
    outcome = PaymentOutcome(
        payment=PaymentRead.model_validate(attempt.payment),
        reservation_id=attempt.payment.reservation_id,
        reservation_status=attempt.reservation_status,
        tickets=[TicketRead.model_validate(ticket) for ticket in attempt.tickets],
    )
    return (201 if attempt.payment.status == "completed" else 202), outcome.model_dump(mode="json")


@router.post(
    "/reservations/{reservation_id}/payments",
    status_code=201,
    response_model=PaymentOutcome,
    responses={
        202: {"model": PaymentOutcome, "description": "the provider has not decided yet"},
        402: {"model": ErrorBody, "description": "payment_failed; the hold is kept"},
        409: {"model": ErrorBody, "description": "already_paid, hold_expired"},
    },
)
async def pay_reservation(
    reservation_id: str,
    body: PaymentCreate,
    claims: Claims,
    request: Request,
    conn: ConnDep,
    clock: ClockDep,
    settings: SettingsDep,
    provider: ProviderDep,
    key: IdempotencyKeyDep,
) -> JSONResponse:
    """Pay a held reservation; the amount comes from its seats, tickets come back on success."""
    if parse_id(reservation_id) != ("res", settings.region):
        raise ReservationNotFound(reservation_id)

    async def handler() -> tuple[int, dict[str, Any]]:
        attempt = await service.pay_reservation(
            conn,
            reservation_id=reservation_id,
            claims=claims,
            method=body.method.value,
            card_number=body.card_number,
            provider=provider,
            region=settings.region,
            now=clock.now(),
        )
        return attempt_answer(attempt)

    outcome = await run_idempotent(
        conn,
        key=key,
        scope=claims.sub,
        path=request.url.path,
        request=body,
        handler=handler,
    )
    return outcome_response(outcome)


@router.get("/payments/{payment_id}", response_model=PaymentRead)
async def get_payment(
    payment_id: str, claims: Claims, session: SessionDep, settings: SettingsDep
) -> PaymentRead:
    """Read a payment of a reservation the caller owns or manages."""
    if parse_id(payment_id) != ("pay", settings.region):
        raise PaymentNotFound(payment_id[:100])
    payment = await service.get_payment(session, payment_id)
    reservation = await session.get(Reservation, payment.reservation_id)
    if reservation is None or not may_see(claims, reservation):
        raise PaymentNotFound(payment_id)
    return PaymentRead.model_validate(payment)


@router.get("/reservations/{reservation_id}/payments", response_model=list[PaymentRead])
async def list_payments(reservation: ReservationDep, session: SessionDep) -> list[PaymentRead]:
    """List a reservation's payment attempts, failed ones included, oldest first."""
    payments = await service.payments_of(session, reservation.id)
    return [PaymentRead.model_validate(payment) for payment in payments]


@router.get("/reservations/{reservation_id}/tickets", response_model=TicketList)
async def list_tickets(reservation: ReservationDep, session: SessionDep) -> TicketList:
    """List a reservation's tickets and their check-in codes (empty until it is paid)."""
    confirmed = reservation.status == "confirmed"
    tickets = await service.tickets_of(session, reservation.id) if confirmed else []
    return TicketList(
        reservation_id=reservation.id,
        show_id=reservation.show_id,
        status=reservation.status,
        tickets=[TicketRead.model_validate(ticket) for ticket in tickets],
    )
