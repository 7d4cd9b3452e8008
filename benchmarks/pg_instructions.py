"""PostgreSQL instructions per hold and payment: the statements alone, counted, not timed.

Run: `.venv/bin/python -m benchmarks.pg_instructions [--before OLD_TREE] [--variant NAME:FILE.sql
...] [--ops 'hold 1 seat,hold 2 seats,hold+pay'] [--count 100] [--history 20000]`. CPU time on
a 2-core machine shared with other work moves ±25 % from run to run (floor.md), more than a
schema change of a few per cent; the instructions a backend executes do not depend on the load.
Each tree's database is made as `benchmarks.pg_cpu` makes it (that tree's migrations, a past,
fresh shows); a `--variant` is this tree's database with FILE.sql applied on top. Then the server
stops and, per database and operation, one backend runs in single-user mode (`postgres
--single`) under `valgrind --tool=cachegrind`: the hot statements prepared with generic plans as
the hot pool runs them (`CLAIM`, `OPEN_PAYMENT`, `SETTLE` from that tree), each operation its
own transaction, `--count` operations after a warm-up, and again twice as many; the difference of
the two counts over `--count` is the instructions per operation (start-up and warm-up cancel
out). Kernel work (the WAL's fsync, the socket) is not counted: it is the same in every variant.
Results and reading: docs/benchmarks/floor.md, "Seventh round (pgclaim)" and "Eighth round
(pglean)" (`--callgrind DIR`: callgrind instead, its per-function profiles kept in DIR).
"""

import argparse
import os
import re
import subprocess
import sys
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
OPS = ("hold 1 seat", "hold 2 seats", "hold+pay")
WARM_UP = 20
# Shows seeded per database, whatever `--ops` asks: the generic plans follow the statistics, and
# with 4 shows (`--ops 'hold 1 seat'`) a one-seat hold ran 2,102,868 instructions against
# about 1,450,000 with 6 or 8 (docs/benchmarks/floor.md, "Eighth round (pglean)").
SHOWS = 2 * len(OPS) + 2
_PARAM = re.compile(r"%\((\w+)\)s")


def prepared(name: str, statement: str) -> tuple[str, list[str]]:
    """`PREPARE name AS` the statement with $n for its %(key)s, and the keys in $n order."""
    keys: list[str] = []

    def number(match: re.Match[str]) -> str:
        if match.group(1) not in keys:
            keys.append(match.group(1))
        return f"${keys.index(match.group(1)) + 1}"

    body = _PARAM.sub(number, statement.replace("%%", "%"))
    return f"PREPARE {name} AS {body}", keys


def execute(name: str, keys: list[str], params: dict[str, Any]) -> str:
    """`EXECUTE name(...)` with the parameters as literals."""
    from psycopg import sql

    args = ", ".join(sql.Literal(params[key]).as_string(None) for key in keys)
    return f"EXECUTE {name}({args})"


def script(op: str, show_id: str, seats: list[int], count: int) -> str:
    """A single-user session: prepare the statements, then `count` operations on `seats`."""
    from regional_api.payments import statements as pay_sql
    from regional_api.reservations import statements as hold_sql

    claim, claim_keys = prepared("claim", hold_sql.CLAIM)
    opening, open_keys = prepared("open", pay_sql.OPEN_PAYMENT)
    settle, settle_keys = prepared("settle", pay_sql.SETTLE)
    lines = ["SET plan_cache_mode = force_generic_plan", "SET jit = off", claim, opening, settle]
    size = 2 if op == "hold 2 seats" else 1
    now = datetime.now(UTC)  # the seeded shows start a day later
    assert len(seats) >= count * size, "more operations than free seats in a show"
    for n in range(count):
        rid, pid = f"res-{show_id}-{n:04d}", f"pay-{show_id}-{n:04d}"  # unique per show
        mine = "{" + ",".join(map(str, seats[n * size : (n + 1) * size])) + "}"
        hold: dict[str, Any] = {"show_id": show_id, "seat_ids": mine, "rid": rid, "email": None}
        hold |= {"user_id": f"user-{n % 64}", "channel": "online", "now": now}
        hold |= {"deadline": now + timedelta(minutes=10), "cap": 100_000}
        lines.append(execute("claim", claim_keys, hold))
        if op == "hold+pay":
            pay: dict[str, Any] = {
                "rid": rid,
                "pid": pid,
                "method": "card",
                "now": now,
                "admin": False,
            }
            pay |= {"guard": now + timedelta(seconds=65), "payer": hold["user_id"], "cinemas": []}
            lines.append(execute("open", open_keys, pay))
            codes = [f"{show_id}-{n:04d}-{k}" for k in range(size)]
            done = {"rid": rid, "pid": pid, "show_id": show_id, "codes": codes, "now": now}
            lines.append(execute("settle", settle_keys, done | {"ref": f"sim-{pid}"}))
    return "".join(f"{line};\n\n" for line in lines)


