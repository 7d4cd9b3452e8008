"""Box-office endpoints: one-step counter sales and ticket check-in at the door."""

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from common.auth import StaffClaims
from common.db import session_connection
from regional_api.boxoffice import service, tickets
from regional_api.cinemas.deps import ManagedCinema
from regional_api.clock import ClockDep
from regional_api.db import SessionDep
from regional_api.idempotency.deps import IdempotencyKeyDep, outcome_response
from regional_api.idempotency.service import run_idempotent
from regional_api.payments.deps import ProviderDep, SettingsDep
from regional_api.reservations.deps import ManagedShowIdDep
from schemas.errors import ErrorBody
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
    response_model=SaleRead,
    responses={
        402: {"model": ErrorBody, "description": "payment_failed; nothing is held"},
        409: {"model": ErrorBody, "description": "seats_taken"},
    },
)
async def sell_seats(
    show_id: ManagedShowIdDep,
    body: SaleCreate,
    claims: StaffClaims,
    request: Request,
    session: SessionDep,
    clock: ClockDep,
    settings: SettingsDep,
    provider: ProviderDep,
    key: IdempotencyKeyDep,
) -> JSONResponse:
    """Sell seats at the counter in one step: hold, charge and confirm, or nothing at all."""

    conn = await session_connection(session)

    async def handler() -> tuple[int, dict[str, Any]]:
        sale = await service.sell_seats(
            conn,
            show_id=show_id,
            seat_ids=body.seat_ids,
            method=body.method.value,
            card_number=body.card_number,
            customer_email=body.customer_email,
            user_id=body.user_id,
            provider=provider,
            region=settings.region,
            now=clock.now(),
        )
        return 201, _sale_read(sale).model_dump(mode="json")

    outcome = await run_idempotent(
        conn,
        key=key,
        scope=claims.sub,
        path=request.url.path,
        request=body,
        handler=handler,
    )
    return outcome_response(outcome)


def _sale_read(sale: service.Sale) -> SaleRead:
    reservation, payment = sale.reservation, sale.attempt.payment
    return SaleRead(
        reservation_id=reservation.id,
        show_id=reservation.show_id,
        cinema_id=reservation.cinema_id,
        amount_minor=payment.amount_minor,
        currency=payment.currency,
        customer_email=reservation.customer_email,
        user_id=reservation.user_id,
        payment=PaymentRead.model_validate(payment),
        tickets=[TicketRead.model_validate(ticket) for ticket in sale.attempt.tickets],
    )


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
