"""One payment, start to end: open in one statement, charge with nothing held, settle in one.

A customer's payment (`pay`) is two statements in autocommit, with or without an
Idempotency-Key: with one, the open stores the key with the pending answer (202 and the payment's
id) and the settle stores the final status, each in its own statement. A retry during the
charge, or after the replica died, is answered from the payment as it stands and never charges
twice. A counter sale (`sell`) holds and opens in one transaction, so it claims its key first
and stores its rendered answers in the same transactions.
"""

from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager, nullcontext
from typing import Any

from pydantic import BaseModel

from common.db import Conn, HotPool
from regional_api.clock import Clock
from regional_api.idempotency.service import Idempotency, Key, Outcome, Stored
from regional_api.payments import service
from regional_api.payments.provider import PaymentProvider
from regional_api.payments.service import Intent, PaymentAttempt

Answer = Callable[[PaymentAttempt], tuple[int, dict[str, Any]]]
Changed = Callable[[str], None]


async def pay(
    pool: HotPool,
    provider: PaymentProvider,
    *,
    idem: Idempotency,
    request: BaseModel,
    open_intent: Callable[[Conn, Key | None], Awaitable[Intent]],
    card_number: str | None,
    clock: Clock,
    answer: Answer,
    changed: Changed,
    aside: Callable[[], AbstractAsyncContextManager[None]] = nullcontext,
) -> Outcome:
    """Open (with the key, if sent), charge, settle; a used key replays the payment it opened.

    `changed` is told the show once the settle committed (its seats were sold). The charge
    runs inside `aside()`: the request's admission slot serves others while the provider decides.
    """
    key = idem.bind(request)
    async with pool.connection() as conn:
        if key is None:
            opened: Intent | Stored = await open_intent(conn, None)
        else:
            opened = await key.run(conn, lambda: open_intent(conn, key))
        if isinstance(opened, Stored):
            return await _replay(conn, opened, answer)
    async with aside():
        result = await service.charge(provider, opened, card_number)
    async with pool.connection() as conn:
        attempt = await service.settle(conn, opened, result, now=clock.now(), key=key)
    changed(opened.show_id)
    if attempt.payment.status == "refunding":  # answered once the money is back
        await service.return_money(pool, provider, attempt.payment)
    service.record(attempt.payment)
    return Outcome(*answer(attempt))


async def _replay(conn: Conn, stored: Stored, answer: Answer) -> Outcome:
    """The answer to a used key: its payment as it stands, or the answer stored whole."""
    attempt = await service.replay(conn, stored)
    if attempt is None:  # stored whole by an earlier release
        return stored.replayed()
    return Outcome(*answer(attempt), replayed=True)


async def sell(
    pool: HotPool,
    provider: PaymentProvider,
    *,
    idem: Idempotency,
    request: BaseModel,
    open_intent: Callable[[Conn], Awaitable[Intent]],
    card_number: str | None,
    clock: Clock,
    answer: Answer,
    changed: Changed,
) -> tuple[Outcome, PaymentAttempt | None]:
    """A counter sale: hold and open, charge, settle; one that does not complete leaves nothing.

    Returns the answer, and the attempt unless the answer is a replay; `changed` is told the
    show once the settle committed (its seats were sold or freed).
    """
    async with pool.connection() as conn, conn.transaction():
        replay = await idem.claim(conn, request)
        if replay is not None:
            return replay, None
        intent = await open_intent(conn)
        await idem.store(conn, *answer(intent.pending()))
    result = await service.charge(provider, intent, card_number)
    async with pool.connection() as conn, conn.transaction():
        attempt = await service.settle(conn, intent, result, now=clock.now(), is_sale=True)
        if attempt.payment.status != "refunding":
            outcome = await idem.store(conn, *answer(attempt))
    changed(intent.show_id)
    if attempt.payment.status == "refunding":  # answered once the money is back
        await service.return_money(pool, provider, attempt.payment)
        async with pool.connection() as conn:
            outcome = await idem.store(conn, *answer(attempt))
    service.record(attempt.payment)
    return outcome, attempt
