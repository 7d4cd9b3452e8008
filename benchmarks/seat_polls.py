"""What the live seat map's polls cost: GET /shows/{id}/seats with and without If-None-Match.

Many viewers poll one open seat map during an on-sale: `--clients` concurrent pollers ask for the
same show for `--seconds` each way, through the router of a running stack. Prints requests per
second, latency and bytes per poll for full answers (200) and revalidations (304).

Run against `make up` (or any stack): `.venv/bin/python -m benchmarks.seat_polls
--url http://127.0.0.1:8000 --show <show id> [--clients 32] [--seconds 8]`.
"""

import argparse
import asyncio
import statistics
import time

import httpx


async def _poll(
    client: httpx.AsyncClient, url: str, etag: str | None, until: float
) -> list[tuple[float, int]]:
    samples = []
    headers = {"If-None-Match": etag} if etag else {}
    while time.monotonic() < until:
        started = time.perf_counter()
        response = await client.get(url, headers=headers)
        samples.append((time.perf_counter() - started, len(response.content)))
    return samples


async def _round(url: str, etag: str | None, clients: int, seconds: float) -> dict[str, float]:
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(limits=limits, timeout=30) as client:
        until = time.monotonic() + seconds
        runs = await asyncio.gather(*(_poll(client, url, etag, until) for _ in range(clients)))
    samples = [sample for run in runs for sample in run]
    latencies = sorted(s[0] for s in samples)
    return {
        "rps": len(samples) / seconds,
        "p50_ms": 1000 * statistics.median(latencies),
        "p99_ms": 1000 * latencies[int(0.99 * (len(latencies) - 1))],
        "bytes": statistics.mean(s[1] for s in samples),
    }


def main() -> None:
    """Measure full polls, then revalidating polls, and print both."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--url", default="http://127.0.0.1:8000")
    parser.add_argument("--show", required=True)
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=8.0)
    args = parser.parse_args()
    url = f"{args.url}/shows/{args.show}/seats"
    first = httpx.get(url, timeout=30)
    first.raise_for_status()
    seats = len(first.json()["seats"])
    for name, etag in (("200 (no ETag)", None), ("304 (If-None-Match)", first.headers["etag"])):
        figures = asyncio.run(_round(url, etag, args.clients, args.seconds))
        print(
            f"{name:<20} {seats} seats, {args.clients} clients: {figures['rps']:.0f} req/s, "
            f"p50 {figures['p50_ms']:.1f} ms, p99 {figures['p99_ms']:.1f} ms, "
            f"{figures['bytes']:.0f} body bytes per poll"
        )


if __name__ == "__main__":
    main()
