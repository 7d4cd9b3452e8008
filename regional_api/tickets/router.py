"""A paid reservation's ticket as a QR code, for its holder's phone or printout."""

from typing import Annotated

from fastapi import APIRouter, Path
from fastapi.responses import Response

from common.errors import NotFound
from regional_api.db import SessionDep
from regional_api.payments.service import tickets_of
from regional_api.reservations.deps import ReservationDep
from regional_api.tickets.qr import ticket_svg
from schemas.errors import ErrorBody
from schemas.payments import TICKET_CODE_PATTERN

router = APIRouter(tags=["tickets"])

TicketCode = Annotated[str, Path(pattern=TICKET_CODE_PATTERN, max_length=100)]


@router.get(
    "/reservations/{reservation_id}/tickets/{code}/qr.svg",
    response_class=Response,
    responses={
        200: {"content": {"image/svg+xml": {}}, "description": "the ticket's QR code"},
        404: {"model": ErrorBody, "description": "reservation_not_found, ticket_not_found"},
    },
)
async def ticket_qr_code(
    reservation: ReservationDep, code: TicketCode, session: SessionDep
) -> Response:
    """Render a ticket of a paid reservation as a QR code of its check-in code (SVG)."""
    paid = reservation.status == "confirmed"
    tickets = await tickets_of(session, reservation.id) if paid else []
    if not any(ticket.code == code for ticket in tickets):
        raise NotFound("no ticket with this code in this reservation", code="ticket_not_found")
    # The code never changes; a canceled ticket's image is harmless (the door refuses it).
    headers = {"Cache-Control": "private, max-age=3600"}
    return Response(ticket_svg(code), media_type="image/svg+xml", headers=headers)
