"""The payment provider interface and the simulated provider used in development and tests.

Timeouts: the caller bounds every charge by the provider's `timeout_seconds`. A charge that does
not answer in time is recorded as `failed` with reason `provider_timeout` and the hold is kept,
so the customer may simply pay again. The charge carries our payment id as its `reference`; a
real provider deduplicates on it, so a late success of the timed-out attempt is found (and
voided) by reconciliation instead of charging twice.
"""

import asyncio
import secrets
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Protocol


class ProviderStatus(StrEnum):
    """The outcome of one charge at the provider."""

    completed = "completed"
    failed = "failed"
    pending = "pending"


@dataclass(frozen=True)
class ProviderResult:
    """What the provider answered to a charge."""

    status: ProviderStatus
    provider_ref: str | None
    failure_reason: str | None = None


class PaymentProvider(Protocol):
    """Anything that can charge an amount; a real card processor plugs in here."""

    timeout_seconds: float

    async def charge(
        self,
        *,
        amount_minor: int,
        currency: str,
        method: str,
        card_number: str | None = None,
        reference: str,
    ) -> ProviderResult:
        """Charge `amount_minor` of `currency`; `reference` makes a retried charge idempotent."""
        ...


def luhn_valid(number: str) -> bool:
    """Tell whether a digit string passes the Luhn checksum."""
    if not number.isdigit() or not 12 <= len(number) <= 19:
        return False
    total = 0
    for index, char in enumerate(reversed(number)):
        digit = int(char)
        if index % 2 == 1:
            digit = digit * 2 - 9 if digit > 4 else digit * 2
        total += digit
    return total % 10 == 0


CARD_OK = "4242424242424242"
CARD_DECLINED = "4000000000000002"
CARD_INSUFFICIENT_FUNDS = "4000000000009995"
CARD_TIMEOUT = "4000000000000119"

_CARD_FAILURES = {
    CARD_DECLINED: "card_declined",
    CARD_INSUFFICIENT_FUNDS: "insufficient_funds",
}


@dataclass
class SimulatedProvider:
    """Card, cash and online charges with well-known test card numbers.

    Any other Luhn-valid card succeeds; `CARD_TIMEOUT` never answers (the caller's timeout
    fires). Charges are remembered by reference, like a real provider's idempotency.
    """

    timeout_seconds: float = 5.0
    charges: dict[str, ProviderResult] = field(default_factory=dict)

    async def charge(
        self,
        *,
        amount_minor: int,
        currency: str,
        method: str,
        card_number: str | None = None,
        reference: str,
    ) -> ProviderResult:
        """Charge by the rules of the test cards."""
        if reference in self.charges:
            return self.charges[reference]
        if method == "card" and card_number == CARD_TIMEOUT:
            await asyncio.Event().wait()  # hangs until the caller's timeout cancels it
        result = self._decide(method, card_number)
        self.charges[reference] = result
        return result

    @staticmethod
    def _decide(method: str, card_number: str | None) -> ProviderResult:
        ref = f"sim_{secrets.token_hex(8)}"
        if method == "card":
            if card_number is None or not luhn_valid(card_number):
                return ProviderResult(ProviderStatus.failed, ref, "invalid_card_number")
            reason = _CARD_FAILURES.get(card_number)
            if reason is not None:
                return ProviderResult(ProviderStatus.failed, ref, reason)
        return ProviderResult(ProviderStatus.completed, ref)


async def charge_with_timeout(
    provider: PaymentProvider,
    *,
    amount_minor: int,
    currency: str,
    method: str,
    card_number: str | None,
    reference: str,
) -> ProviderResult:
    """Charge through `provider`, turning a late answer into a `provider_timeout` failure."""
    try:
        return await asyncio.wait_for(
            provider.charge(
                amount_minor=amount_minor,
                currency=currency,
                method=method,
                card_number=card_number,
                reference=reference,
            ),
            timeout=provider.timeout_seconds,
        )
    except TimeoutError:
        return ProviderResult(ProviderStatus.failed, None, "provider_timeout")
