"""Loopback addresses that stay dead for as long as a test needs them."""

import socket
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def dead_url() -> Iterator[str]:
    """A loopback URL that refuses connections for as long as the block runs.

    The port stays bound (without listening), so no server started meanwhile can take it.
    """
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
