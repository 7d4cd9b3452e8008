"""Box-office endpoints: one-step counter sales and ticket check-in at the door."""

from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from common.auth import StaffClaims
from regional_api.boxoffice import service, tickets
from regional_api.cinemas.deps import ManagedCinema
from regional_api.clock import ClockDep
from regional_api.config import SettingsDep
from regional_api.db import PoolDep, SessionDep
from regional_api.idempotency.deps import IdempotencyDep, respond
from regional_api.payments import flow
from regional_api.payments.deps import ProviderDep
from regional_api.payments.service import PaymentAttempt, check_card
from regional_api.reservations.deps import FullShowsDep, ManagedShowIdDep
from schemas.errors import ErrorBody, error_body
from schemas.payments import (
    PaymentRead,
    SaleCreate,
    SaleRead,
    TicketCheckIn,
    TicketRead,
    TicketValidate,
)

router = APIRouter(tags=["box office"])


@router.post(
    "/shows/{show_id}/sales",
    status_code=201,
    response_model=None,
    responses={
        201: {"model": SaleRead, "description": "sold: the tickets"},
        202: {"model": SaleRead, "description": "the provider has not decided yet"},
        402: {"model": ErrorBody, "description": "payment_failed; nothing is held"},
        409: {"model": ErrorBody, "description": "seats_taken"},
    },
)
async def sell_seats(
    show_id: ManagedShowIdDep,
    body: SaleCreate,
    _: StaffClaims,
    pool: PoolDep,
    clock: ClockDep,
    settings: SettingsDep,
    provider: ProviderDep,
    idem: IdempotencyDep,
    full: FullShowsDep,
) -> JSONResponse:
    """Sell seats at the counter in one step: hold, charge and confirm, or nothing at all."""
    check_card(body.method.value, body.card_number)
    now = clock.now()
    sale = service.CounterSale(
        show_id=show_id,
        seat_ids=body.seat_ids,
        method=body.method.value,
        customer_email=body.customer_email,
        user_id=body.user_id,
        region=settings.region,
        now=now,
        guard_until=now + settings.payment_guard(provider),
    )

    def answer(attempt: PaymentAttempt) -> tuple[int, dict[str, Any]]:
        return _sale_answer(sale, attempt)

    outcome, attempt = await flow.sell(
        pool,
        provider,
        idem=idem,
        request=body,
        open_intent=sale.open,
        card_number=body.card_number,
        clock=clock,
        answer=answer,
        changed=full.changed,
    )
    if attempt is not None:
        sale.record(attempt)
    return respond(outcome)


def _sale_answer(sale: service.CounterSale, attempt: PaymentAttempt) -> tuple[int, dict[str, Any]]:
    """201 with the tickets, 202 while the provider decides, else 402 (nothing stays held)."""
    payment, hold = attempt.payment, sale.hold
    assert hold is not None  # the answer is built once the sale is open
    if payment.status not in ("completed", "pending"):
        reason = payment.failure_reason
        body = error_body("payment_failed", f"payment failed: {reason}", reason=reason)
        return 402, body | {"show_id": sale.show_id}
    read = SaleRead(
        reservation_id=hold.id,
        show_id=hold.show_id,
        cinema_id=hold.cinema_id,
        amount_minor=payment.amount_minor,
        currency=payment.currency,
        customer_email=sale.customer_email,
        user_id=hold.user_id,
        payment=PaymentRead.model_validate(payment),
        tickets=[TicketRead.model_validate(ticket) for ticket in attempt.tickets],
    )
    return (201 if payment.status == "completed" else 202), read.model_dump(mode="json")


@router.post(
    "/cinemas/{cinema_id}/tickets/validate",
    response_model=TicketCheckIn,
    responses={
        404: {"model": ErrorBody, "description": "ticket_not_found"},
        409: {
            "model": ErrorBody,
            "description": "ticket_already_used (with used_at), wrong_cinema, wrong_show,"
            " ticket_canceled, too_early (doors open an hour before), show_over",
        },
    },
)
async def validate_ticket(
    body: TicketValidate,
    _: StaffClaims,
    cinema: ManagedCinema,
    session: SessionDep,
    clock: ClockDep,
) -> TicketCheckIn:
    """Check a ticket in at this cinema's door; a ticket is accepted once only."""
    check_in = await tickets.check_in_ticket(
        session, cinema_id=cinema.id, code=body.code, show_id=body.show_id, now=clock.now()
    )
    return TicketCheckIn.model_validate(check_in)
