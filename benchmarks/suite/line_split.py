"""The rush's generator: one process or several, every customer on `own_http`'s client.

Each customer holds a keep-alive connection of its own (`own_http.OwnConnection`), as a browser
tab holds its watch; the standard rush's 2,000 send everything on it, in one process (2,000
sockets, far under this machine's 20,000 files a process). With `LineRush.connections` the
customers' joins and asks go through a bounded pool each process shares (`own_http.OwnPool`,
`connections // processes`: an edge proxy's queue), and with `LineRush.watch_connections` their
watches go through two more (NEAR_FRONT for those near the front, the rest for those far back),
so one process stays under the file limit with 20,000 customers; an admitted customer (a few
hundred) buys on its own connection, as its browser does, not behind the other customers' joins
in the shared pool. `LineRush.processes` > 1 deals the customers out (customers 2k and 2k + 1,
an early and a late arrival, to process k mod n) and merges the processes' tallies into one
result (`line_rush.result`). With `LineRush.routers`, process k sends all its customers' requests
to router k mod len(routers), as a load balancer with affinity would.
"""

import asyncio
import contextlib
import dataclasses
import multiprocessing
import time
from concurrent.futures import ProcessPoolExecutor
from typing import Any

from benchmarks.suite.line_rush import (
    NEAR_FRONT,
    LineRush,
    Tally,
    _customer,
    _lag,
    _sample,
    install_uvloop,
    result,
)
from benchmarks.suite.own_http import OwnConnection, OwnPool
from benchmarks.suite.system import open_files


class _Pools:
    """The connections a process's customers share: none, or bounded pools (`LineRush`)."""

    def __init__(self, rush: LineRush) -> None:
        share = rush.connections // rush.processes
        self.http = OwnPool(rush.url, share) if share else None
        self.watch: tuple[OwnPool, OwnPool] | None = None
        if rush.watch_connections:
            far = rush.watch_connections // rush.processes
            self.watch = (OwnPool(rush.url, NEAR_FRONT), OwnPool(rush.url, far))

    def close(self, tally: Tally) -> None:
        """Close every pooled connection; count in `tally` how many each pool opened."""
        pools = (self.http, *(self.watch or ()))
        for name, pool in zip(("shared", "near", "far"), pools, strict=False):
            if pool is not None:
                tally.connections_opened[name] += pool.opened
                pool.close()


async def _own_customer(rush: LineRush, tally: Tally, index: int, pools: _Pools) -> None:
    """A customer on a connection of its own, for what it does not send through `pools`."""
    conn = OwnConnection(rush.url)  # opened on its first request, if any
    try:
        await _customer(pools.http or conn, pools.watch or (conn, conn), conn, rush, tally, index)
    finally:
        tally.connections_opened["own"] += conn.opened
        conn.close()


async def _share(rush: LineRush, share: int) -> tuple[Tally, int]:
    """The customers `dealt` to process `share` (share 0 also samples the line), and the most
    files the process held open."""
    tally = Tally()
    stop = asyncio.Event()
    sampler = None
    if share == 0:
        sampler = asyncio.create_task(_sample(OwnConnection(rush.url), rush, tally, stop))
    lag = asyncio.create_task(_lag(tally, stop))
    files = asyncio.create_task(_max_open_files(stop))
    pools = _Pools(rush)
    customers = dealt(len(rush.tokens), rush.processes, share)
    try:
        await asyncio.gather(*(_own_customer(rush, tally, i, pools) for i in customers))
    finally:
        pools.close(tally)
    stop.set()
    if sampler is not None:
        await sampler
    await lag
    return tally, await files


async def _max_open_files(stop: asyncio.Event, every_s: float = 0.5) -> int:
    """The most files this process held open until `stop` (this machine allows 20,000)."""
    most = open_files()
    while not stop.is_set():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), every_s)
        most = max(most, open_files())
    return most


def routed(rush: LineRush, share: int) -> LineRush:
    """The rush as process `share` sends it: to its router (`LineRush.routers`), if several."""
    if not rush.routers:
        return rush
    return dataclasses.replace(rush, url=rush.routers[share % len(rush.routers)])


def dealt(customers: int, processes: int, share: int) -> list[int]:
    """The customers of process `share`: pairs dealt in turn, so each process has early (even)
    and late (odd: `line_rush._customer`) arrivals alike."""
    return [i for i in range(customers) if (i // 2) % processes == share]


def run_share(rush: LineRush, share: int) -> tuple[Tally, float, int]:
    """Entry point of one generator process of a split rush: its tally, CPU seconds and most
    open files."""
    install_uvloop()
    started = time.process_time()
    tally, files = asyncio.run(_share(routed(rush, share), share))
    return tally, time.process_time() - started, files


def run_split(rush: LineRush) -> dict[str, Any]:
    """The rush in `rush.processes` processes of a share each (1: this one), tallies merged."""
    if rush.processes == 1:
        shares = [run_share(rush, 0)]
    else:
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(max_workers=rush.processes, mp_context=context) as pool:
            futures = [pool.submit(run_share, rush, share) for share in range(rush.processes)]
            shares = [future.result() for future in futures]
    merged = _merge([tally for tally, _, _ in shares])
    cpu = [round(seconds, 1) for _, seconds, _ in shares]
    return result(merged, rush) | {
        "generator_cpu_s": round(sum(cpu), 1),
        "generator_cpu_by_process_s": cpu,
        "generator_open_files_max_by_process": [files for _, _, files in shares],
        "generator_processes": rush.processes,
        "routers": len(rush.routers) or 1,
    }


def _merge(tallies: list[Tally]) -> Tally:
    """One tally of several processes' tallies: counters added, lists joined, dicts united."""
    merged = Tally()
    for tally in tallies:
        for name, value in vars(tally).items():
            if isinstance(value, dict):  # a Counter's update adds; other dicts are per customer
                getattr(merged, name).update(value)
            elif isinstance(value, list):
                getattr(merged, name).extend(value)
            else:
                setattr(merged, name, getattr(merged, name) + value)
    merged.series.sort(key=lambda point: point["t"])
    return merged
