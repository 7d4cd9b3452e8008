"""Declarative base and the request session dependency of the global database."""

from collections.abc import AsyncIterator
from datetime import datetime
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy import DateTime
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import DeclarativeBase

from common.db import naming_metadata, session_scope


class Base(DeclarativeBase):
    """Base of every global ORM class."""

    metadata = naming_metadata()
    type_annotation_map = {datetime: DateTime(timezone=True)}


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    """The request's session; it commits before the response is sent."""
    request.app.state.breaker.check()  # the database is unreachable: 503 at once
    async for session in session_scope(request.app.state.sessionmaker):
        yield session


SessionDep = Annotated[AsyncSession, Depends(get_session, scope="function")]
