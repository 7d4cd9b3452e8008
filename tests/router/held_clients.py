"""Hold many client connections to a router from a child process (one process opens ~20,000 files).

`python -m tests.router.held_clients BASE TARGET COUNT` opens COUNT connections to the router at
BASE and sends `GET TARGET` on each; with TARGET `-` it sends `GET /healthz` and leaves the
connection idle after the answer. It prints `held` once every request is sent, then, for a
watch, waits for every answer and prints one JSON line: answers counted by (status, version,
sold_out), and the wall-clock time the last one was read. It closes the connections when its
standard input closes.
"""

import asyncio
import json
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from subprocess import PIPE, Popen, TimeoutExpired
from typing import Any

from tests.support.poll import wait_until

# Connections one child opens: under the router's listen backlog (2048), since a connection the
# full backlog drops is held by neither side; the next child starts once the router has them.
PER_PROCESS = 2000
_BATCH = 250  # connections opened at once (under the listen backlog)
_PATIENCE = 120.0  # seconds a child waits for its answers; those missing are tallied as status 0


async def answer(reader: asyncio.StreamReader) -> tuple[int, dict[str, Any], dict[str, str]]:
    """Read one HTTP/1.1 answer with a content-length: status, JSON body, headers."""
    head = await reader.readuntil(b"\r\n\r\n")
    status, headers = _head(head)
    body = await reader.readexactly(int(headers["content-length"]))
    return status, json.loads(body), headers


def _head(head: bytes) -> tuple[int, dict[str, str]]:
    """Status and headers (lower-case names) of an answer's head."""
    lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.lower().split(": ", 1) for line in lines[1:] if ": " in line)
    return int(lines[0].split()[1]), headers


class _Held(asyncio.Protocol):
    """One held connection: its request sent, its first answer read (no task or stream each,
    so that the reader of 2,000 answers is not slower than the router writing them)."""

    def __init__(self, request: bytes, answered: Callable[[], None]) -> None:
        self.request = request
        self.answered = answered
        self.buffer = b""
        self.result: tuple[int, str | None, Any] | None = None
        self.read_at = 0.0
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        transport.write(self.request)

    def data_received(self, data: bytes) -> None:
        if self.result is not None:
            return
        self.buffer += data
        head, found, body = self.buffer.partition(b"\r\n\r\n")
        if not found:
            return
        status, headers = _head(head)
        length = int(headers.get("content-length", "0"))
        if len(body) < length:
            return
        self.read_at = time.time()
        sold_out = json.loads(body[:length]).get("sold_out")
        self.result = (status, headers.get("x-watch-version"), sold_out)
        self.buffer = b""
        self.answered()


async def _hold(base: str, target: str, count: int) -> None:
    host, port = base.removeprefix("http://").split(":")
    loop = asyncio.get_running_loop()
    idle = target == "-"
    request = f"GET {'/healthz' if idle else target} HTTP/1.1\r\nHost: router\r\n\r\n".encode()
    answered = 0
    wanted = 0
    enough = asyncio.Event()

    def one_more() -> None:
        nonlocal answered
        answered += 1
        if answered >= wanted:
            enough.set()

    held: list[_Held] = []
    for start in range(0, count, _BATCH):
        batch = min(_BATCH, count - start)
        opened = await asyncio.gather(
            *(
                loop.create_connection(lambda: _Held(request, one_more), host, int(port))
                for _ in range(batch)
            )
        )
        held += [connection for _, connection in opened]
        if idle:
            wanted, enough = start + batch, asyncio.Event()
            if answered < wanted:
                await asyncio.wait_for(enough.wait(), _PATIENCE)
    print("held", flush=True)
    if not idle:
        wanted, enough = count, asyncio.Event()
        if answered < wanted:
            await asyncio.wait([loop.create_task(enough.wait())], timeout=_PATIENCE)
        answers: Counter[tuple[Any, ...]] = Counter(
            connection.result or (0, None, None) for connection in held
        )
        last = max((connection.read_at for connection in held), default=0.0)
        tallied = [[*key, n] for key, n in answers.items()]
        print(json.dumps({"answers": tallied, "last": last}), flush=True)
    await loop.run_in_executor(None, sys.stdin.read)
    for connection in held:
        if connection.transport is not None:
            connection.transport.close()


@contextmanager
def held(
    base: str, target: str, count: int, accepted: Callable[[], float]
) -> Iterator[list["Popen[bytes]"]]:
    """Children holding `count` connections (see the module doc); closed after the block.

    `accepted` tells how many the router holds now (a metric).
    """
    command = [sys.executable, "-m", "tests.router.held_clients", base, target]
    children: list[Popen[bytes]] = []
    try:
        for start in range(0, count, PER_PROCESS):
            share = min(PER_PROCESS, count - start)
            child = Popen([*command, str(share)], stdin=PIPE, stdout=PIPE)
            children.append(child)
            assert child.stdout is not None
            assert child.stdout.readline() == b"held\n"
            wait_until(lambda: accepted() >= start + share, 60)  # noqa: B023  # called at once
        yield children
    finally:
        for child in children:
            if child.stdin is not None:
                child.stdin.close()
        for child in children:
            try:
                child.wait(timeout=_PATIENCE + 30)
            except TimeoutExpired:
                child.kill()
                child.wait()


def tally(children: list["Popen[bytes]"]) -> tuple[Counter[tuple[Any, ...]], float]:
    """The answers every child read, (status, version, sold_out) -> how many; when the last was."""
    total: Counter[tuple[Any, ...]] = Counter()
    last = 0.0
    for child in children:
        assert child.stdout is not None
        report = json.loads(child.stdout.readline())
        for *key, n in report["answers"]:
            total[tuple(key)] += n
        last = max(last, report["last"])
    return total, last


if __name__ == "__main__":
    asyncio.run(_hold(sys.argv[1], sys.argv[2], int(sys.argv[3])))
