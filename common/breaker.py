"""A circuit breaker per database: while it is unreachable, refuse database work at once.

Without it every request waited out the pool's connection timeout (5 s) to answer 503. The
breaker opens on the first failed connect (the hot pool's, the engine's, or the readiness
probe's); while open, requests that need the database are refused with `503
database_unavailable` and `Retry-After`, readiness fails, and a background task tries a fresh
connection every `probe_interval` seconds; the first success closes it.
"""

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, Self

from prometheus_client import Counter, Gauge
from psycopg import AsyncConnection, OperationalError

from common.errors import DatabaseUnavailable

log = logging.getLogger("db.breaker")

DB_BREAKER_OPEN = Gauge("db_breaker_open", "1 while the database breaker is open", ["service"])
DB_BREAKER_OPENED = Counter("db_breaker_opened_total", "Times the breaker opened", ["service"])
DB_BREAKER_REFUSALS = Counter(
    "db_breaker_refusals_total", "Requests refused at once by the open breaker", ["service"]
)

Conn = AsyncConnection[Any]


class BreakerOpen(OperationalError):
    """A connect refused by the open breaker."""

    # A driver error, so code that survives an outage (SQLAlchemy's wrapping into its
    # OperationalError, start-up retries, background loops) treats it like a failed connect.


class Breaker:
    """Open on a failed connect; refuse while open; close when a background probe connects."""

    def __init__(
        self,
        dsn: str,
        *,
        service: str,
        options: dict[str, Any],
        probe_interval: float = 0.5,
        retry_after: int = 1,
    ) -> None:
        self.service = service
        self.probe_interval = probe_interval
        self.retry_after = retry_after
        self._dsn = dsn
        self._options = options
        self._opened_at: float | None = None
        self._closed = asyncio.Event()
        self._closed.set()
        self._stopped = False
        self._probe: asyncio.Task[None] | None = None
        self.on_open: list[Callable[[], Awaitable[None]]] = []  # e.g. fail the pool's waiters
        self.on_close: list[Callable[[], None]] = []  # e.g. check the pool's idle connections
        DB_BREAKER_OPEN.labels(service).set(0)

    @property
    def is_open(self) -> bool:
        """Whether database work is refused now."""
        return self._opened_at is not None

    def error(self) -> DatabaseUnavailable:
        """The error a refused request answers with."""
        return DatabaseUnavailable(retry_after=self.retry_after)

    def refusal(self) -> DatabaseUnavailable:
        """The error of one refused request, counted in `db_breaker_refusals_total`."""
        DB_BREAKER_REFUSALS.labels(self.service).inc()
        return self.error()

    def check(self) -> None:
        """Raise `DatabaseUnavailable` at once if the breaker is open."""
        if self._opened_at is not None:
            raise self.refusal()

    def trip(self, exc: BaseException) -> None:
        """Open the breaker after a failed connect (no-op if already open or stopped)."""
        if self._opened_at is not None or self._stopped:
            return
        self._opened_at = time.monotonic()
        self._closed.clear()
        DB_BREAKER_OPEN.labels(self.service).set(1)
        DB_BREAKER_OPENED.labels(self.service).inc()
        log.warning(
            "database breaker opened: refusing database work until a probe connects",
            extra={"fields": {"breaker": "open", "error": _describe(exc)}},
        )
        self._probe = asyncio.get_running_loop().create_task(self._probe_until_closed())

    async def wait_closed(self) -> None:
        """Wait until the breaker is closed (or stopped)."""
        await self._closed.wait()

    async def connect(self, **overrides: Any) -> Conn:
        """A new connection, refused at once while open; a failed connect opens the breaker."""
        if self._opened_at is not None:
            DB_BREAKER_REFUSALS.labels(self.service).inc()
            raise BreakerOpen("the database breaker is open: not connecting")
        try:
            return await AsyncConnection.connect(self._dsn, **(self._options | overrides))
        except Exception as exc:
            self.trip(exc)
            raise

    def connection_class(self) -> type[Conn]:
        """A connection class for a psycopg pool (`connection_class=`) whose connects go through us.

        The pool's background connects wait while the breaker is open, instead of backing off
        (up to 10 s between attempts), so the pool refills as soon as a probe connects; a failed
        connect opens the breaker.
        """
        breaker = self

        class BreakerConnection(AsyncConnection[Any]):
            @classmethod
            async def connect(cls, conninfo: str = "", **kwargs: Any) -> Self:
                await breaker.wait_closed()
                if breaker.is_open:  # stopped while open: the pool is closing
                    raise breaker.error()
                try:
                    return await super().connect(conninfo, **kwargs)
                except Exception as exc:
                    breaker.trip(exc)
                    raise

        return BreakerConnection

    async def stop(self) -> None:
        """Stop probing and release everything waiting for the breaker to close."""
        self._stopped = True
        self._closed.set()
        probe, self._probe = self._probe, None
        if probe is not None:
            probe.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await probe

    async def _probe_until_closed(self) -> None:
        for hook in self.on_open:
            try:
                await hook()
            except Exception:  # a failed hook must not leave the breaker open for good
                log.exception("database breaker hook failed")
        attempts = 0
        while True:
            await asyncio.sleep(self.probe_interval)
            attempts += 1
            try:
                conn = await AsyncConnection.connect(
                    self._dsn, **(self._options | {"autocommit": True, "connect_timeout": 2})
                )
                async with conn:
                    await conn.execute(b"SELECT 1")
            except Exception as exc:  # still down: the next probe tries again
                log.debug("database probe failed", extra={"fields": {"error": _describe(exc)}})
                continue
            self._close(attempts)
            return

    def _close(self, attempts: int) -> None:
        opened_at, self._opened_at = self._opened_at, None
        DB_BREAKER_OPEN.labels(self.service).set(0)
        self._closed.set()
        seconds = round(time.monotonic() - (opened_at or time.monotonic()), 3)
        log.info(
            "database breaker closed: the database answers again",
            extra={"fields": {"breaker": "closed", "open_seconds": seconds, "probes": attempts}},
        )
        for hook in self.on_close:
            hook()


def _describe(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__
