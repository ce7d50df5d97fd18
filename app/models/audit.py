"""The append-only, hash-chained audit log."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, CheckConstraint, Column, Identity, SmallInteger
from sqlalchemy.dialects.postgresql import JSONB
from sqlmodel import Field, SQLModel

from app.models.common import RegionOwned, tz_field


class AuditEvent(RegionOwned, SQLModel, table=True):
    """One row per write, inserted in the write's own transaction with ``row_hash`` over its
    content. ``seq``/``chain_hash`` are filled afterwards, in commit order, by the chain sealer
    (app/services/audit.py), so concurrent writers never queue behind one chain head."""

    __tablename__ = "audit_event"

    id: int | None = Field(default=None, sa_column=Column(BigInteger, Identity(), primary_key=True))
    occurred_at: datetime = tz_field()
    actor_type: str = Field(max_length=16)
    actor_id: str | None = Field(default=None, max_length=64)
    actor_name: str | None = Field(default=None, max_length=128)
    actor_region: str | None = Field(default=None, max_length=6)
    action: str = Field(max_length=64)
    entity_type: str = Field(max_length=64)
    entity_id: str = Field(max_length=64)
    region_code: str = Field(max_length=6, description="region of the entity; 000000 for national data")
    before: dict[str, Any] | None = Field(default=None, sa_column=Column(JSONB))
    after: dict[str, Any] | None = Field(default=None, sa_column=Column(JSONB))
    request_id: str | None = Field(default=None, max_length=64)
    row_hash: str = Field(max_length=64)
    seq: int | None = Field(default=None, sa_column=Column(BigInteger, unique=True))
    chain_hash: str | None = Field(default=None, max_length=64)


class AuditChainHead(SQLModel, table=True):
    """The newest sealed link (one row, forward-only by trigger): removing the newest audit rows
    leaves the chain short of its head."""

    __tablename__ = "audit_chain_head"
    __table_args__ = (CheckConstraint("id = 1", name="single_row"),)

    id: int = Field(default=1, sa_column=Column(SmallInteger, primary_key=True))
    seq: int = Field(sa_column=Column(BigInteger, nullable=False))
    chain_hash: str = Field(max_length=64)
    sealed_at: datetime = tz_field()


class AuditEventPublic(SQLModel):
    id: int
    occurred_at: datetime
    actor_type: str
    actor_id: str | None
    actor_name: str | None
    actor_region: str | None
    action: str
    entity_type: str
    entity_id: str
    region_code: str
    before: dict[str, Any] | None
    after: dict[str, Any] | None
    request_id: str | None
    row_hash: str
    seq: int | None
    chain_hash: str | None
