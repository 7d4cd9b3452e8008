"""Create or promote the first admin: `python -m global_api.bootstrap_admin --email E --password-env VAR`."""

import argparse
import asyncio
import os
import sys

from argon2 import PasswordHasher

from common.db import make_engine, make_sessionmaker
from global_api.config import GlobalSettings, settings_from_env
from global_api.users.passwords import make_hasher
from global_api.users.service import ensure_admin

__all__ = ["ensure_admin", "main", "run"]


async def run(settings: GlobalSettings, *, email: str, password: str) -> str:
    """Ensure the admin exists in the configured database; return its id."""
    engine = make_engine(settings.database_url, service="global_api_bootstrap", pool_size=1)
    hasher: PasswordHasher = make_hasher(settings)
    try:
        async with make_sessionmaker(engine)() as session, session.begin():
            return await ensure_admin(session, email=email, password=password, hasher=hasher)
    finally:
        await engine.dispose()


def main(argv: list[str] | None = None) -> int:
    """Parse arguments, read the password from the environment, ensure the admin."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--email", required=True)
    parser.add_argument(
        "--password-env", required=True, help="name of the environment variable with the password"
    )
    parser.add_argument("--database-url", help="default: GLOBAL_DATABASE_URL")
    args = parser.parse_args(argv)
    password = os.environ.get(args.password_env, "")
    if len(password) < 8:
        print(f"${args.password_env} must hold a password of 8+ characters", file=sys.stderr)
        return 2
    settings = settings_from_env()
    if args.database_url:
        settings = settings.model_copy(update={"database_url": args.database_url})
    user_id = asyncio.run(run(settings, email=args.email, password=password))
    print(user_id)
    return 0


if __name__ == "__main__":
    sys.exit(main())
