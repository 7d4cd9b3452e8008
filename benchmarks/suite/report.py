"""Render a suite result (the raw JSON) as the Markdown report and the PNG chart."""

import math
from pathlib import Path
from typing import Any

from benchmarks import floor_report, onsale_line
from benchmarks.suite.stats import ratio

HOLD_PAY_TARGET = 1000.0  # end-to-end hold+pay per second through the router
ONSALE_P99_TARGET_MS = 250.0
RSS_TARGET_MB = 200.0


def _f(value: Any, digits: int = 0) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{value:,.{digits}f}"


def _pgbench_at(result: dict[str, Any], clients: int) -> float:
    rows = {row["clients"]: row["tps"] for row in result.get("pgbench", [])}
    if clients in rows:
        return float(rows[clients])
    return float(max(rows.values())) if rows else math.nan


def _biggest(result: dict[str, Any]) -> tuple[str, float]:
    """The process with the highest peak RSS, and that peak in MB."""
    return max(
        ((k, float(v["peak_mb"])) for k, v in result.get("memory", {}).items()),
        key=lambda item: item[1],
        default=("-", math.nan),
    )


def targets(result: dict[str, Any]) -> list[dict[str, Any]]:
    """Each target of the brief with the measured figure and whether it is met."""
    routed = [
        r for r in result.get("holds", []) if r["op"] == "hold_pay" and r["target"] == "router"
    ]
    best = max((r["ok_per_s"] for r in routed), default=math.nan)
    onsale = result.get("onsale") or {}
    p99 = onsale.get("p99_ms", math.nan)
    name, peak = _biggest(result)
    return [
        {
            "name": "hold+pay through the router",
            "target": f">= {HOLD_PAY_TARGET:,.0f}/s",
            "measured": f"{_f(best)}/s (best connection count)",
            "met": best >= HOLD_PAY_TARGET,
        },
        {
            "name": "hot on-sale p99",
            "target": f"< {ONSALE_P99_TARGET_MS:.0f} ms",
            "measured": f"{_f(p99)} ms",
            "met": p99 < ONSALE_P99_TARGET_MS,
        },
        {
            "name": "peak RSS of every process",
            "target": f"< {RSS_TARGET_MB:.0f} MB",
            "measured": f"{_f(peak)} MB ({name})",
            "met": peak < RSS_TARGET_MB,
        },
    ]


def machine_section(meta: dict[str, Any]) -> list[str]:
    """Where and when the figures were measured."""
    return [
        f"Measured {meta.get('measured_at', '?')} with `{meta.get('command', 'make bench')}`"
        f" ({meta.get('duration_s', 0):.0f} s, {meta.get('seconds', '?')} s per load run).",
        "",
        "| machine | |",
        "|---|---|",
        f"| cores | {meta.get('cores')} ({meta.get('cpu')}) |",
        f"| memory | {_f(meta.get('memory_mb'))} MB |",
        f"| PostgreSQL | {meta.get('postgres')} |",
        f"| Python | {meta.get('python')} |",
        f"| kernel | {meta.get('kernel')} |",
        f"| git commit | {meta.get('git_commit')}{' (+ uncommitted changes)' if meta.get('git_dirty') else ''} |",
        f"| load average (1 min) before / after the run | {meta.get('load_average_before')}"
        f" / {meta.get('load_average_after', '-')} |",
        "",
    ]


def targets_section(result: dict[str, Any]) -> list[str]:
    """The brief's targets, met or missed."""
    lines = ["## Targets", "", "| target | wanted | measured | met |", "|---|---|---|---|"]
    for row in targets(result):
        lines.append(
            f"| {row['name']} | {row['target']} | {row['measured']} | {'yes' if row['met'] else '**no**'} |"
        )
    return [*lines, ""]


