"""Settle the payments whose answer was lost: the provider is asked by reference.

A replica that dies between the charge and the settle leaves its payment `pending` with the
seats guarded for the provider's timeout plus `payment_guard_seconds`. Past the timeout plus
`payment_reconcile_margin_seconds`, any replica settles it: a completed charge sells the seats
(or is refunded when they are gone), a failed or unknown one is recorded as failed. Every step
is conditional on the payment's status in the database and the provider deduplicates by
reference, so a payment is settled and refunded at most once even with several replicas
reconciling at the same time.
"""

import asyncio
import logging
from datetime import timedelta
from typing import Any

from fastapi import FastAPI

from common.db import HotPool, fetch
from regional_api.clock import Clock
from regional_api.config import RegionalSettings
from regional_api.payments import service
from regional_api.payments import statements as sql
from regional_api.payments.metrics import RECONCILE_ROUNDS, RECONCILED
from regional_api.payments.provider import PaymentProvider, ProviderStatus
from regional_api.payments.service import Intent, PaymentRecord

log = logging.getLogger("payments.reconcile")

BATCH = 100


async def reconcile_once(app: FastAPI) -> int:
    """Settle every payment left unsettled past the provider's timeout; how many were."""
    pool: HotPool = app.state.pool
    provider: PaymentProvider = app.state.payment_provider
    clock: Clock = app.state.clock
    settings: RegionalSettings = app.state.settings
    margin = provider.timeout_seconds + settings.payment_reconcile_margin_seconds
    before = clock.now() - timedelta(seconds=margin)
    async with pool.connection() as conn:
        rows = await fetch(conn, sql.UNSETTLED, {"before": before, "limit": BATCH})
    settled = 0
    for row in rows:
        outcome = await _settle(pool, provider, clock, row)
        if outcome is not None:
            settled += 1
            RECONCILED.labels(outcome).inc()
            log.warning(
                "payment reconciled",
                extra={"fields": {"payment_id": row.id, "outcome": outcome}},
            )
    return settled


async def _settle(pool: HotPool, provider: PaymentProvider, clock: Clock, row: Any) -> str | None:
    """Settle one payment; its final status, or None when the provider has not decided."""
    payment = PaymentRecord(
        id=row.id,
        reservation_id=row.reservation_id,
        method=row.method,
        status=row.status,
        amount_minor=row.amount_minor,
        currency=row.currency,
        created_at=row.created_at,
        provider_ref=row.provider_ref,
        failure_reason=row.failure_reason,
    )
    if row.status == "pending":
        result = await provider.lookup(row.id)
        if result is None:  # the charge never reached the provider
            result = service.NEVER_CHARGED
        elif result.status is ProviderStatus.pending:
            return None
        intent = Intent(payment, row.show_id, int(row.seats))
        is_sale = row.channel == "box_office"
        async with pool.connection() as conn, conn.transaction():
            attempt = await service.settle(conn, intent, result, now=clock.now(), is_sale=is_sale)
        payment = attempt.payment
    if payment.status == "refunding":
        await service.return_money(pool, provider, payment)
    service.record(payment)
    return payment.status


async def run_forever(app: FastAPI) -> None:
    """Reconcile every `payment_reconcile_interval_seconds`, surviving database outages."""
    settings: RegionalSettings = app.state.settings
    while True:
        try:
            await reconcile_once(app)
        except Exception as exc:  # the database or the provider may be down: next round
            RECONCILE_ROUNDS.labels("failed").inc()
            log.warning("reconcile failed", extra={"fields": {"error": type(exc).__name__}})
        else:
            RECONCILE_ROUNDS.labels("ok").inc()
        await asyncio.sleep(settings.payment_reconcile_interval_seconds)
