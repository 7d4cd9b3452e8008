"""Declarative base, request session dependencies and the savepoint save of the regional DB."""

from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from datetime import datetime
from typing import Annotated, Any

from fastapi import Depends, Request
from sqlalchemy import DateTime
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import DeclarativeBase

from common.db import Conn, HotPool, naming_metadata, session_scope
from common.errors import constraint_error


class Base(DeclarativeBase):
    """Base of every regional ORM class."""

    metadata = naming_metadata()
    type_annotation_map = {datetime: DateTime(timezone=True)}


async def save(
    session: AsyncSession,
    row: Base,
    changes: Mapping[str, Any],
    *,
    code: str,
    extra: Callable[[], Awaitable[dict[str, Any]]],
) -> None:
    """Apply `changes` to `row`, flush in a savepoint; a violation that is `code` gets `extra()`."""
    try:
        # Changes are made inside the savepoint: a failed flush then undoes only them.
        async with session.begin_nested():
            for field, value in changes.items():
                setattr(row, field, value)
            session.add(row)
            await session.flush()
    except IntegrityError as exc:
        error = constraint_error(exc)
        if error.code != code:
            raise
        error.extra.update(await extra())
        raise error from None


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    """The request's session; it commits before the response is sent."""
    request.app.state.breaker.check()  # the database is unreachable: 503 at once
    async for session in session_scope(request.app.state.sessionmaker):
        yield session


SessionDep = Annotated[AsyncSession, Depends(get_session, scope="function")]


async def get_autocommit_conn(request: Request) -> AsyncIterator[Conn]:
    """A pooled psycopg connection outside any transaction: each statement commits on its own."""
    async with request.app.state.pool.connection() as conn:
        yield conn


async def get_pool(request: Request) -> HotPool:
    """The app's psycopg pool, for endpoints that open and commit their own short units."""
    pool: HotPool = request.app.state.pool
    return pool


PoolDep = Annotated[HotPool, Depends(get_pool)]


def contains_pattern(text: str) -> str:
    """A LIKE pattern for `text` anywhere, its `%`, `_` and `\\` literal (ESCAPE '\\')."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"
