"""Who may call what: the declared access policy of every route, and the callers to try.

A route missing from these tables fails the matrix: a new endpoint must say who may call it.
"""

from collections.abc import Iterable
from dataclasses import dataclass

from fastapi import FastAPI
from fastapi.routing import iter_route_contexts

CALLERS = ("anonymous", "customer", "other_customer", "staff_other", "staff", "admin")

# Rule -> caller -> allowed (True) or the statuses that count as a correct refusal.
DENY = (403,)
HIDDEN = (404,)
RULES: dict[str, dict[str, bool | tuple[int, ...]]] = {
    "public": dict.fromkeys(CALLERS, True),
    "user": {c: c != "anonymous" or (401,) for c in CALLERS},
    "owner": {
        "anonymous": (401,), "customer": True, "other_customer": HIDDEN,
        "staff_other": HIDDEN, "staff": True, "admin": True,
    },
    # The owner rule, on an endpoint whose object check is inside its single write statement
    # (the pay hot path): the probe's invalid body is refused (422) before any object is read,
    # for every id alike, so it reveals nothing. A valid body from a non-owner gets 404:
    # tests/regional_api/payments/test_payments.py covers that.
    "owner_checked_in_write": {
        "anonymous": (401,), "customer": True, "other_customer": (*HIDDEN, 422),
        "staff_other": (*HIDDEN, 422), "staff": True, "admin": True,
    },
    "staff": {
        "anonymous": (401,), "customer": DENY + HIDDEN, "other_customer": DENY + HIDDEN,
        "staff_other": DENY + HIDDEN, "staff": True, "admin": True,
    },
    # Any staff member (scoped to their own cinemas by the service) and admins.
    "any_staff": {
        "anonymous": (401,), "customer": DENY, "other_customer": DENY,
        "staff_other": True, "staff": True, "admin": True,
    },
    "admin": {c: c == "admin" or ((401,) if c == "anonymous" else DENY) for c in CALLERS},
}  # fmt: skip

OPS = {
    ("GET", "/healthz"): "public",
    ("GET", "/readyz"): "public",
    ("GET", "/metrics"): "public",
    ("GET", "/openapi.json"): "public",
    ("GET", "/docs"): "public",
    ("GET", "/docs/oauth2-redirect"): "public",
    ("GET", "/redoc"): "public",
}

REGIONAL_POLICY: dict[tuple[str, str], str] = OPS | {
    ("GET", "/cinemas"): "public",
    ("GET", "/cinemas/{cinema_id}"): "public",
    ("PUT", "/cinemas/{cinema_id}"): "admin",
    ("POST", "/cinemas/{cinema_id}/sync"): "admin",
    ("GET", "/cinemas/{cinema_id}/halls"): "public",
    ("POST", "/cinemas/{cinema_id}/halls"): "staff",  # catalog: "admin or the cinema's staff"
    ("GET", "/cinemas/{cinema_id}/reports/daily"): "staff",
    ("GET", "/cinemas/{cinema_id}/shows"): "public",
    ("POST", "/cinemas/{cinema_id}/tickets/validate"): "staff",
    ("GET", "/halls/{hall_id}"): "public",
    ("PUT", "/halls/{hall_id}"): "staff",  # catalog: "admin or the cinema's staff"
    ("POST", "/halls/{hall_id}/shows"): "staff",  # catalog: "admin or the cinema's staff"
    ("GET", "/me/reservations"): "user",
    ("GET", "/movies"): "public",
    ("POST", "/movies"): "admin",
    ("GET", "/movies/{movie_id}"): "public",
    ("PATCH", "/movies/{movie_id}"): "admin",
    ("GET", "/payments/{payment_id}"): "owner",
    ("GET", "/reports/movies"): "any_staff",
    ("GET", "/reservations/{reservation_id}"): "owner",
    ("POST", "/reservations/{reservation_id}/cancel"): "owner",
    ("POST", "/reservations/{reservation_id}/extend"): "owner",
    ("POST", "/reservations/{reservation_id}/payments"): "owner_checked_in_write",
    ("GET", "/reservations/{reservation_id}/payments"): "owner",
    ("POST", "/reservations/{reservation_id}/release"): "owner",
    ("GET", "/reservations/{reservation_id}/tickets"): "owner",
    ("GET", "/reservations/{reservation_id}/tickets/{code}/qr.svg"): "owner",
    ("GET", "/shows"): "public",
    ("GET", "/shows/{show_id}"): "public",
    ("POST", "/shows/{show_id}/best-available"): "user",
    ("POST", "/shows/{show_id}/cancel"): "staff",
    ("POST", "/shows/{show_id}/holds"): "user",
    ("PUT", "/shows/{show_id}/onsale"): "admin",
    ("DELETE", "/shows/{show_id}/onsale"): "admin",
    ("GET", "/shows/{show_id}/onsale"): "public",
    ("PUT", "/movies/{movie_id}/onsale"): "admin",
    ("POST", "/shows/{show_id}/line"): "user",
    ("GET", "/shows/{show_id}/line"): "user",
    ("DELETE", "/shows/{show_id}/line"): "user",
    ("GET", "/shows/{show_id}/line/state"): "public",  # the line's counters, no one's place
    ("GET", "/shows/{show_id}/report"): "staff",
    ("GET", "/shows/{show_id}/reservations"): "staff",
    ("POST", "/shows/{show_id}/sales"): "staff",
    ("GET", "/shows/{show_id}/seats"): "public",
    ("GET", "/customers/{user_id}/reservations"): "any_staff",  # staff: their cinemas' rows
}

