"""Access tokens: every forged or stale variant is refused; key rotation keeps old tokens valid."""

import asyncio
import base64
import hashlib
import hmac
import json
import time
import uuid
from typing import Any

import httpx
import jwt
import psycopg
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from common.auth import JwksCache, TokenVerifier
from global_api.config import GlobalSettings
from global_api.main import create_app
from harness.live import live_server
from schemas.auth import ACCESS_TOKEN_AUDIENCE, ACCESS_TOKEN_ISSUER, Role
from tests.global_api.support import GlobalClient, bearer


def _active_key(dsn: str) -> tuple[str, Ed25519PrivateKey]:
    with psycopg.connect(dsn) as conn:
        row = conn.execute(
            "SELECT kid, private_key_pem FROM signing_keys WHERE retired_at IS NULL"
        ).fetchone()
    assert row is not None
    key = serialization.load_pem_private_key(row[1].encode(), password=None)
    assert isinstance(key, Ed25519PrivateKey)
    return row[0], key


def _claims(sub: str, **overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    claims = {
        "iss": ACCESS_TOKEN_ISSUER,
        "aud": ACCESS_TOKEN_AUDIENCE,
        "sub": sub,
        "role": "customer",
        "cinemas": [],
        "iat": now,
        "exp": now + 300,
        "jti": uuid.uuid4().hex,
    }
    return claims | overrides


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unsigned(header: dict[str, Any], claims: dict[str, Any], signature: bytes = b"") -> str:
    head = _b64(json.dumps(header).encode())
    body = _b64(json.dumps(claims).encode())
    return f"{head}.{body}.{_b64(signature)}"


def _forgeries(dsn: str, sub: str) -> dict[str, str]:
    kid, key = _active_key(dsn)

    def sign(claims: dict[str, Any], headers: dict[str, Any] | None = None) -> str:
        return jwt.encode(claims, key, algorithm="EdDSA", headers={"kid": kid, **(headers or {})})

    now = int(time.time())
    good = sign(_claims(sub))
    head, body, sig = good.split(".")
    tampered_body = _b64(json.dumps(_claims(sub, role="admin")).encode())
    public_bytes = key.public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )
    hs_header = {"alg": "HS256", "typ": "JWT", "kid": kid}
    hs_claims = _claims(sub)
    signing_input = f"{_b64(json.dumps(hs_header).encode())}.{_b64(json.dumps(hs_claims).encode())}"
    hs_sig = hmac.new(public_bytes, signing_input.encode(), hashlib.sha256).digest()
    return {
        "expired": sign(_claims(sub, iat=now - 4000, exp=now - 3000)),
        "tampered signature": f"{head}.{body}.{sig[:-4]}AAAA",
        "tampered claims": f"{head}.{tampered_body}.{sig}",
        "wrong audience": sign(_claims(sub, aud="someone-else")),
        "wrong issuer": sign(_claims(sub, iss="evil")),
        "alg none": _unsigned({"alg": "none", "typ": "JWT", "kid": kid}, _claims(sub)),
        "hs256 with public key": f"{signing_input}.{_b64(hs_sig)}",
        "unknown kid": jwt.encode(
            _claims(sub), Ed25519PrivateKey.generate(), algorithm="EdDSA", headers={"kid": "k-x"}
        ),
        "own key, unknown kid": sign(_claims(sub), {"kid": "k-unknown"}),
        "issued in the future": sign(_claims(sub, iat=now + 3600, exp=now + 4000)),
        "garbage": "not.a.jwt",
    }


def test_forged_and_stale_tokens_are_refused(api: GlobalClient, global_dsn: str) -> None:
    user = api.user()
    ok = api.http.get("/users/me", headers=user["headers"])
    assert ok.status_code == 200
    for name, token in _forgeries(global_dsn, user["id"]).items():
        response = api.http.get("/users/me", headers=bearer(token))
        assert response.status_code == 401, name
        assert response.json()["error"] in ("invalid_token", "token_expired"), name


@pytest.mark.parametrize("header", ["Basic abc", "Bearer", "Bearer x.y"])
def test_malformed_authorization_header_is_401(api: GlobalClient, header: str) -> None:
    response = api.http.get("/users/me", headers={"Authorization": header})
    assert response.status_code == 401
    assert api.http.get("/users/me").status_code == 401


def test_key_rotation_keeps_old_tokens_valid_and_publishes_both(api: GlobalClient) -> None:
    user = api.user()
    before = api.http.get("/.well-known/jwks.json").json()["keys"]
    assert len(before) == 1
    old_kid = before[0]["kid"]
    assert before[0]["kty"] == "OKP"
    assert "d" not in before[0]  # never the private part

    customer = api.http.post("/auth/keys/rotate", headers=user["headers"])
    assert customer.status_code == 403
    rotated = api.http.post("/auth/keys/rotate", headers=api.admin_headers())
    assert rotated.status_code == 200, rotated.text
    new_kid = rotated.json()["kid"]
    assert rotated.json()["retired"] == [old_kid]

    kids = [key["kid"] for key in api.http.get("/.well-known/jwks.json").json()["keys"]]
    assert kids == [new_kid, old_kid]
    assert api.http.get("/users/me", headers=user["headers"]).status_code == 200
    fresh = api.login(user["email"])
    assert jwt.get_unverified_header(fresh["access_token"])["kid"] == new_kid
    assert api.http.get("/users/me", headers=bearer(fresh["access_token"])).status_code == 200


def test_retired_key_leaves_jwks_after_its_tokens_expire(
    api: GlobalClient, global_dsn: str
) -> None:
    api.http.post("/auth/keys/rotate", headers=api.admin_headers())
    with psycopg.connect(global_dsn) as conn:
        conn.execute("UPDATE signing_keys SET retired_at = now() - interval '1 day'")
        conn.execute(
            "UPDATE signing_keys SET retired_at = NULL WHERE created_at = "
            "(SELECT max(created_at) FROM signing_keys)"
        )
    assert len(api.http.get("/.well-known/jwks.json").json()["keys"]) == 1


def test_rotation_by_another_worker_is_picked_up(
    api: GlobalClient, settings: GlobalSettings
) -> None:
    user = api.user()
    with live_server(create_app(settings)) as other_url, httpx.Client(base_url=other_url) as other:
        assert other.get("/users/me", headers=user["headers"]).status_code == 200
        api.http.post("/auth/keys/rotate", headers=api.admin_headers()).raise_for_status()
        fresh = api.login(user["email"])
        # The other worker has never seen the new kid: it reloads the keys from the database.
        me = other.get("/users/me", headers=bearer(fresh["access_token"]))
        assert me.status_code == 200


def test_regional_style_verifier_trusts_global_tokens(api: GlobalClient, base_url: str) -> None:
    user = api.user("staff")

    async def scenario() -> None:
        keys = JwksCache(f"{base_url}/.well-known/jwks.json", min_refetch_seconds=0)
        verifier = TokenVerifier(keys)
        claims = await verifier.verify(user["tokens"]["access_token"])  # fetches the JWKS
        assert (claims.sub, claims.role) == (user["id"], Role.staff)
        api.http.post("/auth/keys/rotate", headers=api.admin_headers()).raise_for_status()
        fresh = api.login(user["email"])["access_token"]
        assert (await verifier.verify(fresh)).sub == user["id"]  # unknown kid: refetched
        assert (await verifier.verify(user["tokens"]["access_token"])).sub == user["id"]

    asyncio.run(scenario())
