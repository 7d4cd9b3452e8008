"""`python -m deploy.regions FILE`: upsert the regions of a directory file into global_api.

Adding a region is configuration: an entry in this file (code, name, currency, endpoint URLs),
a regional deployment and its database. The file has the shape of `DirectoryMap`; only its
`regions` are written, through `PUT /directory/regions/{code}` as the bootstrapped admin
(`CINEMA_ADMIN_EMAIL`, `CINEMA_ADMIN_PASSWORD`; global_api at `CINEMA_GLOBAL_URL`).
"""

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import httpx


def _login(client: httpx.Client, base: str, deadline: float) -> str:
    """Log in as the admin, waiting for global_api to come up."""
    body = {
        "email": os.environ["CINEMA_ADMIN_EMAIL"],
        "password": os.environ["CINEMA_ADMIN_PASSWORD"],
    }
    while True:
        try:
            response = client.post(f"{base}/auth/login", json=body)
            response.raise_for_status()
            return str(response.json()["access_token"])
        except httpx.HTTPError:
            if time.monotonic() > deadline:
                raise
            time.sleep(1.0)


def upsert_regions(base: str, regions: list[dict[str, Any]], *, wait_seconds: float = 60.0) -> None:
    """Write every region (with its endpoints) to the directory."""
    with httpx.Client(timeout=10.0) as client:
        token = _login(client, base, time.monotonic() + wait_seconds)
        headers = {"Authorization": f"Bearer {token}"}
        for region in regions:
            document = {k: region[k] for k in ("code", "name", "currency", "endpoints")}
            client.put(
                f"{base}/directory/regions/{region['code']}", json=document, headers=headers
            ).raise_for_status()
            print(f"region {region['code']}: {', '.join(region['endpoints'])}", flush=True)


def main(argv: list[str] | None = None) -> int:
    """Read the file and upsert its regions."""
    parser = argparse.ArgumentParser(prog="python -m deploy.regions", description=__doc__)
    parser.add_argument("file", type=Path)
    args = parser.parse_args(argv)
    regions = json.loads(args.file.read_text())["regions"]
    upsert_regions(os.environ.get("CINEMA_GLOBAL_URL", "http://global-api:8000"), regions)
    return 0


if __name__ == "__main__":
    sys.exit(main())
