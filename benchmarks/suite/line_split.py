"""The large rush in several generator processes, every customer on a connection of its own.

This machine lets a process open 20,000 files, so one generator process cannot give 20,000
customers a connection each (the single-process rush shares pools: `line_rush.LineRush`). Here
the customers are dealt out to `LineRush.processes` processes (customer i to process i mod n, so
each has early and late arrivals alike); each customer joins, watches, asks and buys on one
keep-alive connection of its own (`own_http.OwnConnection`), as a browser tab holds its watch.
The processes' tallies are merged into one result (`line_rush.result`).
"""

import asyncio
import multiprocessing
import time
from concurrent.futures import ProcessPoolExecutor
from typing import Any

from benchmarks.suite.line_rush import LineRush, Tally, _customer, _sample, install_uvloop, result
from benchmarks.suite.own_http import OwnConnection


async def _own_customer(rush: LineRush, tally: Tally, index: int) -> None:
    """A customer on a connection of its own (join, watches, asks and purchase alike)."""
    conn = OwnConnection(rush.url)
    try:
        await _customer(conn, (conn, conn), rush, tally, index)
    finally:
        conn.close()


async def _share(rush: LineRush, share: int) -> Tally:
    """The customers `share`, `share + processes`, ... (share 0 also samples the line)."""
    tally = Tally()
    stop = asyncio.Event()
    sampler = None
    if share == 0:
        sampler = asyncio.create_task(_sample(OwnConnection(rush.url), rush, tally, stop))
    customers = range(share, len(rush.tokens), rush.processes)
    await asyncio.gather(*(_own_customer(rush, tally, i) for i in customers))
    stop.set()
    if sampler is not None:
        await sampler
    return tally


def run_share(rush: LineRush, share: int) -> tuple[Tally, float]:
    """Entry point of one generator process of a split rush: its tally and CPU seconds."""
    install_uvloop()
    started = time.process_time()
    tally = asyncio.run(_share(rush, share))
    return tally, time.process_time() - started


def run_split(rush: LineRush) -> dict[str, Any]:
    """The rush in `rush.processes` processes of a share each, their tallies merged."""
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=rush.processes, mp_context=context) as pool:
        futures = [pool.submit(run_share, rush, share) for share in range(rush.processes)]
        shares = [future.result() for future in futures]
    merged = _merge([tally for tally, _ in shares])
    cpu = [round(seconds, 1) for _, seconds in shares]
    return result(merged, rush) | {
        "generator_cpu_s": round(sum(cpu), 1),
        "generator_cpu_by_process_s": cpu,
        "generator_processes": rush.processes,
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
