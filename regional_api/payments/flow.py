"""One payment, start to end: open in a short transaction, charge with nothing held, settle.

Customer payments and counter sales both run `pay`; only what opens the payment differs. With an
Idempotency-Key, the key is claimed with the intent and answered `202` (pending) until the
settle stores the final answer, so a retry during the charge, or after the replica died, is told
the payment is in progress and never charges twice.
"""

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

from pydantic import BaseModel

from common.db import Conn, HotPool
from regional_api.clock import Clock
from regional_api.idempotency.service import Idempotency, Outcome
from regional_api.payments import service
from regional_api.payments.provider import PaymentProvider
from regional_api.payments.service import Intent, PaymentAttempt

Answer = Callable[[PaymentAttempt], tuple[int, dict[str, Any]]]


@asynccontextmanager
async def _unit(pool: HotPool, *, transaction: bool) -> AsyncIterator[Conn]:
    """A pooled connection, in a transaction only when more than one statement must commit."""
    async with pool.connection() as conn:
        if not transaction:
            yield conn
            return
        async with conn.transaction():
            yield conn


async def pay(
    pool: HotPool,
    provider: PaymentProvider,
    *,
    idem: Idempotency,
    request: BaseModel,
    open_intent: Callable[[Conn], Awaitable[Intent]],
    card_number: str | None,
    clock: Clock,
    answer: Answer,
    is_sale: bool = False,
    changed: Callable[[str], None] | None = None,
) -> tuple[Outcome, PaymentAttempt | None]:
    """Open, charge, settle; a counter sale (`is_sale`) that does not complete leaves nothing.

    Returns the answer, and the attempt unless the answer is a replay; `changed` is told the
    show once the settle committed (its seats were sold or freed).
    """
    transaction = idem.key is not None or is_sale
    async with _unit(pool, transaction=transaction) as conn:
        replay = await idem.claim(conn, request)
        if replay is not None:
            return replay, None
        intent = await open_intent(conn)
        await idem.store(conn, *answer(intent.pending()))
    result = await service.charge(provider, intent, card_number)
    async with _unit(pool, transaction=transaction) as conn:
        attempt = await service.settle(conn, intent, result, now=clock.now(), is_sale=is_sale)
        if attempt.payment.status != "refunding":
            outcome = await idem.store(conn, *answer(attempt))
    if changed is not None:
        changed(intent.show_id)
    if attempt.payment.status == "refunding":  # answered once the money is back
        await service.return_money(pool, provider, attempt.payment)
        async with pool.connection() as conn:
            outcome = await idem.store(conn, *answer(attempt))
    service.record(attempt.payment)
    return outcome, attempt
