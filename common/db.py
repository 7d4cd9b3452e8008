"""The database pool, the SQLAlchemy engine on it and the session that commits before the response.

The hot write paths (holds, payments, idempotency keys) skip SQLAlchemy and run their plain SQL
on psycopg connections, from the pool or from a session's transaction: SQLAlchemy's checkout,
BEGIN and per-statement overhead cost more CPU than the statements themselves. A regional
replica has one pool (`HotPool`); its SQLAlchemy engine borrows connections from it
(`pool_engine`), as psycopg's pool documentation describes ("#pool-sqlalchemy").
"""

import asyncio
import functools
from collections.abc import AsyncIterator, Mapping
from typing import Any, LiteralString

import psycopg
from prometheus_client import Gauge
from psycopg import AsyncConnection
from psycopg.pq import TransactionStatus
from psycopg.rows import namedtuple_row
from psycopg_pool import AsyncConnectionPool
from sqlalchemy import Connection, MetaData, event
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.pool import NullPool

from common.breaker import Breaker

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

DB_POOL_IN_USE = Gauge("db_pool_connections_in_use", "Pooled connections checked out", ["service"])
DB_POOL_SIZE = Gauge("db_pool_size", "Configured pool size (max connections)", ["service"])


def naming_metadata() -> MetaData:
    """A MetaData whose constraints get predictable names."""
    return MetaData(naming_convention=NAMING_CONVENTION)


def async_dsn(dsn: str) -> str:
    """Turn any postgresql:// DSN into the psycopg 3 SQLAlchemy form."""
    for prefix in ("postgresql+psycopg://", "postgresql://", "postgres://"):
        if dsn.startswith(prefix):
            return "postgresql+psycopg://" + dsn[len(prefix) :]
    raise ValueError("expected a postgresql:// DSN")


Conn = AsyncConnection[Any]


def plain_dsn(dsn: str) -> str:
    """Turn any postgresql:// DSN (SQLAlchemy's +psycopg form included) into libpq's form."""
    return "postgresql://" + async_dsn(dsn).removeprefix("postgresql+psycopg://")


Params = Mapping[str, Any] | None


async def run(conn: Conn, query: LiteralString, params: Params = None) -> None:
    """Run a statement whose rows, if any, are not needed."""
    await conn.execute(query, params)


async def fetch(conn: Conn, query: LiteralString, params: Params = None) -> list[Any]:
    """Run a statement that returns rows; the rows as named tuples."""
    cursor = conn.cursor(row_factory=namedtuple_row)
    await cursor.execute(query, params)
    return await cursor.fetchall()


async def fetch_one(conn: Conn, query: LiteralString, params: Params = None) -> Any:
    """Run a statement; its first row, or None."""
    rows = await fetch(conn, query, params)
    return rows[0] if rows else None


async def session_connection(session: AsyncSession) -> Conn:
    """The psycopg connection under a session, inside the session's transaction."""
    connection = await session.connection()
    driver: Conn | None = (await connection.get_raw_connection()).driver_connection
    assert driver is not None  # a checked-out connection is never detached
    return driver


def session_options(service: str, statement_timeout_ms: int) -> dict[str, Any]:
    """Connection settings every connection of `service` gets (timeouts, UTC, no JIT)."""
    return {
        "connect_timeout": 3,
        # No JIT: compiling a plan costs 100+ ms, more than any statement of ours runs
        # (docs/benchmarks/growth.md: the 30-day report).
        "options": f"-c statement_timeout={statement_timeout_ms} -c timezone=UTC -c jit=off",
        "application_name": service,
    }


def make_breaker(dsn: str, *, service: str, probe_interval: float = 0.5) -> Breaker:
    """The database's circuit breaker, shared by the service's hot pool, engine and probe."""
    options = session_options(service, statement_timeout_ms=2000)
    return Breaker(plain_dsn(dsn), service=service, options=options, probe_interval=probe_interval)


def hot_options(service: str, statement_timeout_ms: int) -> dict[str, Any]:
    """Connection settings of the hot pool: autocommit, every statement planned once.

    Its statements are prepared on first use and keep one generic plan per connection, so a
    hold or payment never pays for planning again (custom plans cost 0.2-1 ms a call;
    `tests/regional_api/test_plans.py` checks each statement and docs/benchmarks/holds.md
    has the figures).
    """
    options = session_options(service, statement_timeout_ms)
    options["options"] += " -c plan_cache_mode=force_generic_plan"
    return options | {"autocommit": True, "prepare_threshold": 0}


