"""Helpers for driving the global API over HTTP in tests."""

import uuid
from dataclasses import dataclass
from typing import Any

import httpx

ADMIN_EMAIL = "root@example.com"
ADMIN_PASSWORD = "admin-password-1"  # test-only bootstrap secret
PASSWORD = "correct horse battery"


def bearer(token: str) -> dict[str, str]:
    """An Authorization header for `token`."""
    return {"Authorization": f"Bearer {token}"}


def unique_email(prefix: str = "user") -> str:
    """An email no other test uses."""
    return f"{prefix}-{uuid.uuid4().hex[:10]}@example.com"


@dataclass
class GlobalClient:
    """An httpx client plus factories for users, tokens, regions and cinemas."""

    http: httpx.Client

    def register(self, email: str | None = None, password: str = PASSWORD) -> dict[str, Any]:
        """Register a customer and return the created user."""
        body = {"email": email or unique_email(), "password": password, "display_name": "Ann"}
        response = self.http.post("/auth/register", json=body)
        assert response.status_code == 201, response.text
        return dict(response.json())

    def login(self, email: str, password: str = PASSWORD) -> dict[str, Any]:
        """Log in and return the token pair."""
        response = self.http.post("/auth/login", json={"email": email, "password": password})
        assert response.status_code == 200, response.text
        return dict(response.json())

    def admin_headers(self) -> dict[str, str]:
        """Headers of the bootstrap admin."""
        return bearer(self.login(ADMIN_EMAIL, ADMIN_PASSWORD)["access_token"])

    def user(self, role: str = "customer", cinemas: list[str] | None = None) -> dict[str, Any]:
        """A fresh user with `role`; returns the user plus `tokens` and `headers`."""
        user = self.register()
        if role != "customer" or cinemas:
            admin = self.admin_headers()
            patched = self.http.patch(f"/users/{user['id']}", json={"role": role}, headers=admin)
            assert patched.status_code == 200, patched.text
            if cinemas:
                put = self.http.put(
                    f"/users/{user['id']}/cinemas", json={"cinema_ids": cinemas}, headers=admin
                )
                assert put.status_code == 200, put.text
        tokens = self.login(user["email"])
        return user | {"tokens": tokens, "headers": bearer(tokens["access_token"])}

    def region(self, code: str = "eu-west") -> dict[str, Any]:
        """Create or replace a region."""
        body = {
            "code": code,
            "name": code.upper(),
            "currency": "EUR",
            "endpoints": [f"http://127.0.0.1:9/{code}"],
        }
        response = self.http.put(
            f"/directory/regions/{code}", json=body, headers=self.admin_headers()
        )
        assert response.status_code == 200, response.text
        return dict(response.json())

    def cinema(self, region: str = "eu-west", **fields: Any) -> dict[str, Any]:
        """Create a cinema in `region` (created first if needed)."""
        self.region(region)
        body = {"name": "Odeon", "city": "Paris", "timezone": "Europe/Paris", "region": region}
        response = self.http.post(
            "/directory/cinemas", json=body | fields, headers=self.admin_headers()
        )
        assert response.status_code == 201, response.text
        return dict(response.json())
