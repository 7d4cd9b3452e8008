"""Forged, stale and misdirected tokens against regional_api and the router; refresh reuse."""

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Callable

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from deploy.local.stack import LocalStack
from harness.tokens import TestIssuer
from schemas.auth import Role


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unsigned(header: dict[str, str], claims: dict[str, object]) -> str:
    return f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims).encode())}"


def _claims(minter: TestIssuer) -> dict[str, object]:
    token = minter.token("usr-attacker")
    payload = token.split(".")[1]
    decoded: dict[str, object] = json.loads(base64.urlsafe_b64decode(payload + "=="))
    return decoded


def _alg_none(minter: TestIssuer) -> str:
    return _unsigned({"alg": "none", "typ": "JWT", "kid": minter.kid}, _claims(minter)) + "."


def _hs256_with_public_key(minter: TestIssuer) -> str:
    public = minter.key.public_key()
    secrets_tried = public.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    signing_input = _unsigned({"alg": "HS256", "typ": "JWT", "kid": minter.kid}, _claims(minter))
    signature = hmac.new(secrets_tried, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{_b64(signature)}"


def _tampered(minter: TestIssuer) -> str:
    header, _, signature = minter.token("usr-attacker").split(".")
    claims = _claims(minter) | {"role": "admin"}
    return f"{header}.{_b64(json.dumps(claims).encode())}.{signature}"


def _other_key_same_kid(minter: TestIssuer) -> str:
    return TestIssuer(minter.kid, Ed25519PrivateKey.generate()).token(
        "usr-attacker", role=Role.admin
    )


def _unknown_kid(minter: TestIssuer) -> str:
    return TestIssuer("k-unknown", Ed25519PrivateKey.generate()).token("usr-attacker")


FORGERIES: dict[str, Callable[[TestIssuer], str]] = {
    "alg none": _alg_none,
    "HS256 signed with the public key": _hs256_with_public_key,
    "expired": lambda m: m.token(iat=int(time.time()) - 7200, exp=int(time.time()) - 3600),
    "not yet valid (iat ahead)": lambda m: m.token(iat=int(time.time()) + 3600),
    "not yet valid (nbf ahead)": lambda m: m.token(nbf=int(time.time()) + 3600),
    "wrong issuer": lambda m: m.token(iss="someone-else"),
    "wrong audience": lambda m: m.token(aud="another-api"),
    "unknown kid": _unknown_kid,
    "right kid, other key": _other_key_same_kid,
    "tampered payload": _tampered,
    "garbage": lambda m: "not.a.token",
}


def _targets(stack: LocalStack) -> dict[str, str]:
    return {
        "regional_api direct": f"{stack.regional_urls('eu-west')[0]}/me/reservations",
        "router to region": f"{stack.router_url}/regions/eu-west/me/reservations",
        "router fan-out": f"{stack.router_url}/me/reservations",
    }


@pytest.mark.parametrize("forgery", list(FORGERIES))
def test_forged_token_is_refused_everywhere(
    stack: LocalStack, minter: TestIssuer, forgery: str
) -> None:
    """Each bad token gets 401 with the error body from the region and the router."""
    token = FORGERIES[forgery](minter)
    for target, url in _targets(stack).items():
        response = httpx.get(url, headers={"Authorization": f"Bearer {token}"}, timeout=10.0)
        assert response.status_code == 401, (target, response.status_code, response.text)
        assert "error" in response.json(), (target, response.text)


def test_valid_token_is_accepted_everywhere(stack: LocalStack, minter: TestIssuer) -> None:
    """The control: a token signed with the real key passes at every target."""
    headers = minter.headers("usr-control")
    for target, url in _targets(stack).items():
        response = httpx.get(url, headers=headers, timeout=10.0)
        assert response.status_code == 200, (target, response.text)


def test_reused_refresh_token_revokes_the_family(stack: LocalStack) -> None:
    """Replaying a rotated refresh token is refused and kills the tokens rotated from it."""
    customer = stack.credentials["customer"]
    auth = f"{stack.router_url}/auth"
    with httpx.Client(timeout=30.0) as client:
        login = client.post(
            f"{auth}/login", json={"email": customer["email"], "password": customer["password"]}
        )
        assert login.status_code == 200, login.text
        first = login.json()["refresh_token"]
        rotated = client.post(f"{auth}/refresh", json={"refresh_token": first})
        assert rotated.status_code == 200, rotated.text
        second = rotated.json()["refresh_token"]
        replay = client.post(f"{auth}/refresh", json={"refresh_token": first})
        assert replay.status_code == 401, replay.text
        assert "error" in replay.json()
        after = client.post(f"{auth}/refresh", json={"refresh_token": second})
        assert after.status_code == 401, after.text
