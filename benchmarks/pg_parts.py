"""A PostgreSQL backend profile by part: `perf script` call chains sorted into the parts of a hold.

Run: `.venv/bin/python -m benchmarks.pg_parts PERF.data [MS_PER_OP]` on a `perf record
--call-graph dwarf` of backends (`benchmarks.pg_cpu --perf OUT` makes them). Each sample goes
to the first part (in the order of `PARTS`) one of whose functions is on its stack; a part's
share of the samples, times the measured CPU per operation, is its cost per operation.
"""

import argparse
import subprocess
from collections import Counter

# (part, functions that mark it), first match wins: the foreign-key checks run inside the
# statement's ExecutorFinish, so they are tested before it.
PARTS: list[tuple[str, tuple[str, ...]]] = [
    (
        "foreign-key checks (RI triggers)",
        ("AfterTriggerEndQuery", "RI_FKey_check_ins", "RI_FKey_check_upd"),
    ),
    ("CHECK constraints (parse, plan, evaluate)", ("ExecConstraints",)),
    ("commit: WAL flush", ("XLogFlush",)),
    ("commit: the rest", ("CommitTransactionCommand", "CommitTransaction")),
    ("index inserts", ("ExecInsertIndexTuples",)),
    ("heap insert/update/lock (WAL records)", ("heap_insert", "heap_update", "heap_lock_tuple")),
    ("executor start (plan initialisation)", ("standard_ExecutorStart", "ExecutorStart")),
    ("executor end", ("standard_ExecutorEnd", "ExecutorEnd")),
    (
        "plan cache checks, locks of the plan's tables",
        ("GetCachedPlan", "RevalidateCachedQuery", "AcquireExecutorLocks"),
    ),
    ("advisory locks", ("pg_advisory_xact_lock_int8", "pg_advisory_xact_lock_shared_int8")),
    ("init plans (claim: the seat cap's count, the show)", ("ExecSetParamPlan",)),
    ("row locks (FOR UPDATE)", ("ExecLockRows",)),
    (
        "executing the plans (scans, joins, aggregates)",
        ("standard_ExecutorRun", "standard_ExecutorFinish"),
    ),
    ("parse/bind of the client's statement", ("exec_bind_message", "exec_parse_message")),
    (
        "client protocol (read, write, wait)",
        (
            "pq_getbyte",
            "secure_read",
            "secure_write",
            "pq_flush",
            "socket_flush",
            "ReadyForQuery",
            "WaitEventSetWait",
        ),
    ),
    ("transaction start, snapshots", ("StartTransactionCommand", "GetTransactionSnapshot")),
    (
        "PL/pgSQL and SPI around the statements",
        ("plpgsql_exec_function", "SPI_execute_plan_extended"),
    ),
]


def chains(data: str) -> list[list[str]]:
    """Every sample's stack (leaf first) from `perf script`."""
    out = subprocess.run(
        ["perf", "script", "-i", data, "-F", "ip,sym"], capture_output=True, text=True, check=True
    ).stdout
    samples: list[list[str]] = []
    stack: list[str] = []
    for line in out.splitlines():
        if not line.strip():
            if stack:
                samples.append(stack)
            stack = []
            continue
        parts = line.split(None, 1)
        stack.append(parts[1].split("+")[0] if len(parts) > 1 else "?")
    if stack:
        samples.append(stack)
    return samples


def parts(samples: list[list[str]]) -> Counter[str]:
    """Samples per part."""
    found: Counter[str] = Counter()
    for stack in samples:
        frames = set(stack)
        found[next((name for name, marks in PARTS if frames & set(marks)), "other")] += 1
    return found


def main() -> None:
    """Print the parts as a Markdown table."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("data")
    parser.add_argument("ms_per_op", type=float, nargs="?")
    args = parser.parse_args()
    samples = chains(args.data)
    found = parts(samples)
    print(f"{len(samples)} samples")
    print("| part | share | µs/op |" if args.ms_per_op else "| part | share |")
    print("|---|---:|---:|" if args.ms_per_op else "|---|---:|")
    for name, count in found.most_common():
        share = count / len(samples)
        cost = f" {1000 * args.ms_per_op * share:.0f} |" if args.ms_per_op else ""
        print(f"| {name} | {100 * share:.1f} % |{cost}")


if __name__ == "__main__":
    main()
