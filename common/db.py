"""Async SQLAlchemy engine and the per-request session that commits before the response."""

from collections.abc import AsyncIterator
from typing import Any

from prometheus_client import Gauge
from sqlalchemy import MetaData, text
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

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


def make_engine(
    dsn: str,
    *,
    service: str,
    pool_size: int = 10,
    max_overflow: int = 10,
    pool_timeout: float = 5.0,
    statement_timeout_ms: int = 5000,
) -> AsyncEngine:
    """Build the service's pooled engine; stale connections are dropped after a DB restart."""
    engine = create_async_engine(
        async_dsn(dsn),
        pool_size=pool_size,
        max_overflow=max_overflow,
        pool_timeout=pool_timeout,
        pool_pre_ping=True,
        pool_recycle=1800,
        connect_args={
            "connect_timeout": 3,
            "options": f"-c statement_timeout={statement_timeout_ms} -c timezone=UTC",
            "application_name": service,
        },
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


async def ping(engine: AsyncEngine) -> None:
    """Check that the database answers."""
    async with engine.connect() as conn:
        await conn.execute(text("SELECT 1"))


def violation(exc: Exception) -> tuple[str | None, str | None]:
    """The SQLSTATE and constraint name behind a DBAPI error (e.g. an IntegrityError), if any."""
    orig = getattr(exc, "orig", exc)
    diag = getattr(orig, "diag", None)
    return getattr(orig, "sqlstate", None), getattr(diag, "constraint_name", None)
