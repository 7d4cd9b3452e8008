"""Errors of payments, tickets and refunds, each carrying its HTTP status and code."""

from typing import Any

from common.errors import AppError, Conflict, Forbidden, NotFound, Unprocessable


class PaymentNotFound(NotFound):
    """No such payment, or the caller may not see it."""

    code = "payment_not_found"

    def __init__(self, payment_id: str) -> None:
        super().__init__("no such payment", payment_id=payment_id)


class AlreadyPaid(Conflict):
    """The reservation already has a completed payment."""

    code = "already_paid"

    def __init__(self, reservation_id: str) -> None:
        super().__init__("the reservation is already paid", reservation_id=reservation_id)


class NotPayable(Conflict):
    """The reservation was canceled, so it can no longer be paid."""

    code = "reservation_not_payable"

    def __init__(self, reservation_id: str, status: str) -> None:
        super().__init__(
            f"a {status} reservation cannot be paid",
            reservation_id=reservation_id,
            reservation_status=status,
        )


class InvalidCard(Unprocessable):
    """The card number is missing, malformed or fails the Luhn check."""

    code = "invalid_card_number"


class CashNeedsStaff(Forbidden):
    """Only box-office staff may record a cash payment."""

    code = "cash_requires_staff"

    def __init__(self) -> None:
        super().__init__("cash payments are recorded by box-office staff only")


class PaymentFailed(AppError):
    """The provider refused or did not answer; nothing was charged."""

    status = 402
    code = "payment_failed"

    def __init__(self, reason: str | None, **extra: Any) -> None:
        super().__init__(f"payment failed: {reason or 'unknown'}", reason=reason, **extra)


class PaymentInProgress(Conflict):
    """Another payment of the reservation is waiting for the provider's answer."""

    code = "payment_in_progress"

    def __init__(self, reservation_id: str) -> None:
        super().__init__(
            "a payment of this reservation is in progress", reservation_id=reservation_id
        )
