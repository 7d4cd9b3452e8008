"""Wait for a condition with a deadline instead of sleeping a fixed time."""

import time
from collections.abc import Callable


def wait_until(check: Callable[[], bool], timeout: float = 45.0, interval: float = 0.05) -> None:
    """Poll `check` until it holds; fail when `timeout` seconds pass first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(interval)
    raise AssertionError(f"condition not met within {timeout} s")
