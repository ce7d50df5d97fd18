"""Region rectification plans (DOMAIN.md §8), supervision (督察) and acceptance (验收) (§9)."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, StrictFloat, model_validator
from pydantic import Field as PField
from sqlalchemy import Column, UniqueConstraint
from sqlalchemy.dialects.postgresql import JSONB
from sqlmodel import Field, SQLModel

from app.models.campaign import Fraction, TargetKey
from app.models.common import Day, JsonInt, RegionCode, RegionOwned, StrictPatch, tz_field, utcnow


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Person(Strict):
    name: str = PField(min_length=1, max_length=100)
    position: str = PField(min_length=1, max_length=200)


class RectificationPlan(RegionOwned, SQLModel, table=True):
    __tablename__ = "rectification_plan"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    region_code: str = Field(max_length=6)
    campaign_id: uuid.UUID = Field(foreign_key="campaign.id")
    title: str = Field(max_length=200)
    lead_government: str = Field(max_length=200)
    responsible: dict[str, Any] = Field(sa_column=Column(JSONB, nullable=False))
    reported_to_government_on: date
    targets: list[dict[str, Any]] = Field(default_factory=list, sa_column=Column(JSONB, nullable=False))
    bureaus: list[str] = Field(default_factory=list, sa_column=Column(JSONB, nullable=False))
    deadline: date
    status: str = Field(default="active", max_length=16)
    progress_notes: list[dict[str, Any]] = Field(default_factory=list, sa_column=Column(JSONB, nullable=False))
    created_by: uuid.UUID | None = None
    version: int = 1
    created_at: datetime = tz_field(default_factory=utcnow)
    updated_at: datetime = tz_field(default_factory=utcnow)


class PlanTarget(Strict):
    key: TargetKey
    target: Fraction
    deadline: Day


class PlanCreate(Strict):
    region_code: RegionCode = PField(description="a designated key region inside your jurisdiction")
    campaign_id: uuid.UUID | None = PField(default=None, description="default: the 2007 campaign")
    title: str = PField(min_length=1, max_length=200)
    lead_government: str = PField(min_length=1, max_length=200, description="the government leading it")
    responsible: Person
    reported_to_government_on: Day
    targets: list[PlanTarget] = PField(min_length=1, max_length=8)
    bureaus: list[RegionCode] = PField(default_factory=list, max_length=200,
                                       description="the city and county bureaus organised under it")
    deadline: Day

    @model_validator(mode="after")
    def _dates(self) -> PlanCreate:
        if any(t.deadline > self.deadline for t in self.targets):
            raise ValueError("a target's deadline lies after the plan's deadline")
        if len({t.key for t in self.targets}) != len(self.targets):
            raise ValueError("a target key appears twice")
        return self


class PlanUpdate(StrictPatch):
    status: Literal["active", "completed", "cancelled"] | None = None
    deadline: Day | None = None
    responsible: Person | None = None


class ProgressNote(Strict):
    note: str = PField(min_length=1, max_length=4000)
    as_of: Day


class PlanTargetProgress(BaseModel):
    key: TargetKey
    target: float
    deadline: date
    figure: float | None
    numerator: int
    denominator: int
    state: Literal["met", "on_track", "behind", "overdue"]


class PlanPublic(BaseModel):
    id: uuid.UUID
    region_code: str
    campaign_id: uuid.UUID
    title: str
    lead_government: str
    responsible: dict[str, Any]
    reported_to_government_on: date
    bureaus: list[str]
    deadline: date
    status: str
    progress: list[PlanTargetProgress]
    progress_notes: list[dict[str, Any]]
    version: int
    created_at: datetime
    updated_at: datetime


class Supervision(RegionOwned, SQLModel, table=True):
    __tablename__ = "supervision"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    region_code: str = Field(max_length=6, description="the supervised bureau")
    supervising_bureau: str = Field(max_length=6)
    subject: str = Field(max_length=200)
    findings: list[str] = Field(default_factory=list, sa_column=Column(JSONB, nullable=False))
    correction_deadline: date
    accountable: list[dict[str, Any]] = Field(default_factory=list, sa_column=Column(JSONB, nullable=False))
    status: str = Field(default="open", max_length=16)
    correction_report: str | None = None
    corrected_at: datetime | None = tz_field(default=None)
    closed_at: datetime | None = tz_field(default=None)
    created_by: uuid.UUID | None = None
    version: int = 1
    created_at: datetime = tz_field(default_factory=utcnow)
    updated_at: datetime = tz_field(default_factory=utcnow)


class Accountable(Person):
    measure: str = PField(min_length=1, max_length=500, description="the accountability measure (责任追究)")


class SupervisionCreate(Strict):
    region_code: RegionCode = PField(description="the bureau supervised: below yours")
    subject: str = PField(min_length=1, max_length=200)
    findings: list[str] = PField(min_length=1, max_length=100)
    correction_deadline: Day
    accountable: list[Accountable] = PField(default_factory=list, max_length=50)


class CorrectionBody(Strict):
    report: str = PField(min_length=1, max_length=10000)


class SupervisionPublic(BaseModel):
    id: uuid.UUID
    region_code: str
    supervising_bureau: str
    subject: str
    findings: list[str]
    correction_deadline: date
    accountable: list[dict[str, Any]]
    status: str
    overdue: bool
    correction_report: str | None
    corrected_at: datetime | None
    closed_at: datetime | None
    version: int
    created_at: datetime


class AcceptanceVerdict(StrEnum):
    passed = "passed"
    conditional = "conditional"
    failed = "failed"


class Acceptance(RegionOwned, SQLModel, table=True):
    __tablename__ = "acceptance"
    __table_args__ = (UniqueConstraint("campaign_id", "region_code"),)

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    campaign_id: uuid.UUID = Field(foreign_key="campaign.id")
    region_code: str = Field(max_length=6, description="the city accepted")
    accepting_bureau: str = Field(max_length=6)
    verdict: str = Field(max_length=16)
    score: float | None = None
    findings: str
    spot_checks: dict[str, Any] | None = Field(default=None, sa_column=Column(JSONB, nullable=True))
    figures: list[dict[str, Any]] = Field(default_factory=list, sa_column=Column(JSONB, nullable=False))
    accepted_on: date
    created_by: uuid.UUID | None = None
    created_at: datetime = tz_field(default_factory=utcnow)


class SpotCheckSummary(Strict):
    samples: JsonInt = PField(ge=0)
    passed: JsonInt = PField(ge=0)

    @model_validator(mode="after")
    def _fits(self) -> SpotCheckSummary:
        if self.passed > self.samples:
            raise ValueError("passed cannot exceed samples")
        return self


class AcceptanceCreate(Strict):
    campaign_id: uuid.UUID | None = PField(default=None, description="default: the 2007 campaign")
    region_code: RegionCode = PField(description="a city of your province")
    verdict: AcceptanceVerdict
    score: StrictFloat | None = PField(default=None, ge=0, le=100)
    findings: str = PField(min_length=1, max_length=10000)
    spot_checks: SpotCheckSummary | None = PField(default=None, description="the acceptance's own spot checks")
    accepted_on: Day


class AcceptancePublic(BaseModel):
    id: uuid.UUID
    campaign_id: uuid.UUID
    region_code: str
    accepting_bureau: str
    verdict: str
    score: float | None
    findings: str
    spot_checks: dict[str, Any] | None
    figures: list[dict[str, Any]]
    accepted_on: date
    created_at: datetime
