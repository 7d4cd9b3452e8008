"""`python -m deploy.migrate global|regional`: the init step that migrates a service's database.

The DSN comes from the service's own settings (`GLOBAL_DATABASE_URL` / `REGIONAL_DATABASE_URL`),
so the migration container shares the API container's environment. Every pod of a rollout runs
it as an init container: a session advisory lock lets one migrate while the others wait, then
find nothing left to do. The DSN must reach PostgreSQL directly, not through a pooler in
transaction mode (a session lock needs its session).
"""

import argparse
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg

from common.migrate import upgrade

ROOT = Path(__file__).resolve().parents[1]
# One lock per database: any pod of either role may run this at the same time as its peers.
LOCK_KEY = 0x63696E656D61  # "cinema"


def wait_until_ready(dsn: str, timeout: float = 30.0) -> None:
    """Wait until `dsn` accepts connections."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with psycopg.connect(dsn, connect_timeout=2):
                return
        except psycopg.OperationalError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


@contextmanager
def migration_lock(dsn: str) -> Iterator[None]:
    """Hold the migration advisory lock of the database at `dsn` for the block."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("SELECT pg_advisory_lock(%s)", (LOCK_KEY,))
        try:
            yield
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (LOCK_KEY,))


def database_url(role: str) -> str:
    """The DSN the service of `role` is configured with."""
    if role == "global":
        from global_api.config import GlobalSettings

        return GlobalSettings().database_url
    from regional_api.config import RegionalSettings

    return RegionalSettings().database_url


def main(argv: list[str] | None = None) -> int:
    """Wait for the database, then bring it to the newest revision."""
    parser = argparse.ArgumentParser(prog="python -m deploy.migrate", description=__doc__)
    parser.add_argument("role", choices=("global", "regional"))
    parser.add_argument("--wait-seconds", type=float, default=60.0)
    args = parser.parse_args(argv)
    dsn = database_url(args.role)
    wait_until_ready(dsn, timeout=args.wait_seconds)
    service = "global_api" if args.role == "global" else "regional_api"
    with migration_lock(dsn):
        upgrade(ROOT / service / "migrations", dsn)
    print(f"{service}: migrations applied", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
