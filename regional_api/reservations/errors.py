"""Errors of holds and reservations, each carrying its HTTP status and code."""

from typing import Any

from common.errors import Conflict, NotFound, Unprocessable


class SeatsTaken(Conflict):
    """Some requested seats are held or sold by someone else (or blocked)."""

    code = "seats_taken"

    def __init__(self, seats: list[str], **extra: Any) -> None:
        super().__init__("some seats are not available", seats=seats, **extra)


class UnknownSeats(Unprocessable):
    """Some requested seat ids are not seats of this show."""

    code = "unknown_seats"

    def __init__(self, seat_ids: list[int]) -> None:
        super().__init__("some seats do not belong to this show", seat_ids=seat_ids)


class NoAdjacentSeats(Conflict):
    """No block of adjacent free seats of the wanted size and type exists."""

    code = "no_adjacent_seats"

    def __init__(self, count: int, seat_type: str | None) -> None:
        super().__init__(f"no {count} adjacent free seats", count=count, seat_type=seat_type)


class HoldExpired(Conflict):
    """The hold lapsed and some of its seats now belong to someone else."""

    code = "hold_expired"

    def __init__(self, reservation_id: str) -> None:
        super().__init__("the hold expired and its seats are gone", reservation_id=reservation_id)


class ReservationNotFound(NotFound):
    """No such reservation, or the caller may not see it."""

    code = "reservation_not_found"

    def __init__(self, reservation_id: str) -> None:
        super().__init__("no such reservation", reservation_id=reservation_id)


class ShowNotFound(NotFound):
    """No such show in this region."""

    code = "show_not_found"

    def __init__(self, show_id: str) -> None:
        super().__init__("no such show", show_id=show_id)


class ShowNotBookable(Conflict):
    """The show is canceled or has already started."""

    code = "show_not_bookable"

    def __init__(self, show_id: str, reason: str) -> None:
        super().__init__(f"show is {reason}", show_id=show_id, reason=reason)


class SeatCapExceeded(Conflict):
    """The customer would hold more seats of one show than allowed."""

    code = "seat_cap_exceeded"

    def __init__(self, limit: int, active: int) -> None:
        super().__init__(f"at most {limit} seats per customer per show", limit=limit, active=active)


class InvalidReservationState(Conflict):
    """The reservation is not in a state that allows this action."""

    code = "invalid_reservation_state"

    def __init__(self, reservation_id: str, status: str, action: str) -> None:
        super().__init__(
            f"cannot {action} a reservation that is {status}",
            reservation_id=reservation_id,
            reservation_status=status,
            action=action,
        )


class ExtensionRefused(Conflict):
    """No extension is left, the hold lapsed, or the hold reached its cap."""

    code = "extension_refused"

    def __init__(self, reservation_id: str, reason: str) -> None:
        super().__init__(
            f"hold cannot be extended: {reason}", reservation_id=reservation_id, reason=reason
        )


class CancelTooLate(Conflict):
    """Customers may cancel only up to the cut-off before the show."""

    code = "cancel_too_late"

    def __init__(self, cutoff_minutes: int) -> None:
        super().__init__(
            f"reservations can be canceled up to {cutoff_minutes} minutes before the show",
            cutoff_minutes=cutoff_minutes,
        )
