"""Payment endpoints: pay a reservation, read a payment, list its payments and tickets."""

from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from starlette.responses import Response

from common.auth import Claims, authenticates, optional_claims, require_claims
from common.db import Conn, HotPool
from common.ids import is_local
from common.observability import stepped_aside
from common.routing import lean
from regional_api.clock import Clock, get_clock
from regional_api.config import RegionalSettings, SettingsDep, get_settings
from regional_api.db import SessionDep, get_pool
from regional_api.idempotency.deps import idempotency, respond
from regional_api.idempotency.service import Idempotency, Key
from regional_api.payments import flow, service
from regional_api.payments.deps import get_provider
from regional_api.payments.errors import PaymentNotFound
from regional_api.payments.provider import PaymentProvider
from regional_api.payments.service import LOST_SEATS, Intent, PaymentAttempt
from regional_api.reservations.deps import (
    IDEMPOTENCY_KEY_HEADER,
    ReservationDep,
    documented_parameter,
    get_full_shows,
    may_see,
)
from regional_api.reservations.errors import ReservationNotFound
from regional_api.reservations.full_shows import FullShows
from regional_api.reservations.models import Reservation
from schemas.auth import TokenClaims
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
    """The status and JSON body that answer a payment attempt (201, 202, 402 or 409)."""
    payment = attempt.payment
    read = PaymentRead.model_validate(payment)
    if payment.status in ("completed", "pending"):
        outcome = PaymentOutcome(
            payment=read,
            reservation_id=payment.reservation_id,
            reservation_status=attempt.reservation_status,
            tickets=[TicketRead.model_validate(ticket) for ticket in attempt.tickets],
        )
        return (201 if payment.status == "completed" else 202), outcome.model_dump(mode="json")
    if payment.failure_reason == LOST_SEATS:
        body = error_body(
            "hold_expired",
            "the seats were no longer held when the charge completed; it is refunded",
            reservation_id=payment.reservation_id,
            payment=read.model_dump(mode="json"),
        )
        return 409, body
    body = error_body(
        "payment_failed",
        f"payment failed: {payment.failure_reason}",
        reason=payment.failure_reason,
        payment=read.model_dump(mode="json"),
    )
    return 402, body


@dataclass(frozen=True, slots=True)
class PaymentContext:
    """What paying a reservation needs: the caller, the app's parts and the Idempotency-Key."""

    reservation_id: str
    claims: TokenClaims
    idem: Idempotency
    pool: HotPool
    clock: Clock
    settings: RegionalSettings
    provider: PaymentProvider
    full: FullShows
    aside: Callable[[], AbstractAsyncContextManager[None]]  # lends the admission slot


# What `payment_context` reads, documented as when it declared them: like `hold_context`, it
# reads them itself (FastAPI's per-request parsing of declared parameters cost more than the
# checks; docs/benchmarks/floor.md, "App CPU per payment").
PAYMENT_PARAMETERS = [
    documented_parameter("reservation_id", "path"),
    documented_parameter(IDEMPOTENCY_KEY_HEADER, "header"),
]


@authenticates(required=True)
async def payment_context(request: Request) -> PaymentContext:
    """The context of a payment, in one dependency (see `hold_context`): token, then key."""
    claims = await require_claims(await optional_claims(request))
    key = request.headers.get(IDEMPOTENCY_KEY_HEADER)
    # Without a key its path is never read (`Idempotency.bind`), and `request.url` is not free.
    idem = (
        await idempotency(request, claims, key)
        if key is not None
        else Idempotency(None, claims.sub, request.scope["path"])
    )
    return PaymentContext(
        reservation_id=request.path_params["reservation_id"],
        claims=claims,
        idem=idem,
        pool=await get_pool(request),
        clock=await get_clock(request),
        settings=await get_settings(request),
        provider=await get_provider(request),
        full=await get_full_shows(request),
        aside=lambda: stepped_aside(request.scope),
    )


PaymentContextDep = Annotated[PaymentContext, Depends(payment_context)]
PaymentEndpoint = Callable[[PaymentCreate, PaymentContext], Awaitable[Response]]


def lean_payment(endpoint: PaymentEndpoint) -> PaymentEndpoint:
    """Serve the endpoint's valid JSON bodies without FastAPI's resolution (common.routing)."""

    async def handler(request: Request, body: PaymentCreate) -> Response:
        return await endpoint(body, await payment_context(request))

    return lean(PaymentCreate, handler)(endpoint)


@router.post(
    "/reservations/{reservation_id}/payments",
    status_code=201,
    response_model=None,
    openapi_extra={"parameters": PAYMENT_PARAMETERS},
    responses={
        201: {"model": PaymentOutcome, "description": "paid: the tickets"},
        202: {"model": PaymentOutcome, "description": "the provider has not decided yet"},
        402: {"model": ErrorBody, "description": "payment_failed; the hold is kept"},
        409: {
            "model": ErrorBody,
            "description": "already_paid, payment_in_progress, hold_expired (a charge that"
            " completed after the seats were lost is refunded)",
        },
    },
)
@lean_payment
async def pay_reservation(body: PaymentCreate, pay: PaymentContextDep) -> JSONResponse:
    """Pay a held reservation; the amount comes from its seats, tickets come back on success."""
    reservation_id, settings, provider = pay.reservation_id, pay.settings, pay.provider
    if not is_local(reservation_id, "res", settings.region):
        raise ReservationNotFound(reservation_id)
    service.check_card(body.method.value, body.card_number)
    now = pay.clock.now()

    async def open_intent(conn: Conn, key: Key | None) -> Intent:
        return await service.open_payment(
            conn,
            reservation_id=reservation_id,
            claims=pay.claims,
            method=body.method.value,
            region=settings.region,
            now=now,
            guard_until=now + settings.payment_guard(provider),
            key=key,
        )

    outcome = await flow.pay(
        pay.pool,
        provider,
        idem=pay.idem,
        request=body,
        open_intent=open_intent,
        card_number=body.card_number,
        clock=pay.clock,
        answer=attempt_answer,
        changed=pay.full.changed,
        aside=pay.aside,
    )
    return respond(outcome)


@router.get("/payments/{payment_id}", response_model=PaymentRead)
async def get_payment(
    payment_id: str, claims: Claims, session: SessionDep, settings: SettingsDep
) -> PaymentRead:
    """Read a payment of a reservation the caller owns or manages."""
    if not is_local(payment_id, "pay", settings.region):
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
