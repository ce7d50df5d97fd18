"""Token grants, refresh rotation with reuse detection, logout, lock-out, principal loading."""

from __future__ import annotations

import asyncio
import math
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, func, text, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from app.config import Settings
from app.errors import RateLimited, Unauthenticated
from app.models.auth import LoginThrottle, RefreshToken, RevokedAccessToken
from app.models.common import utcnow
from app.models.user import ServiceAccount, User
from app.scope import Scope
from app.security import (
    TokenClaims,
    TokenError,
    decode_token,
    encode_token,
    sha256_hex,
    verify_password,
    verify_secret,
)
from app.services import audit

INVALID_LOGIN = "Invalid username or password"


@dataclass
class TokenPair:
    access_token: str
    expires_in: int
    refresh_token: str | None
    scope: str


async def password_grant(session: AsyncSession, settings: Settings, *, username: str, password: str) -> TokenPair:
    key = username.strip().lower()[:128]
    now = utcnow()
    throttle = await _throttle_row(session, key)
    if throttle is not None:
        _refuse_if_locked(throttle.locked_until, now)
        _refuse_if_too_soon(throttle, settings, now)
    # Count the attempt as failed *before* checking the password and commit at once: concurrent guesses
    # all see each other (at most login_lockout_after passwords are ever checked in a window), and no
    # row lock or pooled connection is held while the deliberately slow hash runs.
    failures, locked_until = await _count_attempt(session, settings, key, now)
    await session.commit()
    if failures > settings.login_lockout_after:
        _refuse_if_locked(locked_until, now)

    user = (await session.execute(
        select(User).where(func.lower(User.username) == key).execution_options(unscoped=True)
    )).scalar_one_or_none()
    ok = await asyncio.to_thread(verify_password, password, user.password_hash if user else None)
    if not ok or user is None or not user.active:
        raise Unauthenticated(INVALID_LOGIN, code="invalid_credentials")
    await session.execute(delete(LoginThrottle).where(col(LoginThrottle.username) == key))
    return await _issue_user_tokens(session, settings, user, family=uuid.uuid4())


def _refuse_if_locked(locked_until: datetime | None, now: datetime) -> None:
    if locked_until is not None and locked_until > now:
        retry = int((locked_until - now).total_seconds()) + 1
        raise RateLimited("Too many failed logins; try again later", code="login_locked",
                          headers={"Retry-After": str(retry)})


def _refuse_if_too_soon(throttle: LoginThrottle, settings: Settings, now: datetime) -> None:
    """The slowdown: after a few failures each further attempt must wait longer (doubling), answered
    at once with 429 and Retry-After rather than by holding the request open."""
    if throttle.failures < settings.login_slowdown_after:
        return
    if throttle.last_failed_at < now - timedelta(seconds=settings.login_failure_window_seconds):
        return
    extra = throttle.failures - settings.login_slowdown_after
    wait = min(settings.login_slowdown_base_seconds * 2**extra, settings.login_slowdown_max_seconds)
    ready_at = throttle.last_failed_at + timedelta(seconds=wait)
    if ready_at > now:
        raise RateLimited("Too many failed logins; wait before the next attempt", code="login_slowed",
                          headers={"Retry-After": str(math.ceil((ready_at - now).total_seconds()))})


async def _throttle_row(session: AsyncSession, key: str) -> LoginThrottle | None:
    return (await session.execute(
        select(LoginThrottle).where(LoginThrottle.username == key)
    )).scalar_one_or_none()


