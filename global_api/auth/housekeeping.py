"""Background tidying: stale throttling rows, long-expired refresh tokens, the key cache."""

import asyncio
import logging

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from common import db
from global_api.config import GlobalSettings
from global_api.tokens.jwks import DatabaseJwks

log = logging.getLogger("global_api.housekeeping")

_TIDY_FAILURES = (
    "DELETE FROM login_failures WHERE updated_at < now() - make_interval(secs => %(window)s)"
)
_TIDY_TOKENS = "DELETE FROM refresh_tokens WHERE expires_at < now() - interval '1 day'"


async def tidy(maker: async_sessionmaker[AsyncSession], settings: GlobalSettings) -> None:
    """Delete rows that no longer affect any decision (correctness never depends on this)."""
    async with maker() as session, session.begin():
        conn = await db.session_connection(session)
        await db.run(conn, _TIDY_FAILURES, {"window": settings.login_failure_window_seconds})
        await db.run(conn, _TIDY_TOKENS)


async def run(
    maker: async_sessionmaker[AsyncSession],
    settings: GlobalSettings,
    jwks: DatabaseJwks,
    *,
    interval: float = 60.0,
) -> None:
    """Loop forever: reload the published keys (rotations by other workers), tidy tables."""
    while True:
        await asyncio.sleep(interval)
        try:
            await jwks.reload()
            await tidy(maker, settings)
        except SQLAlchemyError as exc:
            log.warning("housekeeping skipped", extra={"fields": {"error": type(exc).__name__}})
