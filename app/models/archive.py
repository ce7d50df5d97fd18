"""The quality archive (质量监管信息档案, DOMAIN.md §5) as the API shows it: no table of its own, it is
assembled from the records."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any

from sqlmodel import Field, SQLModel

from app.models.case import CasePublic
from app.models.enterprise import EnterprisePublic, EnterpriseSize, LicensePublic
from app.models.inspection import InspectionPublic


class ArchiveCategory(SQLModel):
    code: str
    name: str
    parent_code: str | None
    key: bool
    licensed: bool = Field(description="a valid licence covers it (same category, its parent or a sub-product)")


class LicenseSummary(SQLModel):
    total: int
    valid: int
    expired: int
    suspended: int
    revoked: int
    cancelled: int
    next_expiry: date | None = Field(description="earliest expiry among the valid licences")


class ProductionInfo(SQLModel):
    size: EnterpriseSize
    licensed: bool
    categories: list[ArchiveCategory]
    licenses: LicenseSummary


class Archive(SQLModel):
    enterprise_id: uuid.UUID
    generated_at: datetime
    basic: EnterprisePublic
    production: ProductionInfo
    licenses: list[LicensePublic]
    spot_checks: list[InspectionPublic]
    annual_reviews: list[InspectionPublic]
    inspections: list[InspectionPublic] = Field(description="sweep, routine and complaint inspections")
    cases: list[CasePublic]
    bad_records: list[dict[str, Any]] = Field(description="bad records entered by decided cases against it")
    recalls: list[dict[str, Any]] = Field(description="recalls of its products, with the units recovered so far")
