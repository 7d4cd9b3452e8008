"""`python -m deploy.migrate global|regional`: the init step that migrates a service's database.

The DSN comes from the service's own settings (`GLOBAL_DATABASE_URL` / `REGIONAL_DATABASE_URL`),
so the migration container shares the API container's environment.
"""

import argparse
import sys
from pathlib import Path

from common.migrate import upgrade
from common.pg import wait_until_ready

ROOT = Path(__file__).resolve().parents[1]


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
    upgrade(ROOT / service / "migrations", dsn)
    print(f"{service}: migrations applied", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
