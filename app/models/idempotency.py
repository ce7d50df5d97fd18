"""Stored responses of create requests sent with an Idempotency-Key."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Column, LargeBinary
from sqlalchemy.dialects.postgresql import JSONB
from sqlmodel import Field, SQLModel

from app.models.common import tz_field, utcnow


class IdempotencyRecord(SQLModel, table=True):
    __tablename__ = "idempotency_record"

    owner: str = Field(primary_key=True, max_length=64)
    key: str = Field(primary_key=True, max_length=255)
    method: str = Field(max_length=8)
    path: str = Field(max_length=512)
    request_hash: str = Field(max_length=64)
    response_status: int
    response_headers: dict[str, Any] = Field(sa_column=Column(JSONB, nullable=False))
    response_body: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    created_at: datetime = tz_field(default_factory=utcnow)
    expires_at: datetime = tz_field(index=True)