GLOBAL_POLICY: dict[tuple[str, str], str] = OPS | {
    ("GET", "/.well-known/jwks.json"): "public",
    ("POST", "/auth/keys/rotate"): "admin",
    ("POST", "/auth/login"): "public",
    ("POST", "/auth/logout"): "public",
    ("POST", "/auth/refresh"): "public",
    ("POST", "/auth/register"): "public",
    ("GET", "/directory/cinemas"): "public",
    ("POST", "/directory/cinemas"): "admin",
    ("GET", "/directory/cinemas/{cinema_id}"): "public",
    ("PATCH", "/directory/cinemas/{cinema_id}"): "admin",
    ("GET", "/directory/map"): "public",
    ("GET", "/directory/regions"): "public",
    ("PUT", "/directory/regions/{code}"): "admin",
    ("GET", "/users"): "admin",
    ("GET", "/users/lookup"): "any_staff",  # staff find customers only
    ("GET", "/users/me"): "user",
    ("POST", "/users/me/password"): "user",
    ("GET", "/users/{user_id}"): "admin",
    ("PATCH", "/users/{user_id}"): "admin",
    ("PUT", "/users/{user_id}/cinemas"): "admin",
}

# The router's own endpoints (everything else it proxies, by prefix, to the services above).
ROUTER_POLICY: dict[tuple[str, str], str] = {
    ("GET", "/healthz"): "public",
    ("GET", "/readyz"): "public",
    ("GET", "/metrics"): "public",
    ("GET", "/docs/oauth2-redirect"): "public",
    ("GET", "/router/docs"): "public",
    ("GET", "/router/redoc"): "public",
    ("GET", "/router/customers/{user_id}/reservations"): "any_staff",
    ("GET", "/router/openapi.json"): "public",
    ("GET", "/router/regions"): "public",
    ("GET", "/me/reservations"): "user",
    ("GET", "/search/shows"): "public",
}


@dataclass(frozen=True)
class Endpoint:
    """One method on one path template."""

    method: str
    path: str


def endpoints(app: FastAPI) -> list[Endpoint]:
    """Every (method, path template) an app serves, from its routes (HEAD mirrors GET)."""
    found = {
        Endpoint(method, str(route.path_format))
        for route in iter_route_contexts(list(app.routes))
        for method in (route.methods or ())
        if method != "HEAD"
    }
    return sorted(found, key=lambda e: (e.path, e.method))


def unpoliced(found: Iterable[Endpoint], policy: dict[tuple[str, str], str]) -> list[str]:
    """Endpoints without a policy entry."""
    return [f"{e.method} {e.path}" for e in found if (e.method, e.path) not in policy]


def verdict(rule: str, caller: str, status: int) -> str | None:
    """None when `status` is what `rule` expects for `caller`, else why it is wrong."""
    if status == 500 or status >= 505:
        return f"server error {status}"
    expected = RULES[rule][caller]
    if expected is True:
        # Allowed: anything but a refusal (502-504 only say a dependency is down, e.g. the
        # directory a cinema sync reads from).
        return f"refused with {status}" if status in (401, 403, 404) else None
    assert isinstance(expected, tuple)
    return None if status in expected else f"expected {expected}, got {status}"
