"""The router's waiting line with every slot busy: memory with the line full, and the drain.

Run: `.venv/bin/python -m benchmarks.line [--waiting 2000] [--cap 4]`. Starts an echo upstream
and a router whose region has `--cap` slots, opens `--waiting` connections that each send one
slow GET at once, and reports the router's RSS before and with the line full (from /proc), the
line's length from `/metrics`, and how many answers were 200 or 503.
"""

import argparse
import asyncio
import json
import tempfile
import time
from pathlib import Path

import httpx

from harness.pg import free_port
from harness.procs import directory_map, router, upstream

SLOW = "/regions/us-east/slow?s=0.5"


def rss_mb(pid: int) -> float:
    """Resident memory of a process in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def line_length(base: str) -> float:
    """The router's line length for us-east, from its metrics."""
    for line in httpx.get(base + "/metrics").text.splitlines():
        if line.startswith('router_line_length{region="us-east"}'):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


async def one(port: int) -> int:
    """One customer: a raw HTTP/1.1 GET, the answer's status."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(f"GET {SLOW} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
    await writer.drain()
    status = int((await reader.readline()).split()[1])
    await reader.read()
    writer.close()
    return status


async def crowd(port: int, waiting: int, sample: "asyncio.Future[None]") -> list[int]:
    """`waiting` customers at once; `sample` is resolved while they wait."""
    tasks = [asyncio.create_task(one(port)) for _ in range(waiting)]
    await sample
    return list(await asyncio.gather(*tasks))


def main() -> None:
    """Measure and print."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--waiting", type=int, default=2000)
    parser.add_argument("--cap", type=int, default=4)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        echo = upstream("line", "us-east", Path(tmp) / "writes.log")
        static = Path(tmp) / "map.json"
        static.write_text(json.dumps(directory_map("line", {"us-east": [echo.url]}, {})))
        proxy = router(
            f"http://127.0.0.1:{free_port()}",
            static_config_file=static,
            rate_limit_enabled="false",
            max_in_flight_per_endpoint=args.cap,
            line_max_per_region=args.waiting,
            line_timeout_seconds=600,
            request_deadline_seconds=600,
            attempt_timeout_seconds=600,
        )
        try:
            echo.start()
            proxy.start()
            assert proxy.proc is not None
            pid = proxy.proc.pid
            before = rss_mb(pid)
            peak = {"rss": before, "line": 0.0}

            async def run() -> list[int]:
                loop = asyncio.get_running_loop()
                sampled: asyncio.Future[None] = loop.create_future()

                async def sample() -> None:
                    deadline = time.monotonic() + 60
                    while time.monotonic() < deadline:
                        length = await asyncio.to_thread(line_length, proxy.url)
                        peak["line"] = max(peak["line"], length)
                        peak["rss"] = max(peak["rss"], rss_mb(pid))
                        if length >= args.waiting - 2 * args.cap:
                            break
                        await asyncio.sleep(0.1)
                    sampled.set_result(None)

                sampler = asyncio.create_task(sample())
                statuses = await crowd(proxy.port, args.waiting, sampled)
                await sampler
                return statuses

            started = time.monotonic()
            statuses = asyncio.run(run())
            elapsed = time.monotonic() - started
        finally:
            proxy.kill()
            echo.kill()
    print(
        json.dumps(
            {
                "waiting": args.waiting,
                "cap": args.cap,
                "rss_before_mb": round(before, 1),
                "rss_line_full_mb": round(peak["rss"], 1),
                "peak_line_length": peak["line"],
                "ok_200": statuses.count(200),
                "refused_503": statuses.count(503),
                "drain_seconds": round(elapsed, 1),
            }
        )
    )


if __name__ == "__main__":
    main()
