"""The published signing keys (`/.well-known/jwks.json`) and key rotation (admin)."""

from fastapi import APIRouter, Request, Response

from common.auth import AdminClaims
from global_api.config import GlobalSettings, SettingsDep
from global_api.db import SessionDep
from global_api.tokens import keys
from global_api.tokens.jwks import DatabaseJwks
from schemas.tokens import Jwks, KeyRotation

router = APIRouter(tags=["tokens"])


def retired_grace_seconds(settings: GlobalSettings) -> int:
    """How long a retired key stays published: until its last tokens have expired."""
    return settings.access_token_ttl_seconds + settings.key_publish_margin_seconds


@router.get("/.well-known/jwks.json")
async def jwks(session: SessionDep, settings: SettingsDep, response: Response) -> Jwks:
    """Publish the public keys that verify access tokens (active and recently retired)."""
    document = await keys.published_jwks(
        session, retired_grace_seconds=retired_grace_seconds(settings)
    )
    response.headers["Cache-Control"] = "public, max-age=60"
    return Jwks.model_validate(document)


@router.post("/auth/keys/rotate")
async def rotate(_: AdminClaims, request: Request, session: SessionDep) -> KeyRotation:
    """Make a new signing key active; the old one stays published until its tokens expire."""
    kid, retired = await keys.rotate_keys(session)
    await session.commit()  # publish before our own verifier reloads from the database
    verifier_keys: DatabaseJwks = request.app.state.verifier.keys
    await verifier_keys.reload()
    return KeyRotation(kid=kid, retired=retired)
