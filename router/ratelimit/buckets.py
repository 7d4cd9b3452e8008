"""Per-client token buckets for the endpoints worth protecting (login, seat holds)."""

import math
import time
from dataclasses import dataclass

from prometheus_client import Counter

RATE_LIMITED = Counter("router_rate_limited_total", "Requests refused with 429", ["bucket"])


@dataclass(slots=True)
class _Bucket:
    tokens: float
    updated: float


class TokenBuckets:
    """In-memory token buckets keyed by client address; bounded in size."""

    def __init__(self, name: str, *, rate: float, burst: int, max_clients: int) -> None:
        self.name = name
        self.rate = rate
        self.burst = float(burst)
        self.max_clients = max_clients
        self._buckets: dict[str, _Bucket] = {}

    def take(self, client: str, now: float | None = None) -> float:
        """Spend one token; return 0 when allowed, else the seconds until one is available."""
        now = time.monotonic() if now is None else now
        bucket = self._buckets.get(client)
        if bucket is None:
            if len(self._buckets) >= self.max_clients:
                self._prune(now)
            bucket = self._buckets[client] = _Bucket(self.burst, now)
        bucket.tokens = min(self.burst, bucket.tokens + (now - bucket.updated) * self.rate)
        bucket.updated = now
        if bucket.tokens >= 1.0:
            bucket.tokens -= 1.0
            return 0.0
        RATE_LIMITED.labels(self.name).inc()
        return (1.0 - bucket.tokens) / self.rate

    def _prune(self, now: float) -> None:
        # Buckets that have refilled completely carry no state worth keeping.
        refill = self.burst / self.rate
        self._buckets = {
            key: bucket for key, bucket in self._buckets.items() if now - bucket.updated < refill
        }
        if len(self._buckets) >= self.max_clients:
            self._buckets.clear()


def retry_after_seconds(wait: float) -> int:
    """The `Retry-After` value for a wait, in whole seconds (at least 1)."""
    return max(1, math.ceil(wait))
