"""`/auth`: register, login, refresh, logout."""

from fastapi import APIRouter, Response, status

from global_api.auth import service
from global_api.auth.deps import ClientAddress, DummyHashDep, KeyRingDep
from global_api.config import SettingsDep
from global_api.db import SessionDep
from global_api.tokens.refresh import RefreshTokenReused, revoke_family_of
from global_api.users.passwords import HasherDep, hash_password
from global_api.users.service import create_user, read_user
from schemas.tokens import LoginRequest, LogoutRequest, RefreshRequest, TokenPair
from schemas.users import UserRead, UserRegister

router = APIRouter(prefix="/auth", tags=["auth"])


@router.post("/register", status_code=status.HTTP_201_CREATED)
async def register(body: UserRegister, session: SessionDep, hasher: HasherDep) -> UserRead:
    """Create a customer account (409 `email_taken` if the email exists in any case)."""
    password_hash = await hash_password(hasher, body.password)
    user = await create_user(
        session, email=body.email, password_hash=password_hash, display_name=body.display_name
    )
    return await read_user(session, user)


@router.post("/login")
async def login(
    body: LoginRequest,
    session: SessionDep,
    settings: SettingsDep,
    hasher: HasherDep,
    keyring: KeyRingDep,
    address: ClientAddress,
    dummy_hash: DummyHashDep,
) -> TokenPair:
    """Exchange email and password for a token pair (429 after repeated failures)."""
    try:
        return await service.login(
            session,
            email=body.email,
            password=body.password,
            address=address,
            settings=settings,
            hasher=hasher,
            keyring=keyring,
            dummy_hash=dummy_hash,
        )
    except service.InvalidCredentials:
        await _keep_refusal_writes(session)
        raise


@router.post("/refresh")
async def refresh(
    body: RefreshRequest, session: SessionDep, settings: SettingsDep, keyring: KeyRingDep
) -> TokenPair:
    """Rotate a refresh token into a new pair; a reused token revokes its whole family."""
    try:
        return await service.refresh(
            session, token=body.refresh_token, settings=settings, keyring=keyring
        )
    except RefreshTokenReused:
        await _keep_refusal_writes(session)
        raise


@router.post("/logout", status_code=status.HTTP_204_NO_CONTENT)
async def logout(body: LogoutRequest, session: SessionDep) -> Response:
    """Revoke the refresh token's whole family (idempotent)."""
    await revoke_family_of(session, token=body.refresh_token)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


async def _keep_refusal_writes(session: SessionDep) -> None:
    # The error response would roll the transaction back; these writes (a recorded failure,
    # a revoked family) are the point of the refusal, so they are committed first.
    await session.commit()
