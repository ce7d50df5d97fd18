"""Integration with other government systems: webhook subscriptions of machine clients and the
outbox of deliveries written in the same transaction as the 通报 they carry."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import ClassVar

from pydantic import AnyHttpUrl, BaseModel, ConfigDict
from pydantic import Field as PField
from sqlmodel import Field, SQLModel

from app.models.common import RegionOwned, enum_column_type, tz_field, unrequire_replay_omits, utcnow


class DeliveryStatus(StrEnum):
    pending = "pending"
    delivered = "delivered"
    failed = "failed"


class WebhookSubscription(RegionOwned, SQLModel, table=True):
    __tablename__ = "webhook_subscription"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    service_account_id: uuid.UUID = Field(foreign_key="service_account.id", index=True)
    region_code: str = Field(max_length=6)
    url: str = Field(max_length=2000)
    active: bool = True
    created_at: datetime = tz_field(default_factory=utcnow)


class WebhookDelivery(RegionOwned, SQLModel, table=True):
    """One notification to one subscription: pending until the receiver answers 2xx."""

    __tablename__ = "webhook_delivery"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    notification_id: uuid.UUID = Field(foreign_key="notification.id", index=True)
    subscription_id: uuid.UUID = Field(foreign_key="webhook_subscription.id", index=True)
    region_code: str = Field(max_length=6)
    status: DeliveryStatus = Field(sa_type=enum_column_type(DeliveryStatus), default=DeliveryStatus.pending)
    attempts: int = 0
    next_attempt_at: datetime = tz_field(default_factory=utcnow)
    last_error: str | None = Field(default=None, max_length=500)
    delivered_at: datetime | None = tz_field(default=None)
    created_at: datetime = tz_field(default_factory=utcnow)


class WebhookCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: AnyHttpUrl = PField(description="where the 通报 are POSTed (https in production)")


class WebhookPublic(BaseModel):
    id: uuid.UUID
    url: str
    region_code: str
    active: bool
    created_at: datetime


class WebhookCreated(WebhookPublic):
    model_config = ConfigDict(json_schema_extra=unrequire_replay_omits)  # type: ignore[typeddict-item]
    replay_omits: ClassVar[tuple[str, ...]] = ("secret",)

    secret: str = PField(description="HMAC-SHA256 key of the `X-Signature` header; shown once.")


class ReceiptBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    measures_taken: str = PField(min_length=1, max_length=4000, description="what the agency did about it")


class FeedEvent(BaseModel):
    id: int = PField(description="stable event id: the same in the feed and in webhook deliveries")
    seq: int = PField(description="position in commit order")
    type: str
    entity_type: str
    entity_id: str
    region_code: str
    occurred_at: datetime
    data: dict[str, object] | None
