"""Registration, login, refresh rotation, reuse detection, logout, password change."""

import httpx
import jwt
import psycopg

from global_api.config import GlobalSettings
from global_api.main import create_app
from harness.live import live_server
from tests.global_api.support import PASSWORD, GlobalClient, bearer, unique_email


def test_register_login_and_read_me(api: GlobalClient) -> None:
    user = api.register()
    assert user["role"] == "customer"
    assert "password" not in str(user)
    tokens = api.login(user["email"].upper())
    assert tokens["token_type"] == "bearer"
    me = api.http.get("/users/me", headers=bearer(tokens["access_token"]))
    assert me.status_code == 200
    assert me.json()["id"] == user["id"]


def test_duplicate_email_in_other_case_is_409(api: GlobalClient) -> None:
    email = unique_email()
    api.register(email)
    response = api.http.post(
        "/auth/register",
        json={"email": email.upper(), "password": PASSWORD, "display_name": "Bob"},
    )
    assert response.status_code == 409
    assert response.json()["error"] == "email_taken"


def test_wrong_password_is_401(api: GlobalClient) -> None:
    user = api.register()
    response = api.http.post("/auth/login", json={"email": user["email"], "password": "nope-nope"})
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_credentials"
    unknown = api.http.post("/auth/login", json={"email": unique_email(), "password": PASSWORD})
    assert unknown.status_code == 401


def _refresh(api: GlobalClient, token: str) -> httpx.Response:
    return api.http.post("/auth/refresh", json={"refresh_token": token})


def test_refresh_rotates_and_reuse_revokes_the_family(api: GlobalClient) -> None:
    user = api.register()
    first = api.login(user["email"])
    second = _refresh(api, first["refresh_token"])
    assert second.status_code == 200
    new = second.json()
    assert new["refresh_token"] != first["refresh_token"]
    assert api.http.get("/users/me", headers=bearer(new["access_token"])).status_code == 200

    reused = _refresh(api, first["refresh_token"])
    assert reused.status_code == 401
    assert reused.json()["error"] == "refresh_token_reused"
    # The whole family is gone, including the token issued by the legitimate rotation.
    assert _refresh(api, new["refresh_token"]).status_code == 401
    # Other sessions (families) of the same user are untouched.
    other = api.login(user["email"])
    assert _refresh(api, other["refresh_token"]).status_code == 200


def test_unknown_refresh_token_is_401(api: GlobalClient) -> None:
    response = _refresh(api, "not-a-token")
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_refresh_token"


def test_logout_revokes_the_family(api: GlobalClient) -> None:
    user = api.register()
    tokens = api.login(user["email"])
    rotated = _refresh(api, tokens["refresh_token"]).json()
    response = api.http.post("/auth/logout", json={"refresh_token": tokens["refresh_token"]})
    assert response.status_code == 204
    assert _refresh(api, rotated["refresh_token"]).status_code == 401
    again = api.http.post("/auth/logout", json={"refresh_token": "unknown"})
    assert again.status_code == 204


def test_password_change_revokes_other_sessions(api: GlobalClient) -> None:
    user = api.register()
    laptop = api.login(user["email"])
    phone = api.login(user["email"])
    wrong = api.http.post(
        "/users/me/password",
        json={"current_password": "wrong-password", "new_password": "a new password"},
        headers=bearer(phone["access_token"]),
    )
    assert wrong.status_code == 401
    changed = api.http.post(
        "/users/me/password",
        json={"current_password": PASSWORD, "new_password": "a new password"},
        headers=bearer(phone["access_token"]),
    )
    assert changed.status_code == 200, changed.text
    assert _refresh(api, laptop["refresh_token"]).status_code == 401
    assert _refresh(api, changed.json()["refresh_token"]).status_code == 200
    api.login(user["email"], "a new password")
    old = api.http.post("/auth/login", json={"email": user["email"], "password": PASSWORD})
    assert old.status_code == 401


def test_disabled_user_cannot_log_in_or_refresh(api: GlobalClient) -> None:
    user = api.register()
    tokens = api.login(user["email"])
    disabled = api.http.patch(
        f"/users/{user['id']}", json={"disabled": True}, headers=api.admin_headers()
    )
    assert disabled.status_code == 200
    login = api.http.post("/auth/login", json={"email": user["email"], "password": PASSWORD})
    assert login.status_code == 403
    assert login.json()["error"] == "account_disabled"
    assert _refresh(api, tokens["refresh_token"]).status_code in (401, 403)
    me = api.http.get("/users/me", headers=bearer(tokens["access_token"]))
    assert me.status_code == 403


def test_staff_token_carries_cinemas(api: GlobalClient) -> None:
    cinema = api.cinema()
    staff = api.user("staff", cinemas=[cinema["id"]])
    claims = jwt.decode(staff["tokens"]["access_token"], options={"verify_signature": False})
    assert claims["role"] == "staff"
    assert claims["cinemas"] == [cinema["id"]]


def test_login_rehashes_when_the_cost_changed(
    api: GlobalClient, settings: GlobalSettings, global_dsn: str
) -> None:
    user = api.register()
    stronger = create_app(settings.model_copy(update={"argon2_time_cost": 2}))
    with live_server(stronger) as url, httpx.Client(base_url=url) as client:
        response = client.post("/auth/login", json={"email": user["email"], "password": PASSWORD})
        assert response.status_code == 200
    with psycopg.connect(global_dsn) as conn:
        row = conn.execute(
            "SELECT password_hash FROM users WHERE id = %s", (user["id"],)
        ).fetchone()
    assert row is not None
    assert row[0].startswith("$argon2id$")
    assert ",t=2," in row[0]
    api.login(user["email"])  # the new hash still verifies with the old settings' hasher
