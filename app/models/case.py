"""Penalty cases (立案 → 结案): the case, its measures, timeline, escalations, notifications and bad
records. The workflow itself is one table in app/services/case_workflow.py."""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict
from pydantic import Field as PField
from sqlalchemy import BigInteger, Column
from sqlalchemy.dialects.postgresql import JSONB
from sqlmodel import Field, SQLModel

from app.models.common import JsonInt, RegionOwned, enum_column_type, positive_decimal, tz_field, utcnow


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




class MeasureType(StrEnum):
    seal_goods = "seal_goods"          # 封存
    seize_goods = "seize_goods"        # 扣押
    close_premises = "close_premises"  # 查封场所
    copy_documents = "copy_documents"  # 查阅、复制资料
    release = "release"                # 解除 (of an earlier seal, seizure or closure)


GOODS_MEASURES = frozenset({MeasureType.seal_goods, MeasureType.seize_goods})


class PenaltyType(StrEnum):
    warning = "warning"
    confiscate_gains = "confiscate_gains"
    confiscate_goods = "confiscate_goods"
    fine = "fine"
    stop_production = "stop_production"
    suspend_license = "suspend_license"
    revoke_license = "revoke_license"


PENALTIES_WITH_AMOUNT = frozenset({PenaltyType.fine, PenaltyType.confiscate_gains})


class Recipient(StrEnum):
    """Who a 通报 is addressed to (DOMAIN.md §10)."""

    market_regulator = "market_regulator"    # 工商
    bank = "bank"
    local_government = "local_government"
    judicial = "judicial"
    department = "department"                # another administrative department (移交)
    quality_bureau = "quality_bureau"        # another quality bureau (e.g. where the goods were sold)


class PenaltyCase(RegionOwned, SQLModel, table=True):
    __tablename__ = "penalty_case"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    enterprise_id: uuid.UUID = Field(foreign_key="enterprise.id", index=True)
    inspection_id: uuid.UUID | None = Field(default=None, foreign_key="inspection.id")
    region_code: str = Field(max_length=6)
    bureau_code: str = Field(max_length=6, description="the bureau handling the case")
    kind: CaseKind = Field(sa_type=enum_column_type(CaseKind))
    status: CaseStatus = Field(sa_type=enum_column_type(CaseStatus), default=CaseStatus.registered)
    source: str = Field(default="inspection", max_length=16)
    facts: str | None = None
    possibly_criminal: bool = False
    criminal_reason: str | None = None
    decision: dict[str, Any] | None = Field(default=None, sa_column=Column(JSONB, nullable=True))
    awaiting_bureau: str | None = Field(default=None, max_length=6)
    transfer: dict[str, Any] | None = Field(default=None, sa_column=Column(JSONB, nullable=True))
    revocation_approval_seconds: float | None = None
    stage_entered_at: datetime = tz_field(default_factory=utcnow)
    deadline: datetime | None = tz_field(default=None)
    closed_at: datetime | None = tz_field(default=None)
    created_by: uuid.UUID | None = None
    version: int = 1
    created_at: datetime = tz_field(default_factory=utcnow)
    updated_at: datetime = tz_field(default_factory=utcnow)


class CaseMeasure(RegionOwned, SQLModel, table=True):
    __tablename__ = "case_measure"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    case_id: uuid.UUID = Field(foreign_key="penalty_case.id", index=True)
    region_code: str = Field(max_length=6)
    type: MeasureType = Field(sa_type=enum_column_type(MeasureType))
    items: list[dict[str, Any]] = Field(default_factory=list, sa_column=Column(JSONB, nullable=False))
    legal_basis: str
    note: str | None = None
    releases: uuid.UUID | None = Field(default=None, foreign_key="case_measure.id")
    released_at: datetime | None = tz_field(default=None)
    created_by: uuid.UUID | None = None
    created_at: datetime = tz_field(default_factory=utcnow)


