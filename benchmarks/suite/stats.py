"""Pure helpers: latency percentiles and summaries of load runs."""

import math
from collections.abc import Sequence


def percentile(values: Sequence[float], q: float) -> float:
    """The q-quantile (0..1) by linear interpolation between closest ranks; NaN when empty."""
    if not values:
        return math.nan
    if not 0.0 <= q <= 1.0:
        raise ValueError("q must be between 0 and 1")
    ordered = sorted(values)
    position = q * (len(ordered) - 1)
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def latency_summary(latencies_ms: Sequence[float]) -> dict[str, float]:
    """p50, p95, p99 and max of latencies in milliseconds, rounded to 0.01 ms."""
    ordered = sorted(latencies_ms)
    summary = {f"p{int(q * 100)}_ms": percentile(ordered, q) for q in (0.5, 0.95, 0.99)}
    summary["max_ms"] = ordered[-1] if ordered else math.nan
    return {key: round(value, 2) for key, value in summary.items()}


def ratio(value: float, reference: float) -> float:
    """value / reference, or NaN when there is no reference."""
    return value / reference if reference else math.nan
