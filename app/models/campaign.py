"""Campaigns (专项整治行动) with their key categories and targets, and the dashboard's views. The
2007 campaign is seeded; a later campaign is data. The counters behind the dashboard are summary
tables kept by triggers (migration 0009)."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from enum import StrEnum
from typing import Annotated

from pydantic import BaseModel, ConfigDict, StrictFloat, model_validator
from pydantic import Field as PField
from sqlalchemy import ARRAY, BigInteger, Boolean, Column, Identity, String, text
from sqlmodel import Field, SQLModel

from app.models.common import Day, RegionCode, RegionOwned, tz_field, utcnow

# a target: a share of producers, samples or cases
Fraction = Annotated[StrictFloat, PField(ge=0, le=1)]


class TargetKey(StrEnum):
    archive_coverage = "archive_coverage"
    conditions_compliance = "conditions_compliance"
    recall_completion = "recall_completion"
    spot_check_pass_rate = "spot_check_pass_rate"  # noqa: S105 - a target key, not a secret
    spot_check_pass_rate_large = "spot_check_pass_rate_large"  # noqa: S105
    unlicensed_resolved = "unlicensed_resolved"
    counterfeit_cases_closed = "counterfeit_cases_closed"
    sweep_coverage = "sweep_coverage"


TARGET_NAMES = {
    TargetKey.archive_coverage: "重点产品生产企业建立质量档案 (archived / known producers)",
    TargetKey.conditions_compliance: "获证企业生产条件符合要求 (compliant at the latest check / licensed)",
    TargetKey.recall_completion: "已售不安全不合格产品召回 (units recalled / units to recall)",
    TargetKey.spot_check_pass_rate: "监督抽查合格率 (passing samples / samples, licensed producers)",
    TargetKey.spot_check_pass_rate_large: "大型企业监督抽查合格率 (the same, large enterprises)",
    TargetKey.unlicensed_resolved: "无证生产基本解决 (unlicensed cases resolved / found)",
    TargetKey.counterfeit_cases_closed: "制假售假大案查结 (counterfeit cases closed / found)",
    TargetKey.sweep_coverage: "拉网清查覆盖 (key producers inspected in the campaign / key producers)",
}

# DOMAIN.md §4 (seed §2): 100% unless said; "basically solved" is read as 95%
DEFAULT_TARGETS = {
    TargetKey.archive_coverage: 1.0, TargetKey.conditions_compliance: 1.0, TargetKey.recall_completion: 1.0,
    TargetKey.spot_check_pass_rate: 0.90, TargetKey.spot_check_pass_rate_large: 0.95,
    TargetKey.unlicensed_resolved: 0.95, TargetKey.counterfeit_cases_closed: 1.0, TargetKey.sweep_coverage: 1.0,
}


class Campaign(SQLModel, table=True):
    __tablename__ = "campaign"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    code: str = Field(max_length=32, unique=True)
    name: str = Field(max_length=200)
    starts_on: date
    ends_on: date | None = None
    key_categories: list[str] = Field(sa_column=Column(ARRAY(String(16)), nullable=False))
    created_by: uuid.UUID | None = None
    created_at: datetime = tz_field(default_factory=utcnow)


class CampaignTarget(SQLModel, table=True):
    __tablename__ = "campaign_target"

    campaign_id: uuid.UUID = Field(foreign_key="campaign.id", primary_key=True)
    region_code: str = Field(max_length=6, primary_key=True)
    key: str = Field(max_length=32, primary_key=True)
    target: float
    set_by: uuid.UUID | None = None
    set_at: datetime = tz_field(default_factory=utcnow)


class CampaignEnterprise(RegionOwned, SQLModel, table=True):
    """An enterprise's current contribution to a campaign's counters (kept by trigger)."""

    __tablename__ = "campaign_enterprise"

    campaign_id: uuid.UUID = Field(foreign_key="campaign.id", primary_key=True)
    enterprise_id: uuid.UUID = Field(primary_key=True)
    region_code: str = Field(max_length=6)
    key_producers: int
    archived: int
    inspected: int
    licensed: int
    compliant: int
    samples: int
    passed: int
    samples_large: int
    passed_large: int


COUNTERS = ("key_producers", "archived", "inspected", "licensed", "compliant", "samples", "passed",
            "samples_large", "passed_large", "recall_sold", "recall_recalled", "unlicensed_cases",
            "unlicensed_resolved", "counterfeit_cases", "counterfeit_closed")


class CampaignDirty(SQLModel, table=True):
    """An enterprise a transaction changed; its campaign contribution (unless each of its marks in the
    transaction is ``facts_only``) and its kept key facts are recomputed when that transaction
    commits (a deferred trigger, migrations 0018, 0020, 0025), and the marks removed."""

    __tablename__ = "campaign_dirty"

    seq: int | None = Field(default=None, sa_column=Column(BigInteger, Identity(always=True), primary_key=True))
    txid: int = Field(sa_column=Column(BigInteger, nullable=False, index=True,
                                       server_default=text("(pg_current_xact_id())::text::bigint")))
    enterprise_id: uuid.UUID
    # marked for its kept key facts alone (migration 0025): the contribution is not recomputed
    facts_only: bool = Field(default=False, sa_column=Column(Boolean, nullable=False, server_default=text("false")))


class CampaignDelta(SQLModel, table=True):
    """Append-only differences of the counters per campaign and county, folded by a job (read in SQL)."""

    __tablename__ = "campaign_delta"

    id: int | None = Field(default=None, sa_column=Column(BigInteger, Identity(), primary_key=True))
    campaign_id: uuid.UUID = Field(foreign_key="campaign.id")
    region_code: str = Field(max_length=6)
    key_producers: int = Field(default=0, sa_type=BigInteger)
    archived: int = Field(default=0, sa_type=BigInteger)
    inspected: int = Field(default=0, sa_type=BigInteger)
    licensed: int = Field(default=0, sa_type=BigInteger)
    compliant: int = Field(default=0, sa_type=BigInteger)
    samples: int = Field(default=0, sa_type=BigInteger)
    passed: int = Field(default=0, sa_type=BigInteger)
    samples_large: int = Field(default=0, sa_type=BigInteger)
    passed_large: int = Field(default=0, sa_type=BigInteger)
    recall_sold: int = Field(default=0, sa_type=BigInteger)
    recall_recalled: int = Field(default=0, sa_type=BigInteger)
    unlicensed_cases: int = Field(default=0, sa_type=BigInteger)
    unlicensed_resolved: int = Field(default=0, sa_type=BigInteger)
    counterfeit_cases: int = Field(default=0, sa_type=BigInteger)
    counterfeit_closed: int = Field(default=0, sa_type=BigInteger)


class CampaignCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    code: str = PField(min_length=2, max_length=32, pattern=r"^[A-Za-z0-9_.-]+$")
    name: str = PField(min_length=1, max_length=200)
    starts_on: Day
    ends_on: Day | None = None
    key_categories: list[str] = PField(min_length=1, max_length=100,
                                       description="category codes; their sub-products are included")
    targets: dict[TargetKey, Fraction] = PField(default_factory=dict,
                                             description="national targets (fractions 0..1); unset keys take "
                                                         "the defaults of DOMAIN.md §4")

    @model_validator(mode="after")
    def _period(self) -> CampaignCreate:
        if self.ends_on is not None and self.ends_on < self.starts_on:
            raise ValueError("ends_on is before starts_on")
        return self


class TargetsSet(BaseModel):
    model_config = ConfigDict(extra="forbid")

    region_code: RegionCode
    targets: dict[TargetKey, Fraction] = PField(min_length=1)


class CampaignPublic(BaseModel):
    id: uuid.UUID
    code: str
    name: str
    starts_on: date
    ends_on: date | None
    key_categories: list[str]
    targets: dict[str, float] = PField(description="the national targets")
    created_at: datetime


class TargetFigure(BaseModel):
    key: TargetKey
    name: str
    figure: float | None = PField(description="numerator / denominator; null when there is nothing to count")
    numerator: int
    denominator: int
    target: float
    target_set_by: str = PField(description="region code of the bureau whose target applies")
    met: bool | None = PField(description="figure >= target; null when there is nothing to count")


class RegionFigures(BaseModel):
    region_code: str
    name: str
    targets: list[TargetFigure]


class Dashboard(RegionFigures):
    campaign_id: uuid.UUID
    generated_at: datetime
    children: list[RegionFigures]


class SweepGap(BaseModel):
    enterprise_id: uuid.UUID
    region_code: str
    name: str
    uscc: str
    licensed: bool
