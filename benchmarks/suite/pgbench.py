"""The reference: durable one-INSERT seat holds straight into PostgreSQL, driven by pgbench."""

import re
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import psycopg

from harness.pg import create_database, find_pg_bin, start_server

# Same shape as a hold: one durable row per (show, seat), duplicates refused by the unique key.
SCHEMA = """
CREATE TABLE seat_holds (
    show_id bigint NOT NULL,
    seat_id integer NOT NULL,
    user_id integer NOT NULL,
    held_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (show_id, seat_id)
)
"""
SCRIPT = """\\set show random(1, 100000)
\\set seat random(1, 600)
INSERT INTO seat_holds (show_id, seat_id, user_id) VALUES (:show, :seat, :client_id)
  ON CONFLICT DO NOTHING;
"""


def pgbench_binary() -> str:
    """pgbench from PATH or from the server's bin directory."""
    found = shutil.which("pgbench")
    if found:
        return found
    bin_dir = find_pg_bin()
    if bin_dir and (bin_dir / "pgbench").exists():
        return str(bin_dir / "pgbench")
    raise RuntimeError("pgbench not found")


def parse(output: str) -> dict[str, float]:
    """Transactions per second and average latency from pgbench's summary."""
    tps = re.search(r"tps = ([\d.]+)", output)
    latency = re.search(r"latency average = ([\d.]+) ms", output)
    if tps is None:
        raise RuntimeError(f"unexpected pgbench output: {output[-300:]}")
    return {
        "tps": round(float(tps.group(1)), 1),
        "latency_avg_ms": float(latency.group(1)) if latency else float("nan"),
    }


def run(clients: list[int], seconds: float) -> list[dict[str, Any]]:
    """Start a server with the stack's regional settings (durable) and run pgbench at each size."""
    server = start_server("bench-pgbench", durable=True)
    try:
        dsn = create_database(server.admin_dsn, "reference", drop_existing=True)
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(SCHEMA)
        rows = []
        with tempfile.TemporaryDirectory(prefix="bench-pgbench-") as tmp:
            script = Path(tmp) / "hold.sql"
            script.write_text(SCRIPT)
            script.chmod(0o644)
            for n in clients:
                command = [pgbench_binary(), "-n", "-c", str(n), "-j", str(min(n, 2))]
                command += ["-T", str(max(1, round(seconds))), "-f", str(script), dsn]
                out = subprocess.run(command, capture_output=True, text=True, check=True)
                rows.append({"clients": n, **parse(out.stdout)})
        return rows
    finally:
        server.stop()
