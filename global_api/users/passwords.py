"""Argon2id password hashing, run in worker threads so the event loop stays free."""

from typing import Annotated

import anyio.to_thread
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from fastapi import Depends, Request

from global_api.config import GlobalSettings


def make_hasher(settings: GlobalSettings) -> PasswordHasher:
    """Build the Argon2id hasher with the configured cost."""
    return PasswordHasher(
        time_cost=settings.argon2_time_cost,
        memory_cost=settings.argon2_memory_cost,
        parallelism=settings.argon2_parallelism,
    )


async def hash_password(hasher: PasswordHasher, password: str) -> str:
    """Hash a password in a worker thread."""
    return await anyio.to_thread.run_sync(hasher.hash, password)


def _verify(hasher: PasswordHasher, stored: str, password: str) -> bool:
    try:
        return hasher.verify(stored, password)
    except (VerificationError, InvalidHashError):
        return False


async def verify_password(hasher: PasswordHasher, stored: str, password: str) -> bool:
    """Tell whether `password` matches `stored`, in a worker thread."""
    return await anyio.to_thread.run_sync(_verify, hasher, stored, password)


def get_hasher(request: Request) -> PasswordHasher:
    """The app's password hasher."""
    hasher: PasswordHasher = request.app.state.hasher
    return hasher


HasherDep = Annotated[PasswordHasher, Depends(get_hasher)]
