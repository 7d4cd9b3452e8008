"""The cinema-to-region map, cached in memory, refreshed in the background and on a miss."""

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from prometheus_client import Counter, Gauge
from pydantic import ValidationError

from router.upstreams.http1 import Http1Pool
from schemas.directory import DirectoryMap

log = logging.getLogger("router.directory")

MAP_REFRESHES = Counter(
    "router_map_refreshes_total", "Directory map fetches", ["trigger", "outcome"]
)
MAP_CINEMAS = Gauge("router_map_cinemas", "Cinemas in the cached directory map")

OnChange = Callable[[DirectoryMap], Awaitable[None]]


class DirectoryCache:
    """Holds the latest `DirectoryMap`; never asks global_api on the request path except on a miss."""

    def __init__(
        self,
        *,
        map_path: str,
        fetch_timeout: float,
        miss_refresh_min_seconds: float,
        on_change: OnChange,
    ) -> None:
        self.map_path = map_path  # on global_api
        self.fetch_timeout = fetch_timeout
        self.miss_refresh_min_seconds = miss_refresh_min_seconds
        self.on_change = on_change
        self.map: DirectoryMap | None = None
        self.source = "none"
        self.cinema_regions: dict[str, str] = {}
        self._etag: bytes | None = None
        self._last_fetch = float("-inf")
        self._inflight: asyncio.Task[bool] | None = None
        self._client: Http1Pool | None = None

    @property
    def version(self) -> str | None:
        """Version of the cached map, if any."""
        return self.map.version if self.map else None

    async def start(self, client: Http1Pool, static_file: Path | None) -> None:
        """Load the map through `client` (global_api), or from the static file when it is down."""
        self._client = client
        if await self.refresh("startup"):
            return
        if static_file is not None and self.map is None:
            await self.load_static(static_file)

    async def load_static(self, path: Path) -> None:
        """Use the static JSON fallback (same shape as `DirectoryMap`)."""
        try:
            directory = DirectoryMap.model_validate(
                json.loads(await asyncio.to_thread(path.read_text))
            )
        except (OSError, ValueError, ValidationError) as exc:
            log.error(
                "static directory map unusable",
                extra={"fields": {"path": str(path), "error": type(exc).__name__}},
            )
            return
        await self._apply(directory, source="static")
        log.warning("serving from the static directory map", extra={"fields": {"path": str(path)}})

    async def refresh(self, trigger: str) -> bool:
        """Fetch the map (conditional GET); True when the cache holds a map from global_api."""
        assert self._client is not None, "start() first"
        self._last_fetch = time.monotonic()
        headers = [(b"If-None-Match", self._etag)] if self._etag else []
        directory: DirectoryMap | None = None
        try:
            async with asyncio.timeout(self.fetch_timeout):
                answer = await self._client.get(self.map_path, headers)
            if answer.status == 304:
                MAP_REFRESHES.labels(trigger, "not_modified").inc()
                return True
            error = f"status {answer.status}"
            if answer.status == 200:
                directory = DirectoryMap.model_validate_json(answer.body)
        except (TimeoutError, OSError, ValidationError) as exc:
            error = type(exc).__name__
        if directory is None:
            MAP_REFRESHES.labels(trigger, "failed").inc()
            log.warning(
                "directory map fetch failed, keeping the cached map",
                extra={"fields": {"trigger": trigger, "error": error}},
            )
            return False
        self._etag = answer.header(b"etag")
        await self._apply(directory, source="global")
        MAP_REFRESHES.labels(trigger, "updated").inc()
        return True

    async def refresh_on_miss(self) -> None:
        """Refresh once for an unknown cinema: concurrent misses share one fetch, rate-limited."""
        if self._inflight is None:
            if time.monotonic() - self._last_fetch < self.miss_refresh_min_seconds:
                return
            self._inflight = asyncio.create_task(self.refresh("miss"))
            self._inflight.add_done_callback(self._clear_inflight)
        await asyncio.shield(self._inflight)

    def _clear_inflight(self, _: "asyncio.Task[bool]") -> None:
        self._inflight = None

    async def refresh_forever(self, interval: float) -> None:
        """Background task: refresh every `interval` seconds."""
        while True:
            await asyncio.sleep(interval)
            try:
                await self.refresh("periodic")
            except Exception:  # a bug here must never stop refreshing
                log.exception("directory refresh failed")

    async def _apply(self, directory: DirectoryMap, *, source: str) -> None:
        await self.on_change(directory)
        self.map = directory
        self.source = source
        self.cinema_regions = {cinema.id: cinema.region for cinema in directory.cinemas}
        MAP_CINEMAS.set(len(self.cinema_regions))
        log.info(
            "directory map loaded",
            extra={
                "fields": {
                    "version": directory.version,
                    "source": source,
                    "regions": [region.code for region in directory.regions],
                    "cinemas": len(directory.cinemas),
                }
            },
        )
