"""The payment provider interface and the simulated provider used in development and tests.

The provider is another system: it is called with no database connection held (see
`payments/service.py`). Every charge carries our payment id as its `reference`; the provider
deduplicates on it, answers `lookup(reference)` for a charge whose answer we never got (a
replica that died mid-charge, a timeout), and `refund(reference)` returns its money at most once.
"""

import asyncio
import secrets
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Protocol

import httpx


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


TIMED_OUT = ProviderResult(ProviderStatus.failed, None, "provider_timeout")
# No answer at all (connection refused or cut): the charge may or may not have happened, so the
# payment stays pending and the reconciler asks the provider by reference later.
UNREACHABLE = ProviderResult(ProviderStatus.pending, None, "provider_unreachable")


class PaymentProvider(Protocol):
    """Anything that can charge, look up and refund by reference; a card processor plugs in here."""

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

    async def lookup(self, reference: str) -> ProviderResult | None:
        """The outcome of the charge with this reference; None if it never arrived."""
        ...

    async def refund(self, reference: str) -> bool:
        """Return the money of a completed charge once; False if nothing was charged."""
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
    fires). A charge is decided and booked when it arrives and answered `latency_seconds`
    later (cash at once), like a card processor across a network: a caller that dies while
    waiting has been charged all the same. Charges are remembered by reference.
    """

    timeout_seconds: float = 5.0
    latency_seconds: float = 0.0
    charges: dict[str, ProviderResult] = field(default_factory=dict)
    refunded: list[str] = field(default_factory=list)  # references whose money went back
    in_flight: int = 0
    max_in_flight: int = 0  # the most charges answered at once: callers do not queue

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
        result = self.charges[reference] = self._decide(method, card_number)
        if method != "cash" and self.latency_seconds > 0:
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            try:
                await asyncio.sleep(self.latency_seconds)
            finally:
                self.in_flight -= 1
        return result

    async def lookup(self, reference: str) -> ProviderResult | None:
        """The booked outcome of a charge."""
        return self.charges.get(reference)

    async def refund(self, reference: str) -> bool:
        """Refund a completed charge once."""
        result = self.charges.get(reference)
        if result is None or result.status is not ProviderStatus.completed:
            return False
        if reference not in self.refunded:
            self.refunded.append(reference)
        return True

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
    """Charge through `provider`: a late answer is `TIMED_OUT` (voided by the caller), none at
    all `UNREACHABLE` (left pending for the reconciler)."""
    try:  # asyncio.timeout, not wait_for: the charge runs in this task, no task of its own
        async with asyncio.timeout(provider.timeout_seconds):
            return await provider.charge(
                amount_minor=amount_minor,
                currency=currency,
                method=method,
                card_number=card_number,
                reference=reference,
            )
    except TimeoutError:
        return TIMED_OUT
    except (OSError, httpx.HTTPError):
        return UNREACHABLE
