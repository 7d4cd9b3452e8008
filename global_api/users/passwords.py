"""Argon2id password hashing, run in worker threads so the event loop stays free.

Each hash or verify allocates `argon2_memory_cost` KiB (64 MiB by default) for its duration,
and its `argon2_parallelism` lanes already run in threads of their own: on anyio's shared
40-thread limiter a burst of logins would take 40 x 64 MiB at once for no more throughput.
So hashing has a limiter of its own, `argon2_max_concurrent` (default 1) wide.
"""

from typing import Annotated

import anyio.to_thread
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from fastapi import Depends, Request

from global_api.config import GlobalSettings


class BoundedHasher(PasswordHasher):
    """A `PasswordHasher` that carries the limiter its hashes run under."""

    def __init__(
        self, *, max_concurrent: int, time_cost: int, memory_cost: int, parallelism: int
    ) -> None:
        super().__init__(time_cost=time_cost, memory_cost=memory_cost, parallelism=parallelism)
        self.limiter = anyio.CapacityLimiter(max_concurrent)


# For a plain PasswordHasher (not built by make_hasher): one hash at a time.
_DEFAULT_LIMITER = anyio.CapacityLimiter(1)


def _limiter(hasher: PasswordHasher) -> anyio.CapacityLimiter:
    return hasher.limiter if isinstance(hasher, BoundedHasher) else _DEFAULT_LIMITER


def make_hasher(settings: GlobalSettings) -> PasswordHasher:
    """Build the Argon2id hasher with the configured cost and concurrency."""
    return BoundedHasher(
        max_concurrent=settings.argon2_max_concurrent,
        time_cost=settings.argon2_time_cost,
        memory_cost=settings.argon2_memory_cost,
        parallelism=settings.argon2_parallelism,
    )


async def hash_password(hasher: PasswordHasher, password: str) -> str:
    """Hash a password in a worker thread, within the hasher's concurrency limit."""
    return await anyio.to_thread.run_sync(hasher.hash, password, limiter=_limiter(hasher))


def _verify(hasher: PasswordHasher, stored: str, password: str) -> bool:
    try:
        return hasher.verify(stored, password)
    except (VerificationError, InvalidHashError):
        return False


async def verify_password(hasher: PasswordHasher, stored: str, password: str) -> bool:
    """Tell whether `password` matches `stored`, in a worker thread, within the limit."""
    return await anyio.to_thread.run_sync(
        _verify, hasher, stored, password, limiter=_limiter(hasher)
    )


def get_hasher(request: Request) -> PasswordHasher:
    """The app's password hasher."""
    hasher: PasswordHasher = request.app.state.hasher
    return hasher


HasherDep = Annotated[PasswordHasher, Depends(get_hasher)]