_RECORD_FAILURE = text("""
INSERT INTO login_throttle AS t (username, failures, first_failed_at, last_failed_at, locked_until)
VALUES (:key, 1, :now, :now, CASE WHEN 1 >= :lock_after THEN CAST(:lock_until AS timestamptz) END)
ON CONFLICT (username) DO UPDATE SET
  failures = CASE WHEN t.last_failed_at < :window_start THEN 1 ELSE t.failures + 1 END,
  first_failed_at = CASE WHEN t.last_failed_at < :window_start THEN :now ELSE t.first_failed_at END,
  last_failed_at = :now,
  locked_until = CASE WHEN (CASE WHEN t.last_failed_at < :window_start THEN 1 ELSE t.failures + 1 END)
                          >= :lock_after THEN CAST(:lock_until AS timestamptz) END
RETURNING failures, locked_until
""")


async def _count_attempt(session: AsyncSession, settings: Settings, key: str,
                         now: datetime) -> tuple[int, datetime | None]:
    """One atomic upsert, so concurrent attempts on several workers all count."""
    row = (await session.execute(_RECORD_FAILURE, {
        "key": key, "now": now, "lock_after": settings.login_lockout_after,
        "lock_until": now + timedelta(seconds=settings.login_lockout_seconds),
        "window_start": now - timedelta(seconds=settings.login_failure_window_seconds),
    })).one()
    return int(row[0]), row[1]


async def _issue_user_tokens(session: AsyncSession, settings: Settings, user: User, *, family: uuid.UUID) -> TokenPair:
    access, _ = encode_token(settings, subject=str(user.id), typ="access", principal_type="user",
                             ttl_seconds=settings.access_token_ttl_seconds)
    jti = uuid.uuid4()
    refresh, claims = encode_token(settings, subject=str(user.id), typ="refresh", principal_type="user",
                                   ttl_seconds=settings.refresh_token_ttl_seconds, jti=str(jti),
                                   family=str(family))
    session.add(RefreshToken(jti=jti, family_id=family, user_id=user.id, token_hash=sha256_hex(refresh),
                             issued_at=claims.iat, expires_at=claims.exp))
    return TokenPair(access, settings.access_token_ttl_seconds, refresh, " ".join(sorted(user.roles)))


async def client_credentials_grant(session: AsyncSession, settings: Settings, *, client_id: str,
                                   client_secret: str) -> TokenPair:
    sa = (await session.execute(
        select(ServiceAccount).where(ServiceAccount.client_id == client_id).execution_options(unscoped=True)
    )).scalar_one_or_none()
    if not verify_secret(client_secret, sa.secret_hash if sa else None) or sa is None or not sa.active:
        raise Unauthenticated("Invalid client credentials", code="invalid_client")
    access, _ = encode_token(settings, subject=str(sa.id), typ="access", principal_type="service",
                             ttl_seconds=settings.access_token_ttl_seconds)
    return TokenPair(access, settings.access_token_ttl_seconds, None, " ".join(sorted(sa.scopes)))


async def refresh(session: AsyncSession, settings: Settings, *, token: str) -> TokenPair:
    claims = _refresh_claims(settings, token)
    row = (await session.execute(
        select(RefreshToken).where(RefreshToken.jti == uuid.UUID(claims.jti))
    )).scalar_one_or_none()
    if row is None or row.token_hash != sha256_hex(token):
        raise Unauthenticated("Unknown refresh token", code="invalid_token")
    # Lock the whole family: a concurrent rotation must finish (or wait) before reuse detection
    # revokes the family, so no token minted meanwhile escapes the revocation.
    await session.execute(select(RefreshToken.jti).where(RefreshToken.family_id == row.family_id).with_for_update())
    await session.refresh(row)
    if row.revoked_at is not None:
        raise Unauthenticated("Refresh token revoked", code="invalid_token")
    if row.used_at is not None:
        # A rotated token came back: someone holds a copy. Retire the whole family, keep that retirement.
        await _revoke_family(session, row.family_id, reason="reuse_detected")
        owner_region = (await session.execute(
            select(User.region_code).where(User.id == row.user_id).execution_options(unscoped=True))).scalar()
        await audit.record(session, action="auth.refresh_reuse_detected", entity_type="user",
                           entity_id=str(row.user_id), region_code=owner_region,
                           after={"family": str(row.family_id)}, actor_type="user", actor_name=None)
        raise Unauthenticated("Refresh token was already used; every refresh token of this login is revoked",
                              code="refresh_token_reused", commit=True)
    user = (await session.execute(
        select(User).where(User.id == row.user_id).execution_options(unscoped=True)
    )).scalar_one()
    if not user.active or (user.tokens_valid_after is not None and row.issued_at < user.tokens_valid_after):
        raise Unauthenticated("Refresh token no longer valid", code="invalid_token")
    row.used_at = utcnow()
    return await _issue_user_tokens(session, settings, user, family=row.family_id)


