"""Refresh-token families, revoked access tokens and login throttling (all in PostgreSQL, so
several workers and replicas agree)."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlmodel import Field, SQLModel

from app.models.common import tz_field, utcnow


class RefreshToken(SQLModel, table=True):
    __tablename__ = "refresh_token"

    jti: uuid.UUID = Field(primary_key=True)
    family_id: uuid.UUID = Field(index=True)
    user_id: uuid.UUID = Field(foreign_key="app_user.id", index=True, ondelete="CASCADE")
    token_hash: str = Field(max_length=64)
    issued_at: datetime = tz_field(default_factory=utcnow)
    expires_at: datetime = tz_field()
    used_at: datetime | None = tz_field(default=None)
    revoked_at: datetime | None = tz_field(default=None)
    revoked_reason: str | None = Field(default=None, max_length=64)


class RevokedAccessToken(SQLModel, table=True):
    __tablename__ = "revoked_access_token"

    jti: str = Field(primary_key=True, max_length=64)
    expires_at: datetime = tz_field(index=True)


class LoginThrottle(SQLModel, table=True):
    """Failed logins per username as typed, whether or not such a user exists."""

    __tablename__ = "login_throttle"

    username: str = Field(primary_key=True, max_length=128)
    failures: int = 0
    first_failed_at: datetime = tz_field(default_factory=utcnow)
    last_failed_at: datetime = tz_field(default_factory=utcnow)
    locked_until: datetime | None = tz_field(default=None)
