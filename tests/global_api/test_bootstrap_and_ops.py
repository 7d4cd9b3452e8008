"""The bootstrap-admin CLI, startup key creation, and the operations endpoints."""

import psycopg
import pytest

from global_api.bootstrap_admin import main
from global_api.config import settings_from_env
from tests.global_api.support import GlobalClient


def test_bootstrap_cli_creates_then_promotes(
    api: GlobalClient,
    global_dsn: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("BOOT_PW", "boot-password-1")
    monkeypatch.setenv("GLOBAL_ARGON2_MEMORY_COST", "8")
    monkeypatch.setenv("GLOBAL_ARGON2_TIME_COST", "1")
    monkeypatch.setenv("GLOBAL_ARGON2_PARALLELISM", "1")
    settings_from_env.cache_clear()
    try:
        args = ["--email", "boss@example.com", "--password-env", "BOOT_PW"]
        assert main([*args, "--database-url", global_dsn]) == 0
        user_id = capsys.readouterr().out.strip()
        customer = api.register()
        promote = ["--email", customer["email"].upper(), "--password-env", "BOOT_PW"]
        assert main([*promote, "--database-url", global_dsn]) == 0
    finally:
        settings_from_env.cache_clear()
    tokens = api.login("boss@example.com", "boot-password-1")
    me = api.http.get("/users/me", headers={"Authorization": f"Bearer {tokens['access_token']}"})
    assert me.json() == me.json() | {"id": user_id, "role": "admin"}
    promoted = api.http.get(f"/users/{customer['id']}", headers=api.admin_headers())
    assert promoted.json()["role"] == "admin"
    # Promotion keeps the account's own password.
    api.login(customer["email"])


def test_bootstrap_cli_refuses_a_missing_password() -> None:
    assert main(["--email", "a@example.com", "--password-env", "NO_SUCH_VARIABLE_X"]) == 2


def test_ops_endpoints(api: GlobalClient) -> None:
    assert api.http.get("/healthz").json() == {"status": "ok"}
    ready = api.http.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["checks"] == {"database": "ok", "schema": "ok"}
    api.register()
    api.http.post("/auth/login", json={"email": "nobody@example.com", "password": "xxxxxxxx"})
    api.http.get("/directory/cinemas/cin-eu-west-000000000000")
    metrics = api.http.get("/metrics").text
    # Request metrics are labelled by route template, never by raw path.
    assert 'route="/directory/cinemas/{cinema_id}"' in metrics
    assert "cin-eu-west-000000000000" not in metrics
    assert "global_registrations_total" in metrics
    assert 'global_logins_total{outcome="failed"}' in metrics
    assert 'global_tokens_issued_total{kind="access"}' in metrics


def _set_revision(dsn: str, revision: str | None) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("DELETE FROM alembic_version")
        if revision is not None:
            conn.execute("INSERT INTO alembic_version VALUES (%s)", (revision,))


def test_not_ready_until_the_schema_is_at_the_expected_revision(
    api: GlobalClient, global_dsn: str
) -> None:
    with psycopg.connect(global_dsn) as conn:
        row = conn.execute("SELECT version_num FROM alembic_version").fetchone()
    assert row is not None
    _set_revision(global_dsn, None)  # as before the migration ran
    ready = api.http.get("/readyz")
    assert ready.status_code == 503
    assert ready.json()["checks"] == {"database": "ok", "schema": "failed: SchemaBehind"}
    assert ready.json()["error"] == "not_ready"
    _set_revision(global_dsn, row[0])
    assert api.http.get("/readyz").status_code == 200


def test_a_newer_schema_keeps_old_pods_ready(api: GlobalClient, global_dsn: str) -> None:
    _set_revision(global_dsn, "9999_from_the_next_release")
    assert api.http.get("/readyz").json()["checks"]["schema"] == "ok"
