"""Token endpoints (OAuth2 password and client-credentials grants), refresh, logout, and /me."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import Depends, Form, Response
from fastapi.security import HTTPBasic, HTTPBasicCredentials
from pydantic import BaseModel, ConfigDict, Field

from app.deps import ScopeDep, SessionDep, SettingsDep, optional_access_claims
from app.errors import Unprocessable, problem_responses
from app.models.common import Level
from app.routers import open_router, secured_router
from app.routing import autocommit_reads
from app.security import TokenClaims
from app.services import auth as auth_service

router = open_router(prefix="/api/v1/auth", tags=["auth"])
me_router = secured_router(machine_scope=None, prefix="/api/v1", tags=["auth"])


class TokenResponse(BaseModel):
    model_config = ConfigDict(json_schema_extra={"example": {
        "access_token": "eyJhbGciOiJIUzI1NiIs...", "token_type": "bearer", "expires_in": 900,
        "refresh_token": "eyJhbGciOiJIUzI1NiIs...", "scope": "admin inspector"}})

    access_token: str
    token_type: Literal["bearer"] = "bearer"  # noqa: S105 - the OAuth2 token type, not a secret
    expires_in: int
    refresh_token: str | None = None
    scope: str = ""


class RefreshRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    refresh_token: str = Field(min_length=10, max_length=4096)


class Me(BaseModel):
    id: str
    username: str
    display_name: str
    region_code: str
    level: Level
    roles: list[str]
    scopes: list[str]
    principal_type: Literal["user", "service"]


_basic = HTTPBasic(auto_error=False, description="client_id:client_secret for client_credentials")


def _no_store(response: Response) -> None:
    """RFC 6749 §5.1: token responses are never cached."""
    response.headers["Cache-Control"] = "no-store"
    response.headers["Pragma"] = "no-cache"


def _out(pair: auth_service.TokenPair) -> TokenResponse:
    return TokenResponse(access_token=pair.access_token, expires_in=pair.expires_in,
                         refresh_token=pair.refresh_token, scope=pair.scope)


@router.post("/token", response_model=TokenResponse, responses=problem_responses(401, 422, 429))
async def token(
    response: Response,
    session: SessionDep,
    settings: SettingsDep,
    grant_type: Annotated[str, Form(description="password | client_credentials")] = "password",
    username: Annotated[str | None, Form(max_length=128)] = None,
    password: Annotated[str | None, Form(max_length=256)] = None,
    client_id: Annotated[str | None, Form(max_length=128)] = None,
    client_secret: Annotated[str | None, Form(max_length=256)] = None,
    basic: Annotated[HTTPBasicCredentials | None, Depends(_basic)] = None,
) -> TokenResponse:
    """Issue tokens. `grant_type=password` (username, password) for people returns an access and a
    refresh token; `grant_type=client_credentials` (client_id, client_secret, also accepted as HTTP
    Basic by clients that send them there) for service accounts returns an access token only.
    Repeated failures for a username are slowed and then locked (429 `login_locked`), the same way
    whether or not the username exists."""
    _no_store(response)
    if grant_type == "password":
        if not username or password is None:
            raise Unprocessable("username and password are required for the password grant",
                                code="invalid_request")
        return _out(await auth_service.password_grant(session, settings, username=username, password=password))
    if grant_type == "client_credentials":
        if not client_id and basic is not None:
            client_id, client_secret = basic.username, basic.password
        if not client_id or client_secret is None:
            raise Unprocessable("client_id and client_secret are required for client_credentials",
                                code="invalid_request")
        return _out(await auth_service.client_credentials_grant(
            session, settings, client_id=client_id, client_secret=client_secret))
    raise Unprocessable(f"unsupported grant_type {grant_type!r}", code="unsupported_grant_type")


@router.post("/refresh", response_model=TokenResponse, responses=problem_responses(401, 422))
async def refresh(body: RefreshRequest, session: SessionDep, settings: SettingsDep,
                  response: Response) -> TokenResponse:
    """Exchange a refresh token for a new pair. The old refresh token is retired; presenting a
    retired one again revokes every refresh token of that login (reuse detection, 401
    `refresh_token_reused`)."""
    _no_store(response)
    return _out(await auth_service.refresh(session, settings, token=body.refresh_token))


@router.post("/logout", status_code=204, responses=problem_responses(401, 422))
async def logout(
    body: RefreshRequest, session: SessionDep, settings: SettingsDep,
    claims: Annotated[TokenClaims | None, Depends(optional_access_claims)],
) -> None:
    """Revoke the refresh token's whole login, and the access token sent with the request if any."""
    await auth_service.logout(session, settings, token=body.refresh_token, access_claims=claims)


@me_router.get("/me", response_model=Me, responses=problem_responses(401))
@autocommit_reads
async def me(scope: ScopeDep, session: SessionDep) -> Me:
    """Who the token belongs to, with its region, level, roles and scopes as stored now."""
    from app.models.user import ServiceAccount, User

    display = scope.username
    if scope.principal_type == "user":
        user = await session.get(User, scope.principal_id)
        display = user.display_name if user else display
    else:
        sa = await session.get(ServiceAccount, scope.principal_id)
        display = sa.name if sa else display
    return Me(id=str(scope.principal_id), username=scope.username, display_name=display,
              region_code=scope.region_code, level=scope.level, roles=sorted(scope.roles),
              scopes=sorted(scope.scopes), principal_type=scope.principal_type)  # type: ignore[arg-type]