def pgbench_section(result: dict[str, Any]) -> list[str]:
    """The physical limit of durable seat writes on this machine."""
    lines = [
        "## Reference: durable seat writes (pgbench)",
        "",
        "One `INSERT ... ON CONFLICT DO NOTHING` into a table with `UNIQUE(show_id, seat_id)` per"
        " transaction, on a PostgreSQL started with the stack's regional settings (durable:"
        " fsync and synchronous commit on). Every figure below is also given as a ratio to this"
        " at the same number of connections.",
        "",
        "| connections | transactions/s | avg latency ms |",
        "|---:|---:|---:|",
    ]
    for row in result.get("pgbench", []):
        lines.append(f"| {row['clients']} | {_f(row['tps'])} | {_f(row['latency_avg_ms'], 2)} |")
    return [*lines, ""]


def _errors(row: dict[str, Any]) -> str:
    """Error count with its statuses (0 = no answer: reset, refused or timed out)."""
    statuses = row.get("error_statuses") or {}
    detail = ", ".join(f"{n} x {status}" for status, n in statuses.items())
    return f"{row['errors']} ({detail})" if detail else str(row["errors"])


def holds_section(result: dict[str, Any]) -> list[str]:
    """Holds and hold+pay, direct and routed, spread and concentrated."""
    lines = [
        "## Holds and hold+pay",
        "",
        "`hold`: `POST /shows/{id}/holds` of two adjacent seats; `hold_pay`: the hold then"
        " `POST /reservations/{id}/payments` (one operation = both requests). `spread`: a random"
        " pair of a random show out of 50 (600 seats each); `concentrated`: every client takes"
        " the next free pair of one 20,000-seat show. `direct`: one regional_api replica;"
        " `router`: through the router, which balances over both eu-west replicas. CPU columns:"
        " CPU time each process used per operation (from `/proc/<pid>/stat`), errors included:"
        " where most answers are quick 503s the figure is per answer, not per success.",
        "",
        "| op | seats | target | conns | ok/s | vs pgbench | p50 ms | p95 ms | p99 ms | 409s | errors"
        " | router CPU ms/op | API CPU ms/op | PostgreSQL CPU ms/op |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in result.get("holds", []):
        cpu = r.get("cpu_ms_per_op", {})
        pg = sum(v for k, v in cpu.items() if k.startswith("postgres"))
        routers = sum(v for k, v in cpu.items() if k.startswith("router"))  # every instance
        api = sum(cpu.values()) - pg - routers
        router = routers if r["target"] == "router" else math.nan
        lines.append(
            f"| {r['op']} | {r['mode']} | {r['target']} | {r['clients']} | {_f(r['ok_per_s'])}"
            f" | {ratio(r['ok_per_s'], _pgbench_at(result, r['clients'])):.1%}"
            f" | {_f(r['p50_ms'], 1)} | {_f(r['p95_ms'], 1)} | {_f(r['p99_ms'], 1)}"
            f" | {r['conflicts']} | {_errors(r)} | {_f(router, 2)} | {_f(api, 2)} | {_f(pg, 2)} |"
        )
    return [*lines, ""]


def _rush_row(label: str, o: dict[str, Any]) -> str:
    last = f"{_f(o['time_to_sell_out_s'], 2)} s"
    if o["seats_sold"] >= o["capacity"]:
        sold = last
    elif o.get("seats_left_paired") == 0:  # every customer wants two adjacent seats
        sold = f"{last} (no two free seats adjacent)"
    else:
        sold = f"not sold out (last sale {last})"
    left = f"{o['seats_left']} ({o['seats_left_paired']})" if "seats_left" in o else "-"
    return (
        f"| {label} | {o.get('seats_held', '-')} | {o['seats_sold']} / {o['capacity']}"
        f" | {left} | {sold}"
        f" | {_f(o['all_answered_s'], 2)} s | {o['requests']:,} | {o['conflicts']:,}"
        f" | {o['errors']:,} | {_f(o['p50_ms'], 1)} | {_f(o['p95_ms'], 1)} | {_f(o['p99_ms'], 1)}"
        f" | {_f(o['max_ms'], 1)} | {o.get('retries', 0):,} | {_f(o.get('customer_p99_ms'))} |"
    )


def onsale_section(result: dict[str, Any]) -> list[str]:
    """The rush on one small show, through the router and straight to one replica."""
    rushes = [
        (label, result[key])
        for label, key in (
            ("through the router", "onsale"),
            ("direct, one replica", "onsale_direct"),
        )
        if result.get(key)
    ]
    if not rushes:
        return []
    first = rushes[0][1]
    lines = [
        "## Hot on-sale",
        "",
        f"{first['clients']:,} customers (each its own user and connection) open at the same"
        f" instant and go for one {first['capacity']}-seat show: hold a chosen pair, on 409 ask"
        " for the best pair left, then pay. Like the web client, a 502/503 or a dropped"
        " connection is retried after `Retry-After` (+ up to 1 s jitter), at most 4 times within 30 s of the start, with"
        " the same `Idempotency-Key`. Sold out = the last successful payment; p50..max cover"
        " every request (holds, best-available, payments, whatever the answer); errors count"
        " answers other than 201/409, retried ones included; customer p99 is from the rush's"
        " start to the customer's last answer. Payments are admitted ahead of new holds (their own"
        " line in each replica, 16 slots past the router's cap: `common/priority.py`); seats held"
        " but not sold belong to customers whose payment failed even after retries, and stay held"
        " until the hold expires. Customers pick random pairs, so single seats are left between"
        " holds: once no two free seats are adjacent, the show is sold out for every customer"
        " still trying.",
        "",
        "| path | seats held | seats sold | left free (with a free neighbour) | time to sell out"
        " | all answered | requests | 409 conflicts | errors | p50 ms | p95 ms | p99 ms | max ms"
        " | retries | customer p99 ms |",
        "|---|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        *(_rush_row(label, o) for label, o in rushes),
        "",
    ]
    best = max((row["tps"] for row in result.get("pgbench", [])), default=math.nan)
    lines += [
        f"For scale: at pgbench's best rate ({_f(best)}/s) PostgreSQL writes the show's"
        f" {first['capacity']} seat rows in {_f(1000 * first['capacity'] / best)} ms.",
        "",
    ]
    for label, o in rushes:
        answers = ", ".join(f"`{k}`: {v:,}" for k, v in sorted(o["statuses"].items()))
        lines.append(f"Answers {label}: {answers}.")
        lines.append("")
    return lines


def router_health_section(result: dict[str, Any]) -> list[str]:
    """The router's endpoint-health counters over the run."""
    before = result.get("router_health_before_onsale")
    after = result.get("router_health")
    if after is None:
        return []
    lines = [
        "## Router endpoint health under load",
        "",
        "The router's own counters (`/metrics`), after the hold runs and at the end of the run"
        " (after the on-sale). Ejections take a replica out of rotation; with both out, the"
        " router answers 503 `region_unavailable` until probes readmit one.",
        "",
        "| counter | after the hold runs | at the end |",
        "|---|---:|---:|",
    ]
    for name in sorted(set(before or {}) | set(after)):
        lines.append(f"| `{name}` | {_f((before or {}).get(name, 0))} | {_f(after.get(name, 0))} |")
    return [*lines, ""]


def router_section(result: dict[str, Any]) -> list[str]:
    """Router overhead against nginx on a trivial upstream, and on the real hold path."""
    lines = [
        "## Router overhead",
        "",
        "In front of a real regional endpoint (`GET /shows/{id}` on one replica) and of a no-op"
        " echo app (`benchmarks/router.py`: wrk, direct vs router vs nginx `proxy_pass`; details"
        " in [router.md](router.md)):",
        "",
        "| upstream | target | conns | req/s | vs direct | p50 ms | p99 ms | proxy CPU µs/req |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    rows = result.get("router_overhead", [])
    direct = {
        (r.get("upstream", "echo"), r["connections"]): r["rps"]
        for r in rows
        if r["target"] == "direct"
    }
    for r in rows:
        upstream = r.get("upstream", "echo")
        base = direct.get((upstream, r["connections"]), math.nan)
        lines.append(
            f"| {upstream} | {r['target']} | {r['connections']} | {_f(r['rps'])}"
            f" | {ratio(r['rps'], base):.0%}"
            f" | {_f(r['p50_ms'], 2)} | {_f(r['p99_ms'], 2)} | {_f(r['proxy_cpu_us'])} |"
        )
    lines += [
        "",
        "At one connection, single GETs alternated across the targets (added p50: the median of"
        " per-round differences from direct):",
        "",
        "| upstream | target | p50 ms | p99 ms | added p50 ms |",
        "|---|---|---:|---:|---:|",
    ]
    lines += [
        f"| {r['upstream']} | {r['target']} | {_f(r['p50_ms'], 3)} | {_f(r['p99_ms'], 3)}"
        f" | {r['added_ms']:+.3f} |"
        for r in result.get("router_paired", [])
    ]
    lines += [
        "",
        "On the real hold path (from the table above, routed / direct; the router balances over"
        " two replicas where direct uses one, so routed can beat direct when not saturated):",
        "",
    ]
    lines += ["| op | seats | conns | direct ok/s | routed ok/s | routed / direct | added p50 ms |"]
    lines += ["|---|---|---:|---:|---:|---:|---:|"]
    holds = result.get("holds", [])
    for r in holds:
        if r["target"] != "direct":
            continue
        routed = next(
            (
                x
                for x in holds
                if x["target"] == "router"
                and (x["op"], x["mode"], x["clients"]) == (r["op"], r["mode"], r["clients"])
            ),
            None,
        )
        if routed:
            lines.append(
                f"| {r['op']} | {r['mode']} | {r['clients']} | {_f(r['ok_per_s'])}"
                f" | {_f(routed['ok_per_s'])} | {ratio(routed['ok_per_s'], r['ok_per_s']):.0%}"
                f" | {routed['p50_ms'] - r['p50_ms']:+.1f} |"
            )
    return [*lines, ""]


def regions_section(result: dict[str, Any]) -> list[str]:
    """One region against two regions at once."""
    rows = result.get("regions", [])
    if not rows:
        return []
    lines = [
        "## One region vs two regions",
        "",
        "The same hold+pay load (spread, through the router) on eu-west alone, then on eu-west"
        " and us-east at once (one generator process per region; each region has its own"
        " PostgreSQL server).",
        "",
        "| regions | total ok/s | vs pgbench (64) | per region ok/s | per region p99 ms |",
        "|---:|---:|---:|---|---|",
    ]
    for row in rows:
        per = row["per_region"]
        rates = ", ".join(f"{k}: {_f(v['ok_per_s'])}" for k, v in per.items())
        p99s = ", ".join(f"{k}: {_f(v['p99_ms'])}" for k, v in per.items())
        share = ratio(row["ok_per_s"], _pgbench_at(result, 64))
        lines.append(
            f"| {row['regions']} | {_f(row['ok_per_s'])} | {share:.1%} | {rates} | {p99s} |"
        )
    return [*lines, ""]


def memory_section(result: dict[str, Any]) -> list[str]:
    """Peak RSS of every process, with the high-water mark after each phase."""
    phases = result.get("memory_phases", {})
    lines = [
        "## Memory",
        "",
        "Peak resident set (`VmHWM` from `/proc/<pid>/status`) of every process of the stack,"
        " read after each phase (a high-water mark, so each column includes the phases before"
        " it). PostgreSQL backends count the shared buffers they touched; the anonymous column"
        " is the memory a process has of its own (at the last reading).",
        "",
        "| process | " + "".join(f"{phase} MB | " for phase in phases) + "peak RSS MB"
        " | anonymous MB | < 200 MB |",
        "|---|" + "---:|" * len(phases) + "---:|---:|---|",
    ]
    for name, m in sorted(result.get("memory", {}).items()):
        met = "yes" if m["peak_mb"] < RSS_TARGET_MB else "**no**"
        cells = "".join(
            f"{_f(reading.get(name, {}).get('peak_mb'), 1)} | " for reading in phases.values()
        )
        lines.append(f"| {name} | {cells}{_f(m['peak_mb'], 1)} | {_f(m['anon_mb'], 1)} | {met} |")
    return [*lines, ""]


def profile_section(result: dict[str, Any]) -> list[str]:
    """Where the CPU goes in the busy processes under the routed hold+pay load."""
    profiles = result.get("profile", {})
    if not profiles:
        return []
    lines = [
        "## Profile",
        "",
        "py-spy (200 Hz, `--format raw`) on the router and one eu-west replica during a routed"
        " hold+pay run at 16 connections (a separate run: sampling slows the process a little)."
        " Self time of the leaf frame, grouped by component; raw stacks in `profiles/`.",
        "",
    ]
    for name, summary in profiles.items():
        lines += [f"**{name}** ({summary['samples']:,} samples)", ""]
        lines += ["| component | share |", "|---|---:|"]
        shares = sorted(summary["components"].items(), key=lambda kv: -kv[1])
        lines += [f"| {k} | {v:.0%} |" for k, v in shares if v >= 0.005]
        lines += ["", "| hottest leaf functions | share |", "|---|---:|"]
        lines += [f"| `{leaf}` | {share:.1%} |" for leaf, share in summary["top_leaves"]]
        lines.append("")
    return lines


def _counter(result: dict[str, Any], prefix: str, label: str = "") -> float:
    """A router counter at the end of the run, summed over its labels (optionally one label)."""
    health = result.get("router_health") or {}
    return float(sum(v for k, v in health.items() if k.startswith(prefix) and label in k))


def _ejections(result: dict[str, Any]) -> float:
    return _counter(result, "router_endpoint_ejections_total")


def _memory_line(result: dict[str, Any], name: str, peak: float) -> str:
    """Which phase pushed the biggest process over the target, and why."""
    readings = [
        (phase, m.get(name, {}).get("peak_mb", 0.0))
        for phase, m in result.get("memory_phases", {}).items()
    ]
    jump = next(
        (
            (phase, mb - (readings[i - 1][1] if i else 0.0))
            for i, (phase, mb) in enumerate(readings)
            if mb >= RSS_TARGET_MB
        ),
        None,
    )
    when = f", {_f(jump[1])} MB of it during {jump[0].removeprefix('after ')}" if jump else ""
    return (
        f"- **Memory under a flood.** {name} peaked at {_f(peak)} MB{when}. Every request in"
        " flight holds its coroutine, ASGI scope, parsed body, pydantic models and SQLAlchemy"
        " session while it waits for a pooled connection. `REGIONAL_MAX_IN_FLIGHT` (admission"
        " control in `common/observability.py`: the rest wait briefly, then get 503"
        " `overloaded` with `Retry-After`) bounds how many one process works on; is it set?"
        " (`uvicorn --limit-concurrency` is no substitute: it counts open connections, so 2,000"
        " keep-alive clients would get a plain-text 503 for every request.)"
    )


def _overload_line(result: dict[str, Any]) -> str:
    """How overload shows at the router: ejections, probe timeouts, retries, main failure."""
    statuses = (result.get("onsale") or {}).get("statuses", {})
    failures = {k: v for k, v in statuses.items() if not k.startswith(("201", "409"))}
    worst = max(failures.items(), key=lambda kv: kv[1], default=None)
    main = (
        f" Most failed answers of the routed on-sale were `{worst[0]}` ({worst[1]:,})."
        if worst
        else ""
    )
    return (
        "- **Overload shows as ejections and fast 503s.** A saturated replica can answer the"
        " router's `/readyz` probe (0.5 s timeout) too late, so the router ejects it"
        f" ({_f(_ejections(result))} ejections,"
        f" {_f(_counter(result, 'router_probes_total', 'outcome=timeout'))} probe timeouts in"
        " this run); failed attempts are retried, on the other replica when one is up"
        f" ({_f(_counter(result, 'router_retries_total'))} router retries), which adds load"
        " exactly when there is none to spare, and with every replica out the router answers"
        f" 503 `region_unavailable`.{main} The probe's database check has a connection of its"
        " own (`common.db.ProbeConnection`), so it does not queue behind the 20 pooled"
        " connections; what is left is the busy event loop."
    )


def limits_section(result: dict[str, Any]) -> list[str]:
    """What limits the routed hold+pay rate and the on-sale, and what would lift them."""
    direct = [
        r
        for r in result.get("holds", [])
        if (r["op"], r["mode"], r["target"]) == ("hold_pay", "spread", "direct")
    ]
    if not direct:
        return []
    top = max(direct, key=lambda r: r["ok_per_s"])
    cpu = top.get("cpu_ms_per_op", {})
    total = sum(cpu.values())
    cores = result.get("meta", {}).get("cores") or 1
    ceiling = 1000 * cores / total if total else math.nan
    parts = ", ".join(f"{k} {v:.1f} ms" for k, v in sorted(cpu.items(), key=lambda kv: -kv[1]))
    api = result.get("profile", {}).get("eu-west-1", {}).get("components", {})
    db_share = api.get("SQLAlchemy", 0.0) + api.get("psycopg driver", 0.0)
    pg = next((v for k, v in cpu.items() if k.startswith("postgres")), 0.0)
    lines = [
        "## What limits it",
        "",
        f"- **CPU per operation.** Straight to one replica at {top['clients']} connections, a"
        f" hold+pay costs {total:.1f} ms of CPU ({parts}); {cores} cores could therefore do"
        f" at most ~{_f(ceiling)} hold+pay/s with nothing else running, and the load generator"
        " takes its share of the same cores. PostgreSQL's part"
        f" ({pg:.1f} ms) is that of a durable multi-row write: a hold+pay is two requests and"
        " three statements (the hold is one call of `claim_seats`, which claims the seats and"
        " inserts the reservation, committed on its own; the payment opens in one statement,"
        " calls the provider with no lock or pooled connection held, then sells and completes"
        " in a second), changing ~10 rows with foreign-key checks, where pgbench's reference"
        f" transaction inserts one row ({_f(_pgbench_at(result, top['clients']))}/s at the same"
        " connection count).",
    ]
    if db_share:
        lines.append(
            f"- **Where the API's CPU goes.** {db_share:.0%} of the replica's samples are in"
            " SQLAlchemy and the psycopg driver (the hold and pay paths use psycopg directly;"
            " the samples include waits in the driver that py-spy cannot tell from work), the"
            " rest is FastAPI/Starlette, uvicorn, the event loop, pydantic and JSON: per request,"
            " a fixed few hundred microseconds of framework next to the statements"
            " (docs/benchmarks/holds.md has the in-process breakdown)."
        )
    peak_name, peak = _biggest(result)
    if peak >= RSS_TARGET_MB:
        lines.append(_memory_line(result, peak_name, peak))
    if _ejections(result) or _counter(result, "router_retries_total"):
        lines.append(_overload_line(result))
    lines += [
        "- **The on-sale's p99 is the admitted customers' queue.** The waiting room admits"
        " customers at the rate the region sells; what an admitted customer waits for is its"
        " turn among the replica's 16 admission slots (`REGIONAL_MAX_IN_FLIGHT`, pass holders"
        " first) and the router's 16 per endpoint, on two cores shared with the load"
        " generator (docs/benchmarks/onsale-line.md has every run and the sell-out's bounds).",
        "",
        "What would lift it, roughly in order of gain per effort:",
        "",
        "- One uvicorn worker per core per region, and more cores: the service is CPU-bound and"
        " scales with processes; regions are independent (own processes, own PostgreSQL), so"
        " on their own machines they add up. Load generation off the measured machine.",
        "- Less framework per request on the hot endpoints: a hold is one statement and a"
        " payment two, so the rest of the API's CPU is the request around them; the floor"
        " section above gives the gap per operation (docs/benchmarks/floor.md the profiles).",
        "- PostgreSQL's CPU per hold: the foreign keys of the hot tables (~0.2-0.3 ms of it,"
        " measured by dropping them; kept, they are invariants) and the commit flush"
        " (`synchronous_commit = off` for holds alone would risk a hold, never a sale, on a"
        " crash).",
        "",
    ]
    return lines


def render(result: dict[str, Any], notes: str = "") -> str:
    """The whole Markdown report."""
    lines = [
        "# Benchmark suite",
        "",
        "Generated by `make bench` (`.venv/bin/python -m benchmarks.run`; `ARGS=--quick` for a"
        " short smoke run written to `var/bench-quick/`). Everything runs on 127.0.0.1: the"
        " whole local stack (`deploy.local.stack.LocalStack`: 3 durable PostgreSQL servers,"
        " global_api, eu-west x2 and us-east x1 regional_api, the router), load from separate"
        " aiohttp generator processes (`benchmarks/holds.py`, `benchmarks/suite/onsale.py`) and"
        " wrk (`benchmarks/router.py`). Tokens are signed with the stack's own key. The router's"
        " per-address hold rate limit is off and the per-customer seat cap raised (one"
        " generator address, few users); everything else runs as deployed.",
        "",
    ]
    lines += machine_section(result.get("meta", {}))
    lines += ["Raw figures: [results.json](results.json); chart: [chart.png](chart.png).", ""]
    lines += ["![throughput, latency and memory](chart.png)", ""]
    for section in (
        targets_section,
        pgbench_section,
        holds_section,
        floor_report.section,
        onsale_section,
        onsale_line.section,
        router_health_section,
        router_section,
        regions_section,
        memory_section,
        profile_section,
        limits_section,
    ):
        lines += section(result)
    if notes:
        lines += [notes.strip(), ""]
    return "\n".join(lines)


def chart(result: dict[str, Any], out: Path) -> None:
    """Throughput against pgbench, p99 latency, and peak RSS against the 200 MB target."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    holds = result.get("holds", [])
    clients = sorted({r["clients"] for r in holds})
    series = sorted({(r["op"], r["mode"], r["target"]) for r in holds})
    fig, (tput, lat, mem) = plt.subplots(1, 3, figsize=(18, 6))
    width = 0.8 / max(1, len(series) + 1)
    for i, key in enumerate(series):
        rows = {r["clients"]: r for r in holds if (r["op"], r["mode"], r["target"]) == key}
        xs = [c + i * width for c in range(len(clients))]
        label = "/".join(key)
        tput.bar(xs, [rows[c]["ok_per_s"] if c in rows else 0 for c in clients], width, label=label)
        lat.bar(xs, [rows[c]["p99_ms"] if c in rows else 0 for c in clients], width, label=label)
    pg = [_pgbench_at(result, c) for c in clients]
    xs = [c + len(series) * width for c in range(len(clients))]
    tput.bar(xs, pg, width, label="pgbench INSERT", color="black")
    for axis, title in ((tput, "operations/s (log)"), (lat, "p99 latency ms (log)")):
        axis.set_yscale("log")
        axis.set_xticks([c + 0.4 for c in range(len(clients))], [f"{c} conns" for c in clients])
        axis.set_title(title)
    tput.axhline(HOLD_PAY_TARGET, color="red", linestyle="--", label="target hold+pay 1,000/s")
    tput.legend(fontsize=7)
    memory = sorted(result.get("memory", {}).items())
    mem.barh([n for n, _ in memory], [m["peak_mb"] for _, m in memory])
    mem.axvline(RSS_TARGET_MB, color="red", linestyle="--")
    mem.set_title("peak RSS MB (target < 200)")
    mem.tick_params(axis="y", labelsize=7)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=90)
    plt.close(fig)