class HotPool(AsyncConnectionPool[Conn]):
    """A pool that checks its idle connections as soon as one comes back broken.

    After a database restart every idle connection is broken, and each would fail the next
    request that takes it; the check replaces them at once, so only the requests in flight
    during the outage fail. Checking on every checkout would cost a round trip per request.

    With a breaker (`attach`), a checkout is refused at once while it is open, and so are the
    requests already waiting for a connection when it opens. Its connects go through the
    breaker (`Breaker.connection_class`): a failed one opens it, and while it is open the
    pool's reconnection attempts wait for it to close.
    """

    checking: "asyncio.Task[None] | None" = None  # the check running now, if any
    breaker: Breaker | None = None
    lent: dict[Conn, "HotPool"]  # connections sessions have now (`lend`); set by `make_pool`

    async def lend(self) -> Conn:
        """A connection for a SQLAlchemy session: in transactions, nothing prepared."""
        conn = await self.getconn()
        while not _open(conn):  # closed by the server meanwhile: give it back, take another
            await self.putconn(conn)
            conn = await self.getconn()
        self.lent[conn] = self
        try:
            await conn.set_autocommit(False)
        except BaseException:
            await self.putconn(conn)
            raise
        conn.prepare_threshold = None  # each statement planned for its values
        return conn

    def attach(self, breaker: Breaker) -> None:
        """Refuse checkouts while `breaker` is open; check the idle connections when it closes."""
        self.breaker = breaker
        self.waiting: set[asyncio.Task[Any]] = set()  # requests in `getconn` now
        self.refusing: set[asyncio.Task[Any]] = set()  # those `fail_waiting` cancelled
        breaker.on_open.append(self.fail_waiting)
        breaker.on_close.append(self.check_soon)

    async def getconn(self, timeout: float | None = None) -> Conn:  # noqa: ASYNC109 (the pool's)
        """A pooled connection; refused at once while the breaker is open."""
        breaker = self.breaker
        if breaker is None:
            return await super().getconn(timeout)
        breaker.check()
        task = asyncio.current_task()
        assert task is not None  # always called from a task
        self.waiting.add(task)
        try:
            return await super().getconn(timeout)
        except asyncio.CancelledError:
            if task not in self.refusing:
                raise
            task.uncancel()  # the cancellation was ours: answer it as a refusal
            raise breaker.refusal() from None
        finally:
            self.waiting.discard(task)
            self.refusing.discard(task)

    async def fail_waiting(self) -> None:
        """Refuse every request waiting for a connection: none will come while the breaker is open."""
        # psycopg_pool takes a cancelled waiter out of its queue (a connection handed to it
        # meanwhile goes back to the pool); `getconn` turns our cancellation into a 503.
        for task in self.waiting - self.refusing:
            self.refusing.add(task)
            task.cancel()

    async def putconn(self, conn: Conn) -> None:
        """Return `conn`; if it is broken, check the idle connections too."""
        if self.lent.pop(conn, None) is not None and not conn.closed:
            await restore_hot(conn)
        broken = conn.broken
        await super().putconn(conn)
        if broken:
            self.check_soon()

    def check_soon(self) -> None:
        """Check the idle connections in the background (once at a time)."""
        if not self.closed and (self.checking is None or self.checking.done()):
            self.checking = asyncio.get_running_loop().create_task(self.check())


def _open(conn: Conn) -> bool:
    """Whether the server has not closed `conn`: reads what already arrived, no round trip."""
    # A restarted server or a terminated backend closes the socket; SQLAlchemy's pre-ping
    # found those with a round trip per checkout, this finds them with a non-blocking read.
    try:
        conn.pgconn.consume_input()  # the backend's goodbye, if any
        conn.pgconn.consume_input()  # then the end of the stream
    except psycopg.OperationalError:
        return False
    return not conn.broken


def _returning(base: type[Conn], lent: dict[Conn, HotPool]) -> type[Conn]:
    """`base` whose close gives a lent connection back to its pool, even a broken one."""

    class Returning(base):  # type: ignore[valid-type,misc]
        async def close(self) -> None:
            pool = lent.get(self)
            # psycopg's `close_returns` skips a closed connection: it would never come back.
            if pool is not None and self.closed:
                await pool.putconn(self)
            else:
                await super().close()

    return Returning


