"""The timeline of an on-sale rush: where the seconds go between the opening and the sell-out.

From the region's database (admission times, holds, payments) and the generator's own clock
(when each admitted customer asked for its pass, heard it, held and paid), in 0.1 s bins from
the opening; and from the processes' `/metrics`, how long requests waited in the router's line
and the replicas' admission lines, and how long the replicas took over holds and payments.
"""

import statistics
from collections import Counter
from typing import Any

import psycopg

from benchmarks.suite.system import metric_samples

BIN_S = 0.1
EVENTS = """
SELECT 'admitted' AS kind, user_id, extract(epoch FROM admitted_at)::float8 AS at
  FROM line_entries WHERE show_id = %(show)s AND admitted_at IS NOT NULL
UNION ALL
SELECT 'held', user_id, extract(epoch FROM created_at)::float8 FROM reservations
  WHERE show_id = %(show)s AND channel = 'online'
UNION ALL
SELECT 'paid', user_id, extract(epoch FROM confirmed_at)::float8 FROM reservations
  WHERE show_id = %(show)s AND channel = 'online' AND confirmed_at IS NOT NULL
"""
# The metric families read before and after the rush (histograms: their buckets' counts).
FAMILIES = {
    "router_line_wait_seconds": "router line wait",
    "http_request_queue_wait_seconds": "replica admission line wait",
    "router_watch_final_pass_seconds": "router final pass",  # per router, per show
}
ROUTES = {
    ("POST", "/shows/{show_id}/holds"): "replica hold",
    ("POST", "/shows/{show_id}/best-available"): "replica best-available",
    ("POST", "/reservations/{reservation_id}/payments"): "replica payment",
    ("DELETE", "/shows/{show_id}/line"): "replica leave",
}


def events(dsn: str, show_id: str, opens_at: float) -> dict[str, dict[str, float]]:
    """Each customer's admission, hold and payment times, in seconds from the opening."""
    found: dict[str, dict[str, float]] = {"admitted": {}, "held": {}, "paid": {}}
    with psycopg.connect(dsn) as conn:
        for kind, user, at in conn.execute(EVENTS, {"show": show_id}).fetchall():
            first = found[kind].get(user)
            found[kind][user] = at - opens_at if first is None else min(first, at - opens_at)
    return found


def bins(times: list[float]) -> dict[str, int]:
    """How many of `times` fall in each 0.1 s from the opening (only the busy bins)."""
    counted = Counter(round(BIN_S * int(t // BIN_S), 1) for t in times)
    return {f"{start:.1f}": counted[start] for start in sorted(counted)}


def _spread(values: list[float]) -> dict[str, float] | None:
    if not values:
        return None
    ordered = sorted(values)
    at = {q: ordered[min(len(ordered) - 1, int(q * len(ordered)))] for q in (0.5, 0.9, 0.99)}
    return {
        "p50": round(at[0.5], 3),
        "p90": round(at[0.9], 3),
        "p99": round(at[0.99], 3),
        "mean": round(statistics.fmean(ordered), 3),
    }


def legs(found: dict[str, dict[str, float]], paths: dict[str, dict[str, float]]) -> dict[str, Any]:
    """Each step of an admitted customer's path, its spread over the customers (s)."""
    steps: dict[str, list[float]] = {
        "admitted -> asked for the pass": [],
        "asked -> pass heard": [],
        "pass heard -> hold answered": [],
        "hold answered -> paid (client)": [],
        "admitted -> paid (client)": [],
    }
    for user, path in paths.items():
        admitted = found["admitted"].get(user)
        if admitted is None or "heard" not in path:
            continue
        steps["admitted -> asked for the pass"].append(path["asked"] - admitted)
        steps["asked -> pass heard"].append(path["heard"] - path["asked"])
        if "held" in path:
            steps["pass heard -> hold answered"].append(path["held"] - path["heard"])
        if "paid" in path and "held" in path:
            steps["hold answered -> paid (client)"].append(path["paid"] - path["held"])
            steps["admitted -> paid (client)"].append(path["paid"] - admitted)
    return {name: _spread(values) for name, values in steps.items()}


def timeline(
    dsn: str, show_id: str, opens_at: float, paths: dict[str, dict[str, float]]
) -> dict[str, Any]:
    """The rush's timeline: first and last of each kind of event, per-0.1 s counts, the legs."""
    found = events(dsn, show_id, opens_at)
    admitted, held, paid = (sorted(found[k].values()) for k in ("admitted", "held", "paid"))
    return {
        "first_admission_s": round(admitted[0], 3) if admitted else None,
        "first_hold_s": round(held[0], 3) if held else None,
        "first_sale_s": round(paid[0], 3) if paid else None,
        "last_sale_s": round(paid[-1], 3) if paid else None,
        "admitted_per_bin": bins(admitted),
        "held_per_bin": bins(held),
        "paid_per_bin": bins(paid),
        "legs_s": legs(found, paths),
    }


def scrape(urls: dict[str, str]) -> dict[str, dict[str, float]]:
    """The histograms of `FAMILIES` and `ROUTES` by bucket, summed over the processes."""
    found: dict[str, dict[str, float]] = {}
    for family, sample in metric_samples(urls.values()):
        name = _named(family, sample.labels)
        if name is None or not sample.name.endswith(("_bucket", "_count", "_sum")):
            continue
        key = sample.labels.get("le", sample.name.rsplit("_", 1)[1])
        buckets = found.setdefault(name, {})
        buckets[key] = buckets.get(key, 0.0) + sample.value
    return found


def _named(family: str, labels: dict[str, str]) -> str | None:
    if family in FAMILIES:
        return FAMILIES[family]
    if family == "http_request_duration_seconds":
        return ROUTES.get((labels.get("method", ""), labels.get("route", "")))
    return None


def waits(
    before: dict[str, dict[str, float]], after: dict[str, dict[str, float]]
) -> dict[str, Any]:
    """Per histogram: requests, mean and the bucket holding the p50 and p99, during the rush."""
    summary: dict[str, Any] = {}
    for name, buckets in after.items():
        grew = {key: value - before.get(name, {}).get(key, 0.0) for key, value in buckets.items()}
        count = grew.pop("count", 0.0)
        total = grew.pop("sum", 0.0)
        if count <= 0:
            continue
        edges = sorted((float(key), value) for key, value in grew.items())
        summary[name] = {
            "requests": int(count),
            "mean_ms": round(1000 * total / count, 1),
            "p50_le_ms": _bucket(edges, 0.5 * count),
            "p99_le_ms": _bucket(edges, 0.99 * count),
        }
    return summary


def _bucket(edges: list[tuple[float, float]], rank: float) -> float:
    for edge, cumulative in edges:
        if cumulative >= rank:
            return round(1000 * edge, 1)
    return float("inf")
