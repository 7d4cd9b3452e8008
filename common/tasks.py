"""Background tasks of a service's lifespan."""

import asyncio
import contextlib
from collections.abc import Iterable
from typing import Any


async def cancel_all(tasks: Iterable["asyncio.Task[Any] | None"]) -> None:
    """Cancel every task, then wait for each to finish (a lifespan's shutdown)."""
    running = [task for task in tasks if task is not None]
    for task in running:
        task.cancel()
    for task in running:
        with contextlib.suppress(asyncio.CancelledError):
            await task
