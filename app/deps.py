"""Annotated dependency aliases: the request's session and the caller's scope."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.security import OAuth2PasswordBearer
from sqlalchemy.ext.asyncio import AsyncSession

from app import policy
from app import scope as scope_mod
from app.config import Settings
from app.errors import Unauthenticated
from app.principals import PrincipalCache
from app.scope import Scope
from app.security import TokenClaims, TokenError, decode_token
from app.services import auth as auth_service

BEARER_SCHEME = "OAuth2PasswordBearer"
oauth2_scheme = OAuth2PasswordBearer(
    tokenUrl="/api/v1/auth/token", auto_error=False, scheme_name=BEARER_SCHEME,
    description="Password grant for people; machine clients use client_credentials on the same URL.",
)


# Dependencies are `async def` on purpose: FastAPI runs plain `def` dependencies in a thread pool,
# a cost paid on every request.
async def get_session(request: Request) -> AsyncSession:
    """The request's session, opened and committed by app.routing.AppRoute."""
    session: AsyncSession = request.state.session
    return session


SessionDep = Annotated[AsyncSession, Depends(get_session)]
async def settings_dep(request: Request) -> Settings:
    """The settings the app was created with (``create_app``), which the routes read; ``current_scope``
    reads the same, so a test runs the routes on other settings by setting ``app.state.settings``, not
    by overriding this. Services also run outside requests (jobs, the CLI) and read ``get_settings()``."""
    settings: Settings = request.app.state.settings
    return settings


SettingsDep = Annotated[Settings, Depends(settings_dep)]


async def access_claims(token: Annotated[str | None, Depends(oauth2_scheme)], settings: SettingsDep) -> TokenClaims:
    if not token:
        raise Unauthenticated("Send 'Authorization: Bearer <access token>'")
    try:
        return decode_token(settings, token, expected_typ="access")
    except TokenError as exc:
        raise Unauthenticated(str(exc), code="invalid_token") from exc


async def optional_access_claims(token: Annotated[str | None, Depends(oauth2_scheme)],
                           settings: SettingsDep) -> TokenClaims | None:
    if not token:
        return None
    try:
        return decode_token(settings, token, expected_typ="access")
    except TokenError:
        return None


async def current_scope(request: Request) -> Scope:
    """The caller: from the principal cache (app/principals.py) when it knows the token, otherwise
    the token is verified and the principal loaded from the database (and cached).

    One dependency, not three: it reads the bearer token and the settings itself rather than through
    ``Depends(oauth2_scheme)`` and ``SettingsDep``, because FastAPI solves every dependency of every
    request anew (some 15-20 µs each), and this one is on every authenticated request, often twice
    (the router's machine-scope check and the route's ``ScopeDep``). OpenAPI still shows these
    operations as secured: AppRoute reads ``openapi_security`` below."""
    token = await oauth2_scheme(request)
    settings: Settings = request.app.state.settings
    session: AsyncSession = request.state.session
    cache: PrincipalCache | None = getattr(request.app.state, "principal_cache", None)
    scope = cache.get(token, settings) if cache is not None and token else None
    if scope is None:
        generation = cache.generation if cache is not None else 0
        claims = await access_claims(token, settings)
        scope = await auth_service.load_principal(session, claims)
        if cache is not None and token:
            cache.put(token, settings, exp=claims.exp.timestamp(), scope=scope, generation=generation)
    scope_mod.attach(session.sync_session, scope)
    request.state.scope = scope
    return scope


current_scope.openapi_security = [{BEARER_SCHEME: []}]  # type: ignore[attr-defined]
ScopeDep = Annotated[Scope, Depends(current_scope)]


def require_scope(needed: str) -> Any:
    """A route dependency: machine clients need the scope ``needed`` (people are governed by roles)."""
    async def dependency(scope: ScopeDep) -> None:
        policy.require(policy.has_scope(scope, needed), code="scope_missing")

    return Depends(dependency)
