"""The audit log and its tamper check."""

from __future__ import annotations

from typing import Annotated

from fastapi import Query
from pydantic import BaseModel, Field
from sqlmodel import select

from app import policy
from app.deps import ScopeDep, SessionDep
from app.errors import problem_responses
from app.models.audit import AuditEvent, AuditEventPublic
from app.pagination import Page, PageDep, paginate
from app.routers import secured_router
from app.services import audit as audit_service

router = secured_router(machine_scope=None, prefix="/api/v1/audit-events", tags=["audit"])


class BrokenLink(BaseModel):
    id: int | None
    reason: str


class ChainHead(BaseModel):
    seq: int
    chain_hash: str


class ChainVerification(BaseModel):
    ok: bool
    checked: int
    first_broken: BrokenLink | None
    head: ChainHead | None = Field(default=None, description="keep it outside the database to compare later")


@router.get("", response_model=Page[AuditEventPublic], responses=problem_responses(401, 403, 422))
async def list_audit_events(
    scope: ScopeDep, session: SessionDep, page: PageDep,
    entity_type: Annotated[str | None, Query(max_length=64)] = None,
    entity_id: Annotated[str | None, Query(max_length=64)] = None,
    action: Annotated[str | None, Query(max_length=64)] = None,
) -> Page[AuditEventPublic]:
    """Audit rows about entities inside your jurisdiction, newest first (admins and leaders)."""
    policy.require(policy.can_read_audit(scope))
    stmt = select(AuditEvent)
    if entity_type:
        stmt = stmt.where(AuditEvent.entity_type == entity_type)
    if entity_id:
        stmt = stmt.where(AuditEvent.entity_id == entity_id)
    if action:
        stmt = stmt.where(AuditEvent.action == action)
    items, nxt = await paginate(session, stmt.order_by(AuditEvent.id.desc()), page)  # type: ignore[union-attr]
    return Page[AuditEventPublic](items=[AuditEventPublic.model_validate(e, from_attributes=True) for e in items],
                                  next_cursor=nxt)


@router.get("/verify", response_model=ChainVerification, responses=problem_responses(401, 403))
async def verify_chain(scope: ScopeDep, session: SessionDep) -> ChainVerification:
    """Seal pending rows, then recompute every row hash and chain link; `first_broken` names the
    first row whose content, link or sequence does not hold (national admins)."""
    policy.require(policy.can_verify_audit_chain(scope))
    return ChainVerification.model_validate(await audit_service.verify(session))