def make_pool(
    dsn: str,
    *,
    service: str,
    size: int = 10,
    timeout: float = 5.0,
    statement_timeout_ms: int = 5000,
    breaker: Breaker | None = None,
) -> HotPool:
    """The service's one psycopg pool of autocommit connections (`await pool.open()` it).

    A connection broken by a database restart fails its request (503) and is replaced, and the
    idle ones are checked then (`HotPool`); so they are when `breaker` closes again. Sessions
    borrow its connections too (`pool_engine`): closing one returns it (`close_returns`), and
    `HotPool.putconn` gives it back its hot settings (`restore_hot`).
    """
    lent: dict[Conn, HotPool] = {}
    base = breaker.connection_class() if breaker is not None else AsyncConnection
    pool = HotPool(
        plain_dsn(dsn),
        connection_class=_returning(base, lent),
        min_size=min(2, size),
        max_size=size,
        timeout=timeout,
        kwargs=hot_options(service, statement_timeout_ms),
        open=False,
        name=service,
        close_returns=True,
    )
    pool.lent = lent
    if breaker is not None:
        pool.attach(breaker)

    def in_use() -> float:
        stats = pool.get_stats()
        return float(stats.get("pool_size", 0) - stats.get("pool_available", 0))

    DB_POOL_SIZE.labels(service).set(size)
    DB_POOL_IN_USE.labels(service).set_function(in_use)
    return pool


# `force_generic_plan` (a hot connection's setting) also binds unprepared statements with
# parameters (psycopg sends them as unnamed prepared statements), and reports and listings
# need plans for their values (tests/common/test_db.py). Transaction-scoped: nothing leaks
# past the session; set as each transaction begins (SQLAlchemy's documented `begin` hook).
CUSTOM_PLANS = "SET LOCAL plan_cache_mode = auto"


def _custom_plans(connection: Connection) -> None:
    connection.exec_driver_sql(CUSTOM_PLANS)


async def restore_hot(conn: Conn) -> None:
    """Give a connection a session borrowed back its hot settings: autocommit, prepared."""
    # Here rather than as the pool's `reset`: with one, psycopg_pool returns every connection,
    # the hot paths' too, through a worker task.
    try:
        if conn.info.transaction_status != TransactionStatus.IDLE:
            await conn.rollback()
        await conn.set_autocommit(True)
        conn.prepare_threshold = 0
    except psycopg.Error:
        conn.pgconn.finish()  # unusable: the pool discards it and connects a new one


def pool_engine(pool: HotPool, dsn: str) -> AsyncEngine:
    """A SQLAlchemy engine whose connections come from `pool` and go back there on close.

    No pool of its own (`NullPool`) and no pre-ping: the breaker refuses checkouts while the
    database is down and `HotPool.check_soon` replaces the broken connections.
    """
    engine = create_async_engine(async_dsn(dsn), poolclass=NullPool, async_creator=pool.lend)
    event.listen(engine.sync_engine, "begin", _custom_plans)
    return engine


def make_engine(
    dsn: str,
    *,
    service: str,
    pool_size: int = 10,
    max_overflow: int = 10,
    pool_timeout: float = 5.0,
    statement_timeout_ms: int = 5000,
    breaker: Breaker | None = None,
) -> AsyncEngine:
    """Build the service's pooled engine; stale connections are dropped after a DB restart.

    With a `breaker`, connects go through it: refused at once while it is open, and a failed
    one opens it.
    """
    options = session_options(service, statement_timeout_ms)
    connecting: dict[str, Any] = {"connect_args": options}
    if breaker is not None:
        connecting = {"async_creator": functools.partial(breaker.connect, **options)}
    engine = create_async_engine(
        async_dsn(dsn),
        pool_size=pool_size,
        max_overflow=max_overflow,
        pool_timeout=pool_timeout,
        pool_pre_ping=True,
        pool_recycle=1800,
        **connecting,
    )
    DB_POOL_SIZE.labels(service).set(pool_size + max_overflow)
    pool: Any = engine.pool
    DB_POOL_IN_USE.labels(service).set_function(lambda: float(pool.checkedout()))
    return engine


def make_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """Sessions that keep loaded objects usable after commit."""
    return async_sessionmaker(engine, expire_on_commit=False, autoflush=False)


async def session_scope(maker: async_sessionmaker[AsyncSession]) -> AsyncIterator[AsyncSession]:
    """Yield a session, then commit: the commit happens before the response is sent."""
    async with maker() as session:
        try:
            yield session
            await session.commit()
        except BaseException:
            await session.rollback()
            raise


_PING = "SELECT 1"


async def ping(engine: AsyncEngine) -> None:
    """Check that the database answers."""
    async with AsyncSession(engine) as session:
        await run(await session_connection(session), _PING)
