"""Periodic progress reports (DOMAIN.md §9, seed §6.4): drafts computed from the records for a
bureau's region and a period ending on the 10th, the 20th or the last day of a month (and the final
summary at the campaign's end), edited, submitted to the bureau above, approved or returned."""

from __future__ import annotations

import re
import uuid
from datetime import date, datetime
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, field_validator
from pydantic import Field as PField
from sqlalchemy import Column, UniqueConstraint
from sqlalchemy.dialects.postgresql import JSONB
from sqlmodel import Field, SQLModel

from app.models.common import IsoText, RegionCode, RegionOwned, enum_column_type, tz_field, utcnow


class ReportStatus(StrEnum):
    draft = "draft"
    submitted = "submitted"
    approved = "approved"


class Report(RegionOwned, SQLModel, table=True):
    __tablename__ = "report"
    __table_args__ = (UniqueConstraint("region_code", "period_end", "kind"),)

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    region_code: str = Field(max_length=6)
    kind: str = Field(default="periodic", max_length=16)  # periodic | final
    period_start: date
    period_end: date
    status: ReportStatus = Field(sa_type=enum_column_type(ReportStatus), default=ReportStatus.draft)
    figures: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSONB, nullable=False))
    notes: str | None = None
    due_at: datetime = tz_field()
    submitted_at: datetime | None = tz_field(default=None)
    approved_at: datetime | None = tz_field(default=None)
    returned_comment: str | None = None
    created_by: uuid.UUID | None = None
    version: int = 1
    created_at: datetime = tz_field(default_factory=utcnow)
    updated_at: datetime = tz_field(default_factory=utcnow)


ReportDay = Annotated[date, IsoText, PField(ge=date(2000, 1, 1), le=date(2999, 12, 31),
                                   description="the 10th, the 20th or the last day of a month (12-31: final)")]
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")


class ReportCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    region_code: RegionCode | None = PField(default=None, description="default: your own bureau's region")
    period_end: ReportDay
    kind: Literal["periodic", "final"] = "periodic"


class ReportUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    notes: str = PField(max_length=20000)

    @field_validator("notes")
    @classmethod
    def _printable(cls, v: str) -> str:
        if _CONTROL.search(v):
            raise ValueError("notes hold control characters")
        return v


class ReturnBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    comment: str = PField(min_length=1, max_length=4000)


class ReportPublic(BaseModel):
    id: uuid.UUID
    region_code: str
    kind: str
    period_start: date
    period_end: date
    status: ReportStatus
    figures: dict[str, Any]
    notes: str | None
    due_at: datetime
    submitted_at: datetime | None
    approved_at: datetime | None
    late: bool
    returned_comment: str | None
    version: int
    created_at: datetime
    updated_at: datetime


class BureauReporting(BaseModel):
    region_code: str
    name: str
    report_id: uuid.UUID | None
    status: Literal["missing", "draft", "submitted", "approved"]
    late: bool
    on_time_rate: float | None = PField(description="share of this bureau's due reports submitted on time")
    reports_due: int
