"""Password hashing and the ONE JWT encode/decode wrapper of the service."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from jose import JWTError, jwt

from app.config import Settings

ALGORITHM = "HS256"  # pinned: the header's alg is never trusted
TokenType = Literal["access", "refresh"]
REQUIRED_CLAIMS = ("exp", "iat", "iss", "aud", "sub", "jti")

_hasher = PasswordHasher()
# Verifying against this when the username is unknown keeps the timing of both cases alike.
_DUMMY_HASH = _hasher.hash(secrets.token_urlsafe(16))
_DUMMY_SECRET = "sha256$" + "0" * 64


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password: str, password_hash: str | None) -> bool:
    try:
        return _hasher.verify(password_hash or _DUMMY_HASH, password) and password_hash is not None
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def hash_secret(secret: str) -> str:
    """Machine-client secrets are 256 random bits: a plain SHA-256 is enough and costs microseconds."""
    return "sha256$" + hashlib.sha256(secret.encode()).hexdigest()


def verify_secret(secret: str, stored: str | None) -> bool:
    if stored is None or not stored.startswith("sha256$"):
        hmac.compare_digest(hash_secret(secret), _DUMMY_SECRET)  # same work for an unknown client
        return stored is not None and verify_password(secret, stored)
    return hmac.compare_digest(hash_secret(secret), stored)


def sha256_hex(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def new_secret(nbytes: int = 32) -> str:
    return secrets.token_urlsafe(nbytes)


class TokenError(Exception):
    """Any reason a token is not acceptable; the message is safe to show."""


@dataclass(frozen=True)
class TokenClaims:
    sub: str
    jti: str
    typ: TokenType
    ptype: str
    exp: datetime
    iat: datetime
    family: str | None
    raw: dict[str, Any]


def encode_token(
    settings: Settings,
    *,
    subject: str,
    typ: TokenType,
    principal_type: str,
    ttl_seconds: int,
    jti: str | None = None,
    family: str | None = None,
    now: datetime | None = None,
) -> tuple[str, TokenClaims]:
    now = now or datetime.now(UTC)
    claims: dict[str, Any] = {
        "iss": settings.jwt_issuer,
        "aud": settings.jwt_audience,
        "sub": subject,
        "iat": round(now.timestamp(), 3),  # ms: a password change cuts off tokens issued before it
        "nbf": int(now.timestamp()),
        "exp": int((now + timedelta(seconds=ttl_seconds)).timestamp()),
        "jti": jti or str(uuid.uuid4()),
        "typ": typ,
        "ptype": principal_type,
    }
    if family:
        claims["fam"] = family
    kid = settings.jwt_active_kid
    token = jwt.encode(claims, settings.key_set[kid], algorithm=ALGORITHM, headers={"kid": kid})
    return token, _claims(claims)


def decode_token(settings: Settings, token: str, *, expected_typ: TokenType) -> TokenClaims:
    """Verify signature (pinned algorithm, kid from the local key set only), exp/nbf/iat/iss/aud,
    the presence of every required claim, and the token type."""
    try:
        header = jwt.get_unverified_header(token)
    except JWTError as exc:
        raise TokenError("malformed token") from exc
    if header.get("alg") != ALGORITHM:
        raise TokenError("token algorithm not accepted")
    kid = header.get("kid")
    key = settings.key_set.get(kid) if isinstance(kid, str) else None
    if key is None:
        raise TokenError("unknown signing key")
    try:
        claims = jwt.decode(
            token,
            key,
            algorithms=[ALGORITHM],
            audience=settings.jwt_audience,
            issuer=settings.jwt_issuer,
            options={f"require_{c}": True for c in REQUIRED_CLAIMS} | {"leeway": 5},
        )
    except JWTError as exc:
        raise TokenError(f"invalid token: {exc}") from exc
    if claims.get("typ") != expected_typ:
        raise TokenError(f"expected a {expected_typ} token")
    if not isinstance(claims.get("sub"), str) or not isinstance(claims.get("jti"), str):
        raise TokenError("invalid token claims")
    try:
        return _claims(claims)
    except (TypeError, ValueError, OverflowError, OSError) as exc:
        raise TokenError("invalid token claims") from exc


def _claims(c: dict[str, Any]) -> TokenClaims:
    return TokenClaims(
        sub=c["sub"], jti=c["jti"], typ=c["typ"], ptype=str(c.get("ptype", "user")),
        exp=datetime.fromtimestamp(c["exp"], UTC), iat=datetime.fromtimestamp(c["iat"], UTC),
        family=c.get("fam"), raw=c,
    )