def tree_script(tree: Path, op: str, show_id: str, seats: list[int], count: int) -> str:
    """The script made with that tree's statements (imported in a process of its own)."""
    args = [sys.executable, str(Path(__file__).resolve()), "--script", op, show_id, str(count)]
    env = os.environ | {"PYTHONPATH": str(tree)}
    seat_list = ",".join(map(str, seats))
    done = subprocess.run([*args, seat_list], cwd=tree, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return done.stdout


def instructions(server: Any, dbname: str, text: str, profile: Path | None = None) -> int:
    """Instructions one single-user backend executes for the script (cachegrind's I refs); with
    `profile`, callgrind writes its per-function counts there."""
    owner = getattr(server, "_owner", None)
    with tempfile.NamedTemporaryFile("w", suffix=".sql", delete=False) as handle:
        handle.write(text)
    os.chmod(handle.name, 0o644)
    command = ["valgrind", "--tool=cachegrind", "--cache-sim=no", "--cachegrind-out-file=/dev/null"]
    if profile:
        command = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={profile}"]
    command += [str(server.bin_dir / "postgres"), "--single", "-j", "-D", str(server.data_dir)]
    command += ["-c", "fsync=off", "-c", "shared_buffers=128MB", dbname]
    user: dict[str, Any] = {"user": owner.pw_uid, "group": owner.pw_gid} if owner else {}
    with open(handle.name) as stdin:
        done = subprocess.run(
            command, stdin=stdin, capture_output=True, text=True, check=False, **user
        )
    os.unlink(handle.name)
    found = re.search(r"I\s+refs:\s+([\d,]+)", done.stderr)
    errors = [line for line in (done.stdout + done.stderr).splitlines() if "ERROR:" in line]
    assert not errors, errors[-5:]
    assert found, done.stderr[-2000:]
    return int(found.group(1).replace(",", ""))


def _profile_path(folder: Path | None, name: str, op: str, count: int) -> Path | None:
    """Where callgrind writes one run's profile (world-writable: the backend may run as postgres).

    Two profiles of `count` and 2x`count` operations differ by the operations alone:
    `callgrind_annotate --inclusive=yes` of each, subtracted, gives a function's share per op.
    """
    if folder is None:
        return None
    folder.mkdir(parents=True, exist_ok=True)
    folder.chmod(0o777)
    return folder.resolve() / f"{name}-{op.replace(' ', '_')}-{count}.out"


def free_seats(dsn: str, shows: int) -> list[tuple[str, list[int]]]:
    """The seeded shows' free seats, one list per show."""
    import psycopg

    with psycopg.connect(dsn) as conn:
        return [
            (show, seats)
            for show, seats in conn.execute(
                "SELECT show_id, array_agg(seat_id ORDER BY seat_id) FROM show_seats"
                " WHERE status = 'free' AND show_id LIKE 'show-eu-west-%%'"
                " GROUP BY show_id ORDER BY show_id LIMIT %s",
                (shows,),
            )
        ]


def main() -> None:
    """Make the databases, stop the server, count each operation in each database."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--before", type=Path)
    parser.add_argument("--variant", action="append", default=[], help="NAME:FILE.sql")
    parser.add_argument("--ops", default=",".join(OPS))
    parser.add_argument("--count", type=int, default=100)
    parser.add_argument("--history", type=int, default=20_000, help="past reservations")
    parser.add_argument("--callgrind", type=Path, help="write callgrind profiles to this folder")
    parser.add_argument("--script", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.script:
        op, show_id, count, seat_list = args.script
        print(script(op, show_id, [int(s) for s in seat_list.split(",")], int(count)), end="")
        return
    import psycopg

    from benchmarks.pg_cpu import _prepare
    from harness.pg import create_database, start_server

    ops = [op.strip() for op in args.ops.split(",")]
    server: Any = start_server("bench-pginstr", durable=False)
    try:
        trees = {"this": ROOT} | ({"before": args.before.resolve()} if args.before else {})
        assert len(ops) <= len(OPS), "each op needs two shows of its own"
        dsns = _prepare(server, trees, SHOWS, args.history)
        for name, path in (variant.split(":", 1) for variant in args.variant):
            dsns[name] = create_database(server.admin_dsn, f"pgcpu_{name}", template="pgcpu_this")
            trees[name] = ROOT
            with psycopg.connect(dsns[name], autocommit=True) as conn:
                conn.execute(Path(path).read_text())
                conn.execute("VACUUM ANALYZE")
        seats = {name: free_seats(dsn, 2 * len(ops)) for name, dsn in dsns.items()}
        server._stop_quietly()
        print("| op | target | instructions/op |\n|---|---|---:|")
        for n, op in enumerate(ops):
            for name in dsns:
                counts = []
                for k, count in enumerate((args.count, 2 * args.count)):
                    show_id, free = seats[name][2 * n + k]
                    text = tree_script(trees[name], op, show_id, free, WARM_UP + count)
                    profile = _profile_path(args.callgrind, name, op, count)
                    counts.append(instructions(server, f"pgcpu_{name}", text, profile))
                print(
                    f"| {op} | {name} | {(counts[1] - counts[0]) / args.count:,.0f} |", flush=True
                )
    finally:
        server.stop()


if __name__ == "__main__":
    if sys.path[0] == str(Path(__file__).resolve().parent):  # run as a file: no shadowing
        sys.path.pop(0)
    main()
