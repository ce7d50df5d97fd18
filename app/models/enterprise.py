"""Producers (生产企业), their production licences and manual key-enterprise flags."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from enum import StrEnum
from typing import Annotated, Any

from pydantic import StringConstraints, field_validator
from sqlalchemy import Column, String
from sqlalchemy.dialects.postgresql import ARRAY
from sqlmodel import Field, SQLModel
from sqlmodel._compat import SQLModelConfig

from app.models.common import Level, PatchModel, RegionCode, RegionOwned, enum_column_type, tz_field, utcnow


class EnterpriseSize(StrEnum):
    large = "large"
    medium = "medium"
    small = "small"


class KeyCriterion(StrEnum):
    """DOMAIN.md §3, the four criteria of a key enterprise."""

    unlicensed = "unlicensed"  # (1) producing without a licence
    lowered_conditions = "lowered_conditions"  # (2) conditions lowered after licensing
    spot_check_problems = "spot_check_problems"  # (3) national/local spot-check problems, last two years
    past_violations = "past_violations"  # (4) violations, complaints, media exposure


class LicenseStatus(StrEnum):
    valid = "valid"
    suspended = "suspended"
    revoked = "revoked"
    expired = "expired"
    cancelled = "cancelled"


USCCStr = Annotated[str, StringConstraints(strip_whitespace=True, to_upper=True, min_length=18, max_length=18)]


class Enterprise(RegionOwned, SQLModel, table=True):
    __tablename__ = "enterprise"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    uscc: str = Field(max_length=18, unique=True)
    uscc_check_override: str | None = Field(default=None, max_length=500)
    name: str = Field(max_length=200)
    legal_representative: str | None = Field(default=None, max_length=100)
    address: str | None = Field(default=None, max_length=300)
    region_code: str = Field(max_length=6, foreign_key="region.code")
    size: EnterpriseSize = Field(sa_type=enum_column_type(EnterpriseSize))
    category_codes: list[str] = Field(sa_column=Column(ARRAY(String(16)), nullable=False, server_default="{}"))
    licensed: bool = False
    version: int = 1
    created_at: datetime = tz_field(default_factory=utcnow)
    updated_at: datetime = tz_field(default_factory=utcnow)


class EnterpriseCreate(SQLModel):
    model_config = SQLModelConfig(extra="forbid", json_schema_extra={"example": {
        "uscc": "91330106MA2B0XK79M", "name": "杭州西湖电线电缆有限公司", "legal_representative": "张伟",
        "address": "杭州市西湖区文三路 100 号", "region_code": "330106", "size": "medium",
        "category_codes": ["05", "0501"]}})

    id: uuid.UUID | None = Field(default=None, description="client-supplied id (offline apps)")
    uscc: USCCStr = Field(description="unified social credit code, GB 32100 (check character validated)")
    uscc_check_override: str | None = Field(
        default=None, min_length=5, max_length=500,
        description="provincial admins only: the reason to accept an early pilot-area code whose check "
                    "character does not verify")
    name: str = Field(min_length=2, max_length=200)
    legal_representative: str | None = Field(default=None, max_length=100)
    address: str | None = Field(default=None, max_length=300)
    region_code: RegionCode
    size: EnterpriseSize = EnterpriseSize.small
    category_codes: list[str] = Field(default_factory=list, max_length=50)

    @field_validator("category_codes")
    @classmethod
    def _unique(cls, v: list[str]) -> list[str]:
        return sorted(set(v))


class EnterpriseUpdate(PatchModel):
    model_config = SQLModelConfig(extra="forbid", json_schema_extra={"example": {"size": "large"}})

    name: str | None = Field(default=None, min_length=2, max_length=200)
    legal_representative: str | None = Field(default=None, max_length=100)
    address: str | None = Field(default=None, max_length=300)
    size: EnterpriseSize | None = None
    category_codes: list[str] | None = Field(default=None, max_length=50)


class KeyFlagPublic(SQLModel):
    criterion: KeyCriterion
    reason: str
    source: str  # auto | manual


class EnterprisePublic(SQLModel):
    id: uuid.UUID
    uscc: str
    name: str
    legal_representative: str | None
    address: str | None
    region_code: str
    size: EnterpriseSize
    category_codes: list[str]
    licensed: bool
    key_flags: list[KeyFlagPublic] = []
    version: int
    created_at: datetime
    updated_at: datetime


class EnterpriseKeyFlag(RegionOwned, SQLModel, table=True):
    """A manual flag (set or cleared) a bureau put on an enterprise, with its reason."""

    __tablename__ = "enterprise_key_flag"

    enterprise_id: uuid.UUID = Field(foreign_key="enterprise.id", primary_key=True, ondelete="CASCADE")
    criterion: KeyCriterion = Field(sa_type=enum_column_type(KeyCriterion), primary_key=True)
    region_code: str = Field(max_length=6)
    reason: str = Field(max_length=500)
    set_by: uuid.UUID | None = None
    set_at: datetime = tz_field(default_factory=utcnow)


class KeyFlagCreate(SQLModel):
    model_config = SQLModelConfig(extra="forbid", json_schema_extra={"example": {
        "criterion": "past_violations", "reason": "媒体曝光：2026-10 省电视台报道电缆截面不足"}})

    criterion: KeyCriterion
    reason: str = Field(min_length=2, max_length=500)


class License(RegionOwned, SQLModel, table=True):
    __tablename__ = "license"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    number: str = Field(max_length=32, unique=True)
    enterprise_id: uuid.UUID = Field(foreign_key="enterprise.id", index=True)
    region_code: str = Field(max_length=6, description="the enterprise's region (jurisdiction scoping)")
    category_code: str = Field(max_length=16, foreign_key="product_category.code")
    issued_on: date
    expires_on: date
    issuer_level: Level = Field(sa_type=enum_column_type(Level))
    status: LicenseStatus = Field(sa_type=enum_column_type(LicenseStatus), default=LicenseStatus.valid)
    version: int = 1
    created_at: datetime = tz_field(default_factory=utcnow)
    updated_at: datetime = tz_field(default_factory=utcnow)


class LicenseCreate(SQLModel):
    model_config = SQLModelConfig(extra="forbid", json_schema_extra={"example": {
        "number": "(浙)XK05-001-00018", "enterprise_id": "6f1c2d9e-2b1a-4c55-9a59-7f0c1b1a2d3e",
        "category_code": "05", "issued_on": "2025-03-01", "expires_on": "2030-02-28",
        "issuer_level": "provincial"}})

    id: uuid.UUID | None = None
    number: str = Field(min_length=14, max_length=32)
    enterprise_id: uuid.UUID
    category_code: str = Field(max_length=16)
    issued_on: date
    expires_on: date
    issuer_level: Level

    @field_validator("issuer_level")
    @classmethod
    def _issuer(cls, v: Level) -> Level:
        if v not in (Level.national, Level.provincial):
            raise ValueError("production licences are issued by national or provincial bureaus")
        return v


class LicensePublic(SQLModel):
    id: uuid.UUID
    number: str
    enterprise_id: uuid.UUID
    region_code: str
    category_code: str
    issued_on: date
    expires_on: date
    issuer_level: Level
    status: LicenseStatus
    version: int
    created_at: datetime


def public_dict(obj: Any, fields: type[SQLModel]) -> dict[str, Any]:
    return {k: getattr(obj, k) for k in fields.model_fields if hasattr(obj, k)}
