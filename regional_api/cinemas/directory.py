"""Fetch one cinema from the global directory (only when this region has not mirrored it)."""

import logging

import httpx
from prometheus_client import Counter
from pydantic import ValidationError

from common.errors import ServiceUnavailable
from schemas.directory import CinemaRead

log = logging.getLogger("catalog.directory")

DIRECTORY_FETCHES = Counter(
    "catalog_directory_fetches_total", "Cinema lookups in the global directory", ["outcome"]
)
TIMEOUT = httpx.Timeout(2.0, connect=1.0)


class DirectoryUnavailable(ServiceUnavailable):
    """The global directory did not answer and the cinema is not mirrored here."""

    code = "directory_unavailable"


async def fetch_cinema(base_url: str, cinema_id: str) -> CinemaRead | None:
    """The directory's record of a cinema, None if it does not exist, or 503 if unreachable."""
    url = f"{base_url.rstrip('/')}/directory/cinemas/{cinema_id}"
    try:
        async with httpx.AsyncClient(timeout=TIMEOUT) as client:
            response = await client.get(url)
        if response.status_code == 404:
            DIRECTORY_FETCHES.labels("not_found").inc()
            return None
        response.raise_for_status()
        cinema = CinemaRead.model_validate_json(response.content)
    except (httpx.HTTPError, ValidationError) as exc:
        DIRECTORY_FETCHES.labels("failed").inc()
        log.warning(
            "directory lookup failed",
            extra={"fields": {"cinema_id": cinema_id, "error": type(exc).__name__}},
        )
        raise DirectoryUnavailable(
            "the cinema directory is unreachable and this cinema is not known here yet",
            headers={"Retry-After": "5"},
            cinema_id=cinema_id,
        ) from None
    DIRECTORY_FETCHES.labels("ok").inc()
    return cinema
