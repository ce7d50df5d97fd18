"""Field inspections (sweep, routine, annual review, complaint, spot check) and their attachments."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, StrictBool, StrictFloat, StringConstraints, field_validator
from sqlalchemy import BigInteger, Column
from sqlalchemy.dialects.postgresql import JSONB
from sqlmodel import Field, SQLModel
from sqlmodel._compat import SQLModelConfig

from app.models.case import CaseKind
from app.models.common import AwareMoment, PatchModel, RegionOwned, enum_column_type, tz_field, utcnow

# a name or a user id, without the spaces around it; not blank (the pattern checks and documents it)
OfficerName = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100, pattern=r"\S")]


class InspectionKind(StrEnum):
    sweep = "sweep"
    routine = "routine"
    annual_review = "annual_review"
    complaint = "complaint"
    spot_check = "spot_check"


class Conclusion(StrEnum):
    compliant = "compliant"
    issues_found = "issues_found"


class Check(BaseModel):
    model_config = ConfigDict(extra="forbid")

    ok: StrictBool
    note: str | None = Field(default=None, max_length=1000)


class Checks(BaseModel):
    """The five checks of DOMAIN.md §5."""

    model_config = ConfigDict(extra="forbid")

    licensed: Check
    conditions_met: Check
    standard_production: Check
    no_safety_hazard: Check
    no_fraud: Check


class Sample(BaseModel):
    model_config = ConfigDict(extra="forbid")

    product: str = Field(min_length=1, max_length=200)
    batch: str | None = Field(default=None, max_length=100)
    standard: str | None = Field(default=None, max_length=100, description="test standard, e.g. GB/T 5023.3-2008")
    lab: str | None = Field(default=None, max_length=200, description="test body")
    passed: StrictBool
    failed_items: list[str] = Field(default_factory=list, max_length=50)


class Location(BaseModel):
    model_config = ConfigDict(extra="forbid")

    lat: StrictFloat = Field(ge=-90, le=90)
    lng: StrictFloat = Field(ge=-180, le=180)


class Inspection(RegionOwned, SQLModel, table=True):
    __tablename__ = "inspection"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    enterprise_id: uuid.UUID = Field(foreign_key="enterprise.id")
    region_code: str = Field(max_length=6, description="the enterprise's region")
    kind: InspectionKind = Field(sa_type=enum_column_type(InspectionKind))
    inspected_at: datetime = tz_field()
    officers: list[str] = Field(sa_column=Column(JSONB, nullable=False))
    location: dict[str, Any] | None = Field(default=None, sa_column=Column(JSONB))
    checks: dict[str, Any] = Field(sa_column=Column(JSONB, nullable=False))
    samples: list[dict[str, Any]] = Field(sa_column=Column(JSONB, nullable=False, server_default="[]"))
    conclusion: Conclusion = Field(sa_type=enum_column_type(Conclusion))
    notes: str | None = Field(default=None, max_length=5000)
    case_id: uuid.UUID | None = Field(default=None)
    body_hash: str = Field(max_length=64, description="hash of the create body: a client-id replay check")
    created_by: uuid.UUID | None = None
    version: int = 1
    created_at: datetime = tz_field(default_factory=utcnow)
    updated_at: datetime = tz_field(default_factory=utcnow)


class InspectionBase(SQLModel):
    kind: InspectionKind
    inspected_at: AwareMoment
    officers: list[OfficerName] = Field(min_length=2, max_length=20, description="names or user ids; at least two")
    location: Location | None = None
    checks: Checks
    samples: list[Sample] = Field(default_factory=list, max_length=100)
    conclusion: Conclusion
    notes: str | None = Field(default=None, max_length=5000)

    @field_validator("officers")
    @classmethod
    def _officers(cls, v: list[str] | None) -> list[str] | None:
        if v is not None and len(set(v)) < 2:
            raise ValueError("an inspection needs at least two different officers")
        return v


class InspectionCreate(InspectionBase):
    model_config = SQLModelConfig(extra="forbid", json_schema_extra={"example": {
        "id": "0b7e1c8a-9d55-4f0e-8d44-3f3f0f5e2a10", "enterprise_id": "6f1c2d9e-2b1a-4c55-9a59-7f0c1b1a2d3e",
        "kind": "sweep", "inspected_at": "2026-11-20T09:30:00+08:00", "officers": ["王芳", "李强"],
        "location": {"lat": 30.27, "lng": 120.13},
        "checks": {"licensed": {"ok": True}, "conditions_met": {"ok": True},
                   "standard_production": {"ok": False, "note": "铜芯截面不足"},
                   "no_safety_hazard": {"ok": False}, "no_fraud": {"ok": True}},
        "samples": [], "conclusion": "issues_found", "notes": "责令整改", "open_case": True,
        "case_kind": "nonconforming_products"}})

    id: uuid.UUID | None = Field(default=None, description="client-made id: a repeat with the same body is a replay")
    enterprise_id: uuid.UUID
    open_case: StrictBool = Field(default=False, description="file a case (registered) in the same transaction")
    case_kind: CaseKind | None = Field(default=None, description="kind of the case opened; derived when absent")


class InspectionUpdate(PatchModel):
    model_config = SQLModelConfig(extra="forbid", json_schema_extra={"example": {
        "notes": "企业已签字确认", "conclusion": "issues_found"}})

    kind: InspectionKind | None = None
    inspected_at: AwareMoment | None = None
    officers: list[OfficerName] | None = Field(default=None, min_length=2, max_length=20)
    location: Location | None = None
    checks: Checks | None = None
    samples: list[Sample] | None = Field(default=None, max_length=100)
    conclusion: Conclusion | None = None
    notes: str | None = Field(default=None, max_length=5000)

    _officers = field_validator("officers")(InspectionBase._officers.__func__)  # type: ignore[attr-defined]


class InspectionPublic(SQLModel):
    id: uuid.UUID
    enterprise_id: uuid.UUID
    region_code: str
    kind: InspectionKind
    inspected_at: datetime
    officers: list[str]
    location: Location | None
    checks: Checks
    samples: list[Sample]
    conclusion: Conclusion
    notes: str | None
    case_id: uuid.UUID | None
    created_by: uuid.UUID | None
    version: int
    created_at: datetime
    updated_at: datetime


class Attachment(RegionOwned, SQLModel, table=True):
    __tablename__ = "attachment"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    inspection_id: uuid.UUID = Field(foreign_key="inspection.id", index=True)
    region_code: str = Field(max_length=6)
    filename: str = Field(max_length=255)
    content_type: str = Field(max_length=100)
    size_bytes: int = Field(sa_column=Column(BigInteger, nullable=False))
    sha256: str = Field(max_length=64)
    storage_key: str = Field(max_length=255)
    created_by: uuid.UUID | None = None
    created_at: datetime = tz_field(default_factory=utcnow)


class AttachmentPublic(SQLModel):
    id: uuid.UUID
    inspection_id: uuid.UUID
    filename: str
    content_type: str
    size_bytes: int
    sha256: str
    created_at: datetime
