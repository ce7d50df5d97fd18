"""Recalls of sold unsafe nonconforming products (DOMAIN.md §7): per product and batch, with where the
units were sold, so the recovery rate toward 100% is known per batch and per region."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, StringConstraints, model_validator
from pydantic import Field as PField
from sqlalchemy import ARRAY, BigInteger, Column, String
from sqlalchemy.dialects.postgresql import JSONB
from sqlmodel import Field, SQLModel

from app.models.common import Day, JsonNumber, RegionCode, RegionOwned, StrictPatch, enum_column_type, tz_field, utcnow

MAX_UNITS = 10**12


# a production batch as the producer numbers it, kept as written; not blank (the pattern checks and
# documents it: pydantic searches the value for it)
BatchId = Annotated[str, StringConstraints(max_length=100, pattern=r"\S")]


class RecallMode(StrEnum):
    ordered = "ordered"      # 责令召回
    voluntary = "voluntary"  # 主动召回


class RecallStatus(StrEnum):
    open = "open"
    completed = "completed"
    overdue = "overdue"
    cancelled = "cancelled"


class Recall(RegionOwned, SQLModel, table=True):
    __tablename__ = "recall"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    enterprise_id: uuid.UUID = Field(foreign_key="enterprise.id", index=True)
    case_id: uuid.UUID | None = Field(default=None, foreign_key="penalty_case.id")
    inspection_id: uuid.UUID | None = Field(default=None, foreign_key="inspection.id")
    region_code: str = Field(max_length=6)
    product: str = Field(max_length=200)
    batches: list[str] = Field(default_factory=list, sa_column=Column(ARRAY(String(100)), nullable=False))
    hazard: str
    mode: RecallMode = Field(sa_type=enum_column_type(RecallMode))
    units_made: int = Field(sa_type=BigInteger)
    units_sold: int = Field(sa_type=BigInteger)
    distribution: list[dict[str, Any]] = Field(default_factory=list, sa_column=Column(JSONB, nullable=False))
    units_recalled: int = Field(default=0, sa_type=BigInteger)
    deadline: date
    status: RecallStatus = Field(sa_type=enum_column_type(RecallStatus), default=RecallStatus.open)
    cancel_reason: str | None = None
    completed_at: datetime | None = tz_field(default=None)
    created_by: uuid.UUID | None = None
    version: int = 1
    created_at: datetime = tz_field(default_factory=utcnow)
    updated_at: datetime = tz_field(default_factory=utcnow)


class RecallProgress(RegionOwned, SQLModel, table=True):
    __tablename__ = "recall_progress"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    recall_id: uuid.UUID = Field(foreign_key="recall.id", index=True)
    region_code: str = Field(max_length=6)
    units_recalled: int = Field(sa_type=BigInteger)
    as_of: date
    note: str | None = None
    sold_region: str | None = Field(default=None, max_length=6)
    batch: str | None = Field(default=None, max_length=100)
    created_by: uuid.UUID | None = None
    created_at: datetime = tz_field(default_factory=utcnow)


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


# the bounds before JsonNumber: beside None, pydantic would write them as ge/le in the docs otherwise
Units = Annotated[int, PField(ge=0, le=MAX_UNITS), JsonNumber]
SomeUnits = Annotated[int, PField(ge=1, le=MAX_UNITS), JsonNumber]


class DistributionEntry(Strict):
    region_code: RegionCode = PField(description="where these units were sold")
    batch: str | None = PField(default=None, max_length=100)
    units_sold: Units


def _check_units(made: int | None, sold: int | None, distribution: list[DistributionEntry] | None,
                 batches: list[str] | None) -> None:
    if made is not None and sold is not None and sold > made:
        raise ValueError(f"units_sold ({sold}) cannot exceed units_made ({made})")
    if distribution:
        keys = [(d.region_code, d.batch) for d in distribution]
        if len(keys) != len(set(keys)):
            raise ValueError("distribution lists a region (and batch) twice")
        if sold is not None and sum(d.units_sold for d in distribution) != sold:
            raise ValueError("the distribution's units_sold must add up to units_sold")
        if batches is not None:
            unknown = sorted({d.batch for d in distribution if d.batch and d.batch not in batches})
            if unknown:
                raise ValueError(f"distribution names batches not in batches: {', '.join(unknown)}")


class RecallCreate(Strict):
    id: uuid.UUID | None = PField(default=None, description="client-supplied id")
    enterprise_id: uuid.UUID
    case_id: uuid.UUID | None = PField(default=None, description="the case that ordered it")
    inspection_id: uuid.UUID | None = PField(default=None, description="the spot check that found the hazard")
    product: str = PField(min_length=1, max_length=200)
    batches: list[BatchId] = PField(min_length=1, max_length=200, json_schema_extra={"uniqueItems": True})
    hazard: str = PField(min_length=1, max_length=4000)
    mode: RecallMode
    units_made: SomeUnits
    units_sold: SomeUnits
    distribution: list[DistributionEntry] = PField(default_factory=list, max_length=500)
    deadline: Day

    @model_validator(mode="after")
    def _consistent(self) -> RecallCreate:
        if len(set(self.batches)) != len(self.batches):
            raise ValueError("batches must be distinct")
        _check_units(self.units_made, self.units_sold, self.distribution, self.batches)
        return self


class RecallUpdate(StrictPatch):
    hazard: str | None = PField(default=None, min_length=1, max_length=4000)
    deadline: Day | None = None
    units_made: SomeUnits | None = None
    units_sold: SomeUnits | None = None
    distribution: list[DistributionEntry] | None = PField(default=None, max_length=500)
    status: Literal["cancelled"] | None = PField(default=None, description="cancel the recall (with cancel_reason)")
    cancel_reason: str | None = PField(default=None, min_length=1, max_length=2000)


class ProgressCreate(Strict):
    units_recalled: SomeUnits = PField(description="units recovered since the last report")
    as_of: Day
    note: str | None = PField(default=None, max_length=2000)
    region_code: RegionCode | None = PField(default=None, description="where the units were recovered (sold)")
    batch: str | None = PField(default=None, max_length=100)


class Breakdown(BaseModel):
    units_sold: int
    units_recalled: int
    recovery_rate: float | None


class RegionBreakdown(Breakdown):
    region_code: str


class BatchBreakdown(Breakdown):
    batch: str


class ProgressPublic(BaseModel):
    id: uuid.UUID
    units_recalled: int
    as_of: date
    note: str | None
    region_code: str | None
    batch: str | None
    created_at: datetime


class RecallPublic(BaseModel):
    id: uuid.UUID
    enterprise_id: uuid.UUID
    case_id: uuid.UUID | None
    inspection_id: uuid.UUID | None
    region_code: str
    product: str
    batches: list[str]
    hazard: str
    mode: RecallMode
    units_made: int
    units_sold: int
    distribution: list[dict[str, Any]]
    units_recalled: int
    recovery_rate: float
    by_batch: list[BatchBreakdown]
    by_region: list[RegionBreakdown]
    deadline: date
    status: RecallStatus
    cancel_reason: str | None
    completed_at: datetime | None
    version: int
    created_at: datetime
    updated_at: datetime
