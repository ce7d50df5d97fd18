"""Focus lists (DOMAIN.md §3): key-region designations and the indicator figures behind them, and the
manual key-enterprise flag as the API shows it."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from enum import StrEnum
from typing import Any

from pydantic import field_validator
from sqlalchemy import Column, String, UniqueConstraint
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlmodel import Field, SQLModel
from sqlmodel._compat import SQLModelConfig

from app.models.common import Level, RegionCode, RegionOwned, enum_column_type, tz_field, utcnow
from app.models.enterprise import KeyCriterion


class KeyRegionCriterion(StrEnum):
    """The three criteria of a key region (seed §1 重点地区)."""

    unlicensed_production = "unlicensed_production"  # (1) unlicensed production is prominent
    low_pass_rate = "low_pass_rate"  # noqa: S105 - (2) licensed producers' spot-check pass rate is low
    counterfeiting = "counterfeiting"  # (3) counterfeiting is serious


class KeyRegion(RegionOwned, SQLModel, table=True):
    """A bureau's designation of a key region. National and provincial designations of the same
    region are kept side by side (one per designating bureau)."""

    __tablename__ = "key_region"
    __table_args__ = (UniqueConstraint("region_code", "designated_by"),)

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    region_code: str = Field(max_length=6, foreign_key="region.code")
    criteria: list[str] = Field(sa_column=Column(ARRAY(String(32)), nullable=False))
    reason: str = Field(max_length=1000)
    designated_by: str = Field(max_length=6, description="region code of the designating bureau")
    designated_by_level: Level = Field(sa_type=enum_column_type(Level))
    designated_by_user: uuid.UUID | None = None
    indicators: list[dict[str, Any]] = Field(sa_column=Column(JSONB, nullable=False, server_default="[]"))
    designated_at: datetime = tz_field(default_factory=utcnow)


class KeyRegionCreate(SQLModel):
    model_config = SQLModelConfig(extra="forbid", json_schema_extra={"example": {
        "region_code": "330282", "criteria": ["unlicensed_production", "counterfeiting"],
        "reason": "慈溪市无证生产电线电缆企业集中，2026 年查处假冒案件 7 起"}})

    region_code: RegionCode
    criteria: list[KeyRegionCriterion] = Field(min_length=1, max_length=3)
    reason: str = Field(min_length=2, max_length=1000)

    @field_validator("criteria")
    @classmethod
    def _unique(cls, v: list[KeyRegionCriterion]) -> list[KeyRegionCriterion]:
        return sorted(set(v), key=list(KeyRegionCriterion).index)


class Indicator(SQLModel):
    """One criterion's figure for a region: ``figure`` = numerator / denominator when there is a
    denominator (null when it is 0), else the count itself."""

    criterion: KeyRegionCriterion
    name: str
    figure: float | None
    numerator: int
    denominator: int | None


class PlanSummary(SQLModel):
    id: uuid.UUID
    title: str
    status: str
    deadline: date
    targets_met: int
    targets: int
    behind_or_overdue: list[str] = Field(description="keys of targets behind their pace or past their deadline")


class KeyRegionPublic(SQLModel):
    id: uuid.UUID
    region_code: str
    criteria: list[KeyRegionCriterion]
    reason: str
    designated_by: str
    designated_by_level: Level
    designated_by_user: uuid.UUID | None
    indicators: list[Indicator] = Field(description="the figures when it was designated")
    designated_at: datetime
    plans: list[PlanSummary] = Field(default_factory=list, description="the region's rectification plans and "
                                     "how many of their targets are met now")



class RegionIndicators(SQLModel):
    region_code: str
    name: str
    level: Level
    designated: bool
    designations: list[KeyRegionPublic]
    indicators: list[Indicator]


class KeyRegionOverview(RegionIndicators):
    since: date = Field(description="spot-check samples and cases counted from this date")
    children: list[RegionIndicators]


class ManualKeyFlagPublic(SQLModel):
    enterprise_id: uuid.UUID
    criterion: KeyCriterion
    reason: str
    source: str = "manual"
    set_by: uuid.UUID | None
    set_at: datetime
