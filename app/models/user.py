"""People (users) and machine clients (service accounts); both belong to a region."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, ClassVar

from pydantic import StrictBool, WithJsonSchema, field_validator
from sqlalchemy import Column, Index, String, text
from sqlalchemy.dialects.postgresql import ARRAY
from sqlmodel import Field, SQLModel
from sqlmodel._compat import SQLModelConfig

from app.models.case import Recipient
from app.models.common import (
    Level,
    PatchModel,
    RegionCode,
    RegionOwned,
    Role,
    Username,
    enum_column_type,
    tz_field,
    unrequire_replay_omits,
    utcnow,
)

SERVICE_SCOPES = (
    "enterprises:read", "inspections:read", "cases:read", "notifications:read", "recalls:read",
    "reports:read", "events:read", "regions:read",
)
# the docs list the scopes; the validator below names the unknown ones in its 422
ScopeName = Annotated[str, WithJsonSchema({"type": "string", "enum": list(SERVICE_SCOPES)})]


def _roles_column() -> Column[list[str]]:
    return Column(ARRAY(String(32)), nullable=False, server_default="{}")


class User(RegionOwned, SQLModel, table=True):
    __tablename__ = "app_user"
    # "Admin" and "admin" are one account: logins and the lock-out match usernames without case.
    __table_args__ = (Index("uq_app_user_username_ci", text("lower(username)"), unique=True),)

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    username: str = Field(max_length=64)
    password_hash: str
    display_name: str = Field(max_length=128)
    region_code: str = Field(max_length=6, foreign_key="region.code", index=True)
    roles: list[str] = Field(sa_column=_roles_column())
    active: bool = True
    version: int = 1
    tokens_valid_after: datetime | None = tz_field(
        default=None, description="access tokens issued (iat) before this are refused")
    created_at: datetime = tz_field(default_factory=utcnow)
    updated_at: datetime = tz_field(default_factory=utcnow)


class UserCreate(SQLModel):
    model_config = SQLModelConfig(extra="forbid", json_schema_extra={"example": {
        "username": "xihu.inspector1", "password": "a-long-passphrase", "display_name": "王芳",
        "region_code": "330106", "roles": ["inspector"]}})

    username: Username
    password: str = Field(min_length=10, max_length=256)
    display_name: str = Field(min_length=1, max_length=128)
    region_code: RegionCode
    roles: list[Role] = Field(min_length=1)
    active: StrictBool = True

    @field_validator("roles")
    @classmethod
    def _unique_roles(cls, v: list[Role]) -> list[Role]:
        return sorted(set(v))  # type: ignore[assignment]


class UserUpdate(PatchModel):
    model_config = SQLModelConfig(extra="forbid", json_schema_extra={"example": {"active": False}})

    password: str | None = Field(default=None, min_length=10, max_length=256)
    display_name: str | None = Field(default=None, min_length=1, max_length=128)
    region_code: RegionCode | None = None
    roles: list[Role] | None = Field(default=None, min_length=1)
    active: StrictBool | None = None

    @field_validator("roles")
    @classmethod
    def _unique_roles(cls, v: list[Role] | None) -> list[Role] | None:
        return sorted(set(v)) if v is not None else None


class UserPublic(SQLModel):
    id: uuid.UUID
    username: str
    display_name: str
    region_code: str
    level: Level
    roles: list[str]
    active: bool
    version: int
    created_at: datetime
    updated_at: datetime


class ServiceAccount(RegionOwned, SQLModel, table=True):
    __tablename__ = "service_account"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    name: str = Field(max_length=128)
    client_id: str = Field(max_length=64, unique=True)
    secret_hash: str
    region_code: str = Field(max_length=6, foreign_key="region.code", index=True)
    scopes: list[str] = Field(sa_column=_roles_column())  # type: ignore[assignment]
    agency: Recipient | None = Field(default=None, sa_type=enum_column_type(Recipient))
    active: bool = True
    version: int = 1
    created_by: uuid.UUID | None = None
    created_at: datetime = tz_field(default_factory=utcnow)
    updated_at: datetime = tz_field(default_factory=utcnow)


class ServiceAccountCreate(SQLModel):
    model_config = SQLModelConfig(extra="forbid", json_schema_extra={"example": {
        "name": "浙江省市场监管局 integration", "region_code": "330000",
        "scopes": ["enterprises:read", "notifications:read"]}})

    name: str = Field(min_length=1, max_length=128)
    region_code: RegionCode
    scopes: list[ScopeName] = Field(min_length=1)
    agency: Recipient | None = Field(default=None, description="the agency this client speaks for: it reads "
                                     "and acknowledges the 通报 addressed to that kind of recipient in its region, "
                                     "and its webhooks receive them")

    @field_validator("scopes")
    @classmethod
    def _known_scopes(cls, v: list[str]) -> list[str]:
        unknown = sorted(set(v) - set(SERVICE_SCOPES))  # type: ignore[assignment]
        if unknown:
            raise ValueError(f"unknown scopes {unknown}; known: {list(SERVICE_SCOPES)}")
        return sorted(set(v))


class ServiceAccountUpdate(PatchModel):
    model_config = SQLModelConfig(extra="forbid", json_schema_extra={"example": {"active": False}})

    name: str | None = Field(default=None, min_length=1, max_length=128)
    scopes: list[ScopeName] | None = Field(default=None, min_length=1)
    active: StrictBool | None = None

    _known_scopes = field_validator("scopes")(ServiceAccountCreate._known_scopes.__func__)  # type: ignore[attr-defined]


class ServiceAccountPublic(SQLModel):
    id: uuid.UUID
    name: str
    client_id: str
    region_code: str
    level: Level
    scopes: list[str]
    agency: Recipient | None = None
    active: bool
    version: int
    created_at: datetime


class ServiceAccountCreated(ServiceAccountPublic):
    model_config = SQLModelConfig(json_schema_extra=unrequire_replay_omits)  # type: ignore[typeddict-item]
    replay_omits: ClassVar[tuple[str, ...]] = ("client_secret",)

    client_secret: str = Field(description="Shown once; only its hash is stored.")
