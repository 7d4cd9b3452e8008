"""Repeated failed logins are throttled per account and per client address."""

from global_api.config import GlobalSettings
from tests.global_api.support import PASSWORD, GlobalClient


def _fail(api: GlobalClient, email: str, forwarded: str | None = None) -> int:
    headers = {"X-Forwarded-For": forwarded} if forwarded else {}
    response = api.http.post(
        "/auth/login", json={"email": email, "password": "wrong-password"}, headers=headers
    )
    return response.status_code


def test_account_is_throttled_with_retry_after(api: GlobalClient, settings: GlobalSettings) -> None:
    user = api.register()
    for _ in range(settings.login_failure_threshold):
        assert _fail(api, user["email"]) == 401
    throttled = api.http.post("/auth/login", json={"email": user["email"], "password": PASSWORD})
    assert throttled.status_code == 429
    assert throttled.json()["error"] == "rate_limited"
    retry_after = int(throttled.headers["Retry-After"])
    assert 0 < retry_after <= settings.login_failure_window_seconds
    # Case does not get around it.
    upper = api.http.post(
        "/auth/login", json={"email": user["email"].upper(), "password": PASSWORD}
    )
    assert upper.status_code == 429


def test_success_resets_the_account_count(api: GlobalClient, settings: GlobalSettings) -> None:
    user = api.register()
    for _ in range(settings.login_failure_threshold - 1):
        assert _fail(api, user["email"]) == 401
    api.login(user["email"])
    assert _fail(api, user["email"]) == 401


def test_address_is_throttled_across_accounts(api: GlobalClient) -> None:
    emails = [api.register()["email"] for _ in range(3)]
    for email in emails:
        assert _fail(api, email) == 401
    # A fourth account from the same address is refused before its password is checked.
    fresh = api.register()
    response = api.http.post("/auth/login", json={"email": fresh["email"], "password": PASSWORD})
    assert response.status_code == 429