class CaseEvent(RegionOwned, SQLModel, table=True):
    """The case timeline: one row per action, written in the action's transaction."""

    __tablename__ = "case_event"

    id: int | None = Field(default=None, sa_column=Column(BigInteger, primary_key=True, autoincrement=True))
    case_id: uuid.UUID = Field(foreign_key="penalty_case.id")
    region_code: str = Field(max_length=6)
    action: str = Field(max_length=32)
    from_status: str | None = Field(default=None, max_length=32)
    to_status: str = Field(max_length=32)
    actor_id: uuid.UUID | None = None
    actor: str = Field(max_length=128)
    actor_bureau: str = Field(max_length=6)
    at: datetime = tz_field(default_factory=utcnow)
    detail: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSONB, nullable=False))


class CaseEscalation(RegionOwned, SQLModel, table=True):
    """A question (请示) to the superior bureau; its answer goes on the timeline."""

    __tablename__ = "case_escalation"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    case_id: uuid.UUID = Field(foreign_key="penalty_case.id", index=True)
    region_code: str = Field(max_length=6)
    from_bureau: str = Field(max_length=6)
    to_bureau: str = Field(max_length=6, index=True)
    question: str
    asked_by: uuid.UUID | None = None
    asked_at: datetime = tz_field(default_factory=utcnow)
    answer: str | None = None
    answered_by: uuid.UUID | None = None
    answered_at: datetime | None = tz_field(default=None)


class Notification(RegionOwned, SQLModel, table=True):
    """A 通报 to another agency, with its delivery state and the agency's receipt."""

    __tablename__ = "notification"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    case_id: uuid.UUID | None = Field(default=None, foreign_key="penalty_case.id", index=True)
    region_code: str = Field(max_length=6)
    recipient: Recipient = Field(sa_type=enum_column_type(Recipient))
    recipient_name: str | None = Field(default=None, max_length=200)
    recipient_account: uuid.UUID | None = Field(default=None, foreign_key="service_account.id",
                                                description="the one agency system addressed (else every "
                                                            "client of that kind of agency in the region)")
    subject: str = Field(max_length=200)
    content: str
    automatic: bool = False
    event_id: int | None = Field(default=None, sa_type=BigInteger, description="id of its event in /api/v1/events")
    status: str = Field(default="pending", max_length=16)
    attempts: int = 0
    created_by: uuid.UUID | None = None
    created_at: datetime = tz_field(default_factory=utcnow)
    delivered_at: datetime | None = tz_field(default=None)
    receipt_at: datetime | None = tz_field(default=None)
    receipt_by: str | None = Field(default=None, max_length=128)
    receipt_measures: str | None = None


class BadRecord(RegionOwned, SQLModel, table=True):
    """不良记录: a licensed producer's violation, entered when the decision is approved and published."""

    __tablename__ = "bad_record"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    enterprise_id: uuid.UUID = Field(foreign_key="enterprise.id", index=True)
    case_id: uuid.UUID = Field(foreign_key="penalty_case.id", unique=True)
    region_code: str = Field(max_length=6)
    enterprise_name: str = Field(max_length=200)
    uscc: str = Field(max_length=18)
    violation: CaseKind = Field(sa_type=enum_column_type(CaseKind))
    penalties: list[dict[str, Any]] = Field(default_factory=list, sa_column=Column(JSONB, nullable=False))
    decided_at: datetime = tz_field()
    published: bool = True
    published_at: datetime = tz_field(default_factory=utcnow)


# ---- bodies and views -------------------------------------------------------------------------

if TYPE_CHECKING:
    Money = Decimal
    Quantity = Decimal
else:
    Money = positive_decimal(2, description='yuan, at most 2 places, sent as a string: "15000.00"')
    Quantity = positive_decimal(3)
LegalBasis = Annotated[str, PField(min_length=2, max_length=500,
                                   description="article relied on, e.g. 《特别规定》第三条第二款")]
