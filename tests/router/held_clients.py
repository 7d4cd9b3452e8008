"""Hold many client connections to a router from a child process (one process opens ~20,000 files).

`python -m tests.router.held_clients BASE TARGET COUNT` opens COUNT connections to the router at
BASE and sends `GET TARGET` on each; with TARGET `-` it sends `GET /healthz` and leaves the
connection idle after the answer. It prints `held` once every request is sent, then, for a
watch, waits for every answer and prints one JSON line: answers counted by (status, version,
sold_out), and the wall-clock time the last one was read. It closes the connections when its standard input closes.
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
Stream = tuple[asyncio.StreamReader, asyncio.StreamWriter]


async def _open(host: str, port: int, target: str) -> Stream:
    reader, writer = await asyncio.open_connection(host, port)
    writer.write(f"GET {target} HTTP/1.1\r\nHost: router\r\n\r\n".encode())
    await writer.drain()
    return reader, writer


async def answer(reader: asyncio.StreamReader) -> tuple[int, dict[str, Any], dict[str, str]]:
    """Read one HTTP/1.1 answer with a content-length: status, JSON body, headers."""
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.lower().split(": ", 1) for line in lines[1:] if ": " in line)
    body = await reader.readexactly(int(headers["content-length"]))
    return int(lines[0].split()[1]), json.loads(body), headers


async def _timed(reader: asyncio.StreamReader) -> tuple[float, Any]:
    """An answer and the wall-clock time it was read whole."""
    result = await answer(reader)
    return time.time(), result


async def _hold(base: str, target: str, count: int) -> None:
    host, port = base.removeprefix("http://").split(":")
    idle = target == "-"
    streams: list[Stream] = []
    for start in range(0, count, _BATCH):
        batch = min(_BATCH, count - start)
        path = "/healthz" if idle else target
        streams += await asyncio.gather(*(_open(host, int(port), path) for _ in range(batch)))
        if idle:
            await asyncio.gather(*(answer(reader) for reader, _ in streams[-batch:]))
    print("held", flush=True)
    if not idle:
        reading = [asyncio.ensure_future(_timed(reader)) for reader, _ in streams]
        await asyncio.wait(reading, timeout=_PATIENCE)
        answers: Counter[tuple[Any, ...]] = Counter()
        last = 0.0
        for task in reading:
            if task.done() and task.exception() is None:
                read_at, (status, body, headers) = task.result()
                answers[status, headers.get("x-watch-version"), body.get("sold_out")] += 1
                last = max(last, read_at)
            else:
                task.cancel()
                answers[0, None, None] += 1
        tallied = [[*key, n] for key, n in answers.items()]
        print(json.dumps({"answers": tallied, "last": last}), flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
    for _, writer in streams:
        writer.close()


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
