"""Declarative base and the request session dependency of the regional database."""

from collections.abc import AsyncIterator
from datetime import datetime
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy import DateTime
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import DeclarativeBase

from common.db import Conn, HotPool, naming_metadata, pool_transaction, session_scope


class Base(DeclarativeBase):
    """Base of every regional ORM class."""

    metadata = naming_metadata()
    type_annotation_map = {datetime: DateTime(timezone=True)}


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    """The request's session; it commits before the response is sent."""
    request.app.state.breaker.check()  # the database is unreachable: 503 at once
    async for session in session_scope(request.app.state.sessionmaker):
        yield session


SessionDep = Annotated[AsyncSession, Depends(get_session, scope="function")]


async def get_conn(request: Request) -> AsyncIterator[Conn]:
    """The request's psycopg connection in a transaction that commits before the response."""
    async for conn in pool_transaction(request.app.state.pool):
        yield conn


ConnDep = Annotated[Conn, Depends(get_conn, scope="function")]


async def get_autocommit_conn(request: Request) -> AsyncIterator[Conn]:
    """A pooled psycopg connection outside any transaction: each statement commits on its own."""
    async with request.app.state.pool.connection() as conn:
        yield conn


AutocommitConnDep = Annotated[Conn, Depends(get_autocommit_conn, scope="function")]


async def get_pool(request: Request) -> HotPool:
    """The app's psycopg pool, for endpoints that open and commit their own short units."""
    pool: HotPool = request.app.state.pool
    return pool


PoolDep = Annotated[HotPool, Depends(get_pool)]