Text = Annotated[str, PField(min_length=1, max_length=4000)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class GoodsItem(Strict):
    name: str = PField(min_length=1, max_length=200)
    quantity: Quantity
    unit: str = PField(min_length=1, max_length=20, description="件, 箱, 吨, ...")
    batch: str | None = PField(default=None, max_length=100)


class CaseCreate(Strict):
    id: uuid.UUID | None = PField(default=None, description="client-supplied id (offline devices)")
    enterprise_id: uuid.UUID
    inspection_id: uuid.UUID | None = None
    kind: CaseKind
    source: Literal["inspection", "complaint", "referral", "other"] = "inspection"
    facts: str | None = PField(default=None, max_length=10000)


class Empty(Strict):
    note: str | None = PField(default=None, max_length=2000)


class MeasureBody(Strict):
    type: MeasureType
    items: list[GoodsItem] = PField(default_factory=list, max_length=200,
                                    description="itemised goods (required to seal or seize)")
    legal_basis: LegalBasis
    releases: uuid.UUID | None = PField(default=None, description="for `release`: the measure released")
    note: str | None = PField(default=None, max_length=2000)


class Penalty(Strict):
    type: PenaltyType
    amount: Money | None = None
    items: list[GoodsItem] = PField(default_factory=list, max_length=200)
    legal_basis: LegalBasis


class DecisionBody(Strict):
    penalties: list[Penalty] = PField(min_length=1, max_length=20)
    note: str | None = PField(default=None, max_length=2000)


class CommentBody(Strict):
    comment: str | None = PField(default=None, max_length=2000)


class ExecutionBody(Strict):
    penalties: list[JsonInt] | None = PField(default=None, min_length=1, max_length=20,
                                         description="indexes of the decision's penalties executed (all when left out)")
    note: str | None = PField(default=None, max_length=2000)


class NotifyBody(Strict):
    recipients: list[Recipient] = PField(min_length=1, max_length=6)
    recipient_name: str | None = PField(default=None, max_length=200)
    recipient_client_id: str | None = PField(default=None, max_length=64,
                                             description="address one agency's system only (its service "
                                                         "account's client_id; one recipient kind)")
    content: Text


class CriminalBody(Strict):
    reason: Text


class TransferBody(Strict):
    to: Literal["judicial", "department"]
    recipient: str = PField(min_length=1, max_length=200, description="the organ or department receiving it")
    reason: Text


class EscalateBody(Strict):
    question: Text


class AnswerBody(Strict):
    escalation_id: uuid.UUID
    answer: Text


class MeasurePublic(BaseModel):
    id: uuid.UUID
    type: MeasureType
    items: list[dict[str, Any]]
    legal_basis: str
    note: str | None
    releases: uuid.UUID | None
    released_at: datetime | None
    created_at: datetime


class EscalationPublic(BaseModel):
    id: uuid.UUID
    case_id: uuid.UUID
    from_bureau: str
    to_bureau: str
    question: str
    asked_at: datetime
    answer: str | None
    answered_at: datetime | None


class CasePublic(SQLModel):
    id: uuid.UUID
    enterprise_id: uuid.UUID
    inspection_id: uuid.UUID | None
    region_code: str
    bureau_code: str
    kind: CaseKind
    source: str = "inspection"
    facts: str | None = None
    status: CaseStatus
    possibly_criminal: bool
    criminal_reason: str | None = None
    measures: list[MeasurePublic] = []
    goods_under_seal: int = 0
    premises_closed: int = 0
    decision: dict[str, Any] | None = None
    awaiting_bureau: str | None = None
    transfer: dict[str, Any] | None = None
    revocation_approval_seconds: float | None = None
    deadline: datetime | None = None
    overdue: bool = False
    allowed_actions: list[str] = []
    version: int
    created_at: datetime
    updated_at: datetime | None = None
    closed_at: datetime | None = None


class CaseEventPublic(BaseModel):
    id: int
    action: str
    from_status: str | None
    to_status: str
    actor: str
    actor_bureau: str
    at: datetime
    detail: dict[str, Any]


class NotificationPublic(BaseModel):
    id: uuid.UUID
    case_id: uuid.UUID | None
    region_code: str
    recipient: Recipient
    recipient_name: str | None
    recipient_account: uuid.UUID | None = None
    subject: str
    content: str
    automatic: bool
    event_id: int | None = None
    status: str
    attempts: int
    created_at: datetime
    delivered_at: datetime | None
    receipt_at: datetime | None
    receipt_by: str | None
    receipt_measures: str | None


class InboxItem(BaseModel):
    kind: Literal["approval", "escalation", "overdue"]
    case_id: uuid.UUID
    case_status: CaseStatus
    region_code: str
    since: datetime
    detail: str
    escalation_id: uuid.UUID | None = None