async def logout(session: AsyncSession, settings: Settings, *, token: str, access_claims: TokenClaims | None) -> None:
    claims = _refresh_claims(settings, token)
    row = (await session.execute(
        select(RefreshToken).where(RefreshToken.jti == uuid.UUID(claims.jti))
    )).scalar_one_or_none()
    if row is None or row.token_hash != sha256_hex(token):
        raise Unauthenticated("Unknown refresh token", code="invalid_token")
    await _revoke_family(session, row.family_id, reason="logout")
    if access_claims is not None:
        await session.execute(pg_insert(RevokedAccessToken).values(
            jti=access_claims.jti, expires_at=access_claims.exp).on_conflict_do_nothing())


def _refresh_claims(settings: Settings, token: str) -> TokenClaims:
    try:
        claims = decode_token(settings, token, expected_typ="refresh")
        uuid.UUID(claims.jti)
    except (TokenError, ValueError) as exc:
        raise Unauthenticated(str(exc), code="invalid_token") from exc
    return claims


async def _revoke_family(session: AsyncSession, family: uuid.UUID, *, reason: str) -> None:
    await session.execute(
        update(RefreshToken).where(col(RefreshToken.family_id) == family, col(RefreshToken.revoked_at).is_(None))
        .values(revoked_at=utcnow(), revoked_reason=reason)
    )


async def revoke_user_tokens(session: AsyncSession, user_id: uuid.UUID, *, reason: str) -> None:
    await session.execute(
        update(RefreshToken).where(col(RefreshToken.user_id) == user_id, col(RefreshToken.revoked_at).is_(None))
        .values(revoked_at=utcnow(), revoked_reason=reason)
    )


async def load_principal(session: AsyncSession, claims: TokenClaims) -> Scope:
    """Roles and region come from the database on every request: a token may outlive a transfer."""
    try:
        pid = uuid.UUID(claims.sub)
    except ValueError as exc:
        raise Unauthenticated("invalid token subject", code="invalid_token") from exc
    revoked = select(RevokedAccessToken.jti).where(RevokedAccessToken.jti == claims.jti).exists()
    if claims.ptype == "service":
        row = (await session.execute(
            select(ServiceAccount, revoked).where(ServiceAccount.id == pid).execution_options(unscoped=True)
        )).first()
        if row is None or row[1] or not row[0].active:
            raise Unauthenticated("Token no longer valid", code="invalid_token")
        sa: ServiceAccount = row[0]
        return Scope(principal_id=sa.id, principal_type="service", username=sa.client_id,
                     region_code=sa.region_code, scopes=frozenset(sa.scopes),
                     agency=sa.agency.value if sa.agency else None)
    urow = (await session.execute(
        select(User, revoked).where(User.id == pid).execution_options(unscoped=True)
    )).first()
    if urow is None or urow[1] or not urow[0].active:
        raise Unauthenticated("Token no longer valid", code="invalid_token")
    user: User = urow[0]
    if user.tokens_valid_after is not None and claims.iat < user.tokens_valid_after:
        raise Unauthenticated("Token issued before the password was changed", code="invalid_token")
    return Scope(principal_id=user.id, principal_type="user", username=user.username,
                 region_code=user.region_code, roles=frozenset(user.roles))

