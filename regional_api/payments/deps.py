"""Payment dependencies: the app's provider and the reservation a caller may pay or inspect."""

from typing import Annotated

from fastapi import Depends, Request

from common.auth import Claims
from regional_api.config import RegionalSettings, get_settings
from regional_api.db import SessionDep
from regional_api.payments.provider import PaymentProvider, SimulatedProvider
from regional_api.reservations.errors import ReservationNotFound
from regional_api.reservations.models import Reservation
from schemas.auth import TokenClaims

SettingsDep = Annotated[RegionalSettings, Depends(get_settings)]


def get_provider(request: Request) -> PaymentProvider:
    """The app's payment provider; the simulated one unless a real one was installed."""
    provider: PaymentProvider | None = getattr(request.app.state, "payment_provider", None)
    if provider is None:
        provider = SimulatedProvider()
        request.app.state.payment_provider = provider
    return provider


ProviderDep = Annotated[PaymentProvider, Depends(get_provider)]


def may_act_for(claims: TokenClaims, *, user_id: str | None, cinema_id: str) -> bool:
    """Tell whether the caller owns the reservation or manages its cinema."""
    return (user_id is not None and claims.sub == user_id) or claims.may_manage(cinema_id)


async def accessible_reservation(
    reservation_id: str, claims: Claims, session: SessionDep
) -> Reservation:
    """The path's reservation if the caller owns it or manages its cinema (404 otherwise)."""
    reservation = await session.get(Reservation, reservation_id)
    if reservation is None or not may_act_for(
        claims, user_id=reservation.user_id, cinema_id=reservation.cinema_id
    ):
        raise ReservationNotFound(reservation_id)
    return reservation


AccessibleReservation = Annotated[Reservation, Depends(accessible_reservation)]
