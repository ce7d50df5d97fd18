"""Penalty cases (立案 → 结案). This issue stores the case row an inspection opens; the workflow
table comes with the cases issue."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum

from sqlmodel import Field, SQLModel

from app.models.common import RegionOwned, enum_column_type, tz_field, utcnow


class CaseKind(StrEnum):
    unlicensed_production = "unlicensed_production"
    nonconforming_products = "nonconforming_products"
    lowered_conditions = "lowered_conditions"
    irregular_production = "irregular_production"
    unrecalled_hazard = "unrecalled_hazard"
    counterfeit = "counterfeit"
    other = "other"


class CaseStatus(StrEnum):
    registered = "registered"
    investigating = "investigating"
    pending_approval = "pending_approval"
    decided = "decided"
    closed = "closed"
    transferred = "transferred"


class PenaltyCase(RegionOwned, SQLModel, table=True):
    __tablename__ = "penalty_case"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    enterprise_id: uuid.UUID = Field(foreign_key="enterprise.id", index=True)
    inspection_id: uuid.UUID | None = Field(default=None, foreign_key="inspection.id")
    region_code: str = Field(max_length=6)
    kind: CaseKind = Field(sa_type=enum_column_type(CaseKind))
    status: CaseStatus = Field(sa_type=enum_column_type(CaseStatus), default=CaseStatus.registered)
    possibly_criminal: bool = False
    created_by: uuid.UUID | None = None
    version: int = 1
    created_at: datetime = tz_field(default_factory=utcnow)
    updated_at: datetime = tz_field(default_factory=utcnow)


class CasePublic(SQLModel):
    id: uuid.UUID
    enterprise_id: uuid.UUID
    inspection_id: uuid.UUID | None
    region_code: str
    kind: CaseKind
    status: CaseStatus
    possibly_criminal: bool
    version: int
    created_at: datetime
