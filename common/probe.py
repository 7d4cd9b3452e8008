"""The readiness probe's own database connection."""

import asyncio
from collections.abc import Callable

from psycopg import AsyncConnection

from common.breaker import Breaker
from common.db import Conn, plain_dsn, session_options


class ProbeConnection:
    """A connection of its own for readiness checks: a probe never waits behind a busy pool.

    Under a rush every pooled connection is taken; a probe queued behind them timed out and got
    a healthy, merely busy replica ejected by the router.
    """

    def __init__(
        self,
        dsn: str,
        *,
        service: str,
        on_recovery: Callable[[], None] | None = None,
        breaker: Breaker | None = None,
    ) -> None:
        self._breaker = breaker  # open: fail at once; a failed connect opens it
        self._dsn = plain_dsn(dsn)
        self._options = session_options(service, statement_timeout_ms=2000)
        self._conn: Conn | None = None
        self._lock = asyncio.Lock()
        self._failed = False
        self._on_recovery = on_recovery  # called when a ping succeeds after a failed one

    async def ping(self) -> None:
        """Check that the database answers (reconnecting after a failure)."""
        async with self._lock:
            try:
                if self._breaker is not None and self._breaker.is_open:
                    raise self._breaker.error()
                if self._conn is None or self._conn.closed:
                    self._conn = await self._connect()
                await self._conn.execute(b"SELECT 1")
            except BaseException:
                self._failed = True
                await self.close()
                raise
            if self._failed:
                self._failed = False
                if self._on_recovery is not None:
                    self._on_recovery()

    async def _connect(self) -> Conn:
        if self._breaker is not None:
            return await self._breaker.connect(autocommit=True, **self._options)
        return await AsyncConnection.connect(self._dsn, autocommit=True, **self._options)

    async def close(self) -> None:
        """Close the connection, if open."""
        conn, self._conn = self._conn, None
        if conn is not None:
            await conn.close()
