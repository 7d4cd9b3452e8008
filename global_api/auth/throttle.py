"""Failed-login throttling per account and per client address (sliding window, in the DB)."""

import math
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from common.db import fetch, run, session_connection

_RECORD = """
INSERT INTO login_failures AS lf (key, failures, updated_at)
VALUES (%(key)s, ARRAY[now()], now())
ON CONFLICT (key) DO UPDATE SET
    failures = ARRAY(
        SELECT f FROM (
            SELECT f FROM unnest(lf.failures) AS f
            WHERE f > now() - make_interval(secs => %(window)s)
            ORDER BY f DESC LIMIT %(keep)s
        ) AS recent ORDER BY f
    ) || now(),
    updated_at = now()
"""

_READ = "SELECT now() AS now, key, failures FROM login_failures WHERE key = ANY(%(keys)s)"
_CLEAR = "DELETE FROM login_failures WHERE key = %(key)s"


def account_key(email: str) -> str:
    """The throttling key of an account (by email in any case)."""
    return f"account:{email.strip().lower()}"


def address_key(address: str) -> str:
    """The throttling key of a client address."""
    return f"address:{address}"


def _wait(failures: list[datetime], now: datetime, *, threshold: int, window: timedelta) -> int:
    recent = sorted(f for f in failures if f > now - window)
    if len(recent) < threshold:
        return 0
    # The window frees up once enough of the oldest failures have slid out of it.
    lapses_at = recent[len(recent) - threshold] + window
    return max(1, math.ceil((lapses_at - now).total_seconds()))


async def retry_after(
    session: AsyncSession, *, keys: list[str], threshold: int, window_seconds: int
) -> int:
    """Seconds until a login may be tried again for these keys (0: now)."""
    rows = await fetch(await session_connection(session), _READ, {"keys": keys})
    window = timedelta(seconds=window_seconds)
    return max(
        (_wait(row.failures, row.now, threshold=threshold, window=window) for row in rows),
        default=0,
    )


async def record_failure(
    session: AsyncSession, *, keys: list[str], threshold: int, window_seconds: int
) -> None:
    """Add a failed login to each key's window (an atomic upsert per key)."""
    conn = await session_connection(session)
    for key in keys:
        await run(conn, _RECORD, {"key": key, "window": window_seconds, "keep": threshold})


async def clear_failures(session: AsyncSession, *, key: str) -> None:
    """Forget the failures of a key (after a successful login)."""
    await run(await session_connection(session), _CLEAR, {"key": key})
