"""Holds and hold+pay through the router and straight to regional_api, and the region runs."""

import contextlib
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Any

from benchmarks.holds import Hall, Load, Outcome, children_of, cpu_seconds, run_load
from benchmarks.suite.stats import latency_summary
from benchmarks.suite.system import postmaster_pid, router_pids, seed
from deploy.local.stack import LocalStack

REGION = "eu-west"
SCENARIO = {  # (operation, seat choice) -> scenario of benchmarks.holds' load generator
    ("hold", "spread"): "spread",
    ("hold", "concentrated"): "concentrated",
    ("hold_pay", "spread"): "hold_pay",
    ("hold_pay", "concentrated"): "hold_pay_concentrated",
}


@dataclass(frozen=True)
class Plan:
    """Sizes of the hold runs."""

    seconds: float
    clients: tuple[int, ...]
    tokens: list[str]


def fresh_hall(stack: LocalStack, mode: str, region: str = REGION) -> Hall:
    """New shows for one run: 50 shows of 600 seats (spread) or one show of 20,000 seats."""
    if mode == "spread":
        return seed(stack, region, rows=20, cols=30, shows=50)
    return seed(stack, region, rows=100, cols=200, shows=1)


def cpu_probes(stack: LocalStack, region: str = REGION) -> dict[str, list[int]]:
    """PIDs whose CPU time is charged per operation: router, the region's replicas, PostgreSQL."""
    probes = {name: [pid] for name, pid in router_pids(stack).items()} or {"router": [0]}
    for name, proc in stack.processes.items():
        if name.startswith(region) and proc.pid:
            probes[name] = [proc.pid]
    master = postmaster_pid(stack, region)
    if master:
        probes[f"postgres {region}"] = [master, *children_of(master)]
    return probes


def _cpu(probes: dict[str, list[int]]) -> dict[str, dict[int, float]]:
    used: dict[str, dict[int, float]] = {}
    for name, pids in probes.items():
        used[name] = {}
        for pid in pids:
            with contextlib.suppress(OSError, IndexError):
                used[name][pid] = cpu_seconds(pid)
    return used


def _spent(before: dict[int, float], after: dict[int, float]) -> float:
    """CPU seconds spent between two readings by the processes alive at the second."""
    return sum(seconds - before.get(pid, 0.0) for pid, seconds in after.items())


def summarise(outcome: Outcome) -> dict[str, Any]:
    """The figures of one generator run, without the raw latencies."""
    return {
        "clients": outcome.clients,
        "seconds": outcome.seconds,
        "ok": outcome.ok,
        "ok_per_s": round(outcome.rate, 1),
        "conflicts": outcome.conflicts,
        "errors": outcome.errors,
        "error_statuses": {str(k): v for k, v in sorted(outcome.error_statuses.items())},
        **latency_summary(outcome.latencies_ms),
    }


def measured(pool: Executor, load: Load, stack: LocalStack) -> dict[str, Any]:
    """Run one load in the generator process and charge the system's CPU time to its operations."""
    before = _cpu(cpu_probes(stack))
    outcome = pool.submit(run_load, load).result()
    after = _cpu(cpu_probes(stack))  # PostgreSQL backends come and go: list them again
    ops = max(1, outcome.ok + outcome.conflicts + outcome.errors)
    cpu = {name: round(1000 * _spent(before[name], after[name]) / ops, 2) for name in after}
    return summarise(outcome) | {"cpu_ms_per_op": cpu}


def targets(stack: LocalStack) -> dict[str, str]:
    """Base URLs: one regional_api replica directly, and the router (both replicas behind it)."""
    return {"direct": stack.regional_urls(REGION)[0], "router": stack.router_url}


def warm_up(stack: LocalStack, pool: Executor, plan: Plan) -> None:
    """A short hold+pay run on each target (connections, caches, JIT-free Python warm paths)."""
    hall = fresh_hall(stack, "spread")
    for url in targets(stack).values():
        pool.submit(run_load, Load("hold_pay", url, 1.5, 16, plan.tokens, hall)).result()


def run_matrix(
    stack: LocalStack, pool: Executor, plan: Plan, progress: Any
) -> list[dict[str, Any]]:
    """Every operation x seat choice x target x connection count, each on fresh shows."""
    rows = []
    for (op, mode), scenario in SCENARIO.items():
        for target, url in targets(stack).items():
            for clients in plan.clients:
                hall = fresh_hall(stack, mode)
                load = Load(scenario, url, plan.seconds, clients, plan.tokens, hall)
                row = {"op": op, "mode": mode, "target": target} | measured(pool, load, stack)
                rows.append(row)
                progress(
                    f"  {op:8} {mode:12} {target:6} c={clients:<3} {row['ok_per_s']:7.0f}/s"
                    f"  p99 {row['p99_ms']:.0f} ms  409s {row['conflicts']}  errors {row['errors']}"
                )
    return rows


def run_regions(
    stack: LocalStack, pool: Executor, plan: Plan, clients: int, progress: Any
) -> list[dict[str, Any]]:
    """The same hold+pay load through the router on one region, then on both regions at once."""
    results = []
    for regions in (["eu-west"], ["eu-west", "us-east"]):
        loads = {
            region: Load("hold_pay", stack.router_url, plan.seconds, clients, plan.tokens, hall)
            for region in regions
            if (hall := fresh_hall(stack, "spread", region))
        }
        futures = {region: pool.submit(run_load, load) for region, load in loads.items()}
        per_region = {region: summarise(future.result()) for region, future in futures.items()}
        total = sum(r["ok_per_s"] for r in per_region.values())
        results.append(
            {"regions": len(regions), "ok_per_s": round(total, 1), "per_region": per_region}
        )
        progress(f"  regions={len(regions)} hold+pay c={clients} each: {total:.0f}/s in total")
    return results
