"""Penalty cases (立案 → 结案): filing, reading, lists, the timeline, the inbox and goods under seal.
Every change after filing goes through the workflow table (app/services/case_workflow.py)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import Select, and_, func, or_
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from app import policy
from app.concurrency import ANY_VERSION, check_version
from app.config import Settings, get_settings
from app.errors import NotPermitted
from app.models.case import (
    GOODS_MEASURES,
    CaseCreate,
    CaseEscalation,
    CaseEvent,
    CaseKind,
    CaseMeasure,
    CasePublic,
    CaseStatus,
    InboxItem,
    MeasurePublic,
    MeasureType,
    PenaltyCase,
)
from app.models.common import Role, utcnow
from app.models.enterprise import Enterprise
from app.models.inspection import Checks, Inspection, Sample
from app.scope import Scope, get_linked, get_visible
from app.services import audit, versioned
from app.services import case_workflow as workflow


def derive_kind(checks: Checks, samples: list[Sample]) -> CaseKind:
    """The case kind an inspection's findings point to, the gravest first (DOMAIN.md §3.2-3.3)."""
    if not checks.licensed.ok:
        return CaseKind.unlicensed_production
    if not checks.no_fraud.ok:
        return CaseKind.counterfeit
    if not checks.conditions_met.ok:
        return CaseKind.lowered_conditions
    if any(not s.passed for s in samples) or not checks.no_safety_hazard.ok:
        return CaseKind.nonconforming_products
    if not checks.standard_production.ok:
        return CaseKind.irregular_production
    return CaseKind.other


def measure_public(m: CaseMeasure) -> MeasurePublic:
    return MeasurePublic(id=m.id, type=m.type, items=m.items, legal_basis=m.legal_basis, note=m.note,
                         releases=m.releases, released_at=m.released_at, created_at=m.created_at)


def to_public(c: PenaltyCase, *, measures: list[CaseMeasure] | None = None, allowed: list[str] | None = None,
              now: datetime | None = None) -> CasePublic:
    now = now or utcnow()
    return CasePublic(
        id=c.id, enterprise_id=c.enterprise_id, inspection_id=c.inspection_id, region_code=c.region_code,
        bureau_code=c.bureau_code, kind=c.kind, source=c.source, facts=c.facts, status=c.status,
        possibly_criminal=c.possibly_criminal, criminal_reason=c.criminal_reason,
        measures=[measure_public(m) for m in measures or []],
        goods_under_seal=sum(1 for m in measures or [] if m.type in GOODS_MEASURES and m.released_at is None),
        premises_closed=sum(1 for m in measures or [] if m.type is MeasureType.close_premises
                            and m.released_at is None),
        decision=c.decision, awaiting_bureau=c.awaiting_bureau, transfer=c.transfer,
        revocation_approval_seconds=c.revocation_approval_seconds, deadline=c.deadline,
        overdue=c.deadline is not None and c.deadline < now, allowed_actions=allowed or [], version=c.version,
        created_at=c.created_at, updated_at=c.updated_at, closed_at=c.closed_at)


async def to_public_many(session: AsyncSession, scope: Scope, cases: list[PenaltyCase]) -> list[CasePublic]:
    """Views of a page of cases: measures and allowed actions in two queries for the whole page."""
    ids = [c.id for c in cases]
    measures: dict[uuid.UUID, list[CaseMeasure]] = {i: [] for i in ids}
    if ids:
        for m in (await session.execute(select(CaseMeasure).where(col(CaseMeasure.case_id).in_(ids))
                                        .order_by(col(CaseMeasure.created_at), col(CaseMeasure.id)))).scalars():
            measures[m.case_id].append(m)
    facts = await workflow.load_facts(session, ids)
    now = utcnow()
    return [for_caller(to_public(c, measures=measures[c.id], allowed=workflow.allowed(scope, c, facts[c.id]),
                                 now=now), scope) for c in cases]


def for_caller(view: CasePublic, scope: Scope) -> CasePublic:
    """A case's view as ``scope`` may see it: machine clients get the decision and the transfer without
    staff names."""
    if scope.principal_type != "user":
        view.decision = policy.redact_people(view.decision, scope)  # type: ignore[assignment]
        view.transfer = policy.redact_people(view.transfer, scope)  # type: ignore[assignment]
    return view


async def _file(session: AsyncSession, scope: Scope, settings: Settings | None, case: PenaltyCase,
                cause: str) -> PenaltyCase:
    now = utcnow()
    case.stage_entered_at = case.created_at = case.updated_at = now
    case.deadline = workflow.stage_deadline(settings or get_settings(), CaseStatus.registered, now)
    session.add(case)
    await session.flush()
    await workflow.record_event(session, scope, case, action="register", from_status=None,
                                detail={"kind": case.kind.value, "source": case.source, "cause": cause}, at=now)
    await audit.record(session, action="penalty_case.create", entity_type="penalty_case", entity_id=str(case.id),
                       region_code=case.region_code, after=workflow.snapshot(case) | {"opened_from": cause})
    return case


async def open_from_inspection(session: AsyncSession, *, scope: Scope, inspection: Inspection,
                               kind: CaseKind, settings: Settings | None = None) -> PenaltyCase:
    """File a case in `registered` state for an inspection (already flushed), linked both ways, with
    its timeline entry and audit row. The caller's policy check on the inspection covers this."""
    case = PenaltyCase(enterprise_id=inspection.enterprise_id, inspection_id=inspection.id,
                       region_code=inspection.region_code, bureau_code=scope.region_code, kind=kind,
                       status=CaseStatus.registered, source="inspection", created_by=scope.principal_id)
    case = await _file(session, scope, settings, case, "inspection")
    inspection.case_id = case.id
    return case


async def create(session: AsyncSession, *, scope: Scope, settings: Settings,
                 data: CaseCreate) -> tuple[PenaltyCase, bool]:
    """File a case (from a complaint, a referral or an inspection) against a visible enterprise. A repeat
    with the same client-supplied id and content is a replay (False)."""
    policy.require_role(scope, Role.inspector, Role.officer, doing="file cases")
    existing = await versioned.replayed(
        session, PenaltyCase, data.id, scope=scope, what="case",
        same=lambda c: (c.enterprise_id, c.inspection_id, c.kind) == (data.enterprise_id, data.inspection_id,
                                                                      data.kind))
    if existing is not None:
        return existing, False
    enterprise = await get_visible(session, Enterprise, data.enterprise_id, what="enterprise")
    if data.inspection_id is not None:
        await get_linked(session, Inspection, data.inspection_id, what="inspection", enterprise_id=enterprise.id)
    if not scope.contains(enterprise.region_code):  # visible means inside: kept for clarity of intent
        raise NotPermitted("enterprise outside your jurisdiction", code="not_in_jurisdiction")
    case = PenaltyCase(id=data.id or uuid.uuid4(), enterprise_id=enterprise.id, inspection_id=data.inspection_id,
                       region_code=enterprise.region_code, bureau_code=scope.region_code, kind=data.kind,
                       source=data.source, facts=data.facts, created_by=scope.principal_id)
    return await _file(session, scope, settings, case, data.source), True


async def get(session: AsyncSession, *, case_id: uuid.UUID, for_update: bool = False) -> PenaltyCase:
    return await get_visible(session, PenaltyCase, case_id, what="case", for_update=for_update)


async def act(session: AsyncSession, *, scope: Scope, settings: Settings, case_id: uuid.UUID, action: str,
              body: Any, expected_version: int) -> PenaltyCase:
    case = await get(session, case_id=case_id, for_update=True)
    if expected_version not in (ANY_VERSION, case.version):  # the 412 shows the server's copy
        current = (await to_public_many(session, scope, [case]))[0]
        check_version(case.version, expected_version,
                      current_body=current.model_dump(mode="json", exclude={"allowed_actions"}))
    return await workflow.perform(session, scope=scope, settings=settings, case=case, action=action, body=body)


def list_query(scope: Scope, *, region: str | None, status: CaseStatus | None, kind: CaseKind | None,
               enterprise_id: uuid.UUID | None, overdue: bool | None, possibly_criminal: bool | None) -> Select[Any]:
    stmt = select(PenaltyCase)
    if region is not None:
        stmt = stmt.where(scope.inside(col(PenaltyCase.region_code), region))
    if status is not None:
        stmt = stmt.where(PenaltyCase.status == status)
    if kind is not None:
        stmt = stmt.where(PenaltyCase.kind == kind)
    if enterprise_id is not None:
        stmt = stmt.where(PenaltyCase.enterprise_id == enterprise_id)
    if possibly_criminal is not None:
        stmt = stmt.where(PenaltyCase.possibly_criminal == possibly_criminal)
    if overdue is not None:
        late = col(PenaltyCase.deadline) < func.now()
        stmt = stmt.where(late if overdue else or_(col(PenaltyCase.deadline).is_(None), ~late))
    return stmt.order_by(col(PenaltyCase.created_at).desc(), col(PenaltyCase.id).desc())


def timeline_query(case_id: uuid.UUID) -> Select[Any]:
    return select(CaseEvent).where(CaseEvent.case_id == case_id).order_by(col(CaseEvent.id))


def sealed_goods_query(region: str | None, scope: Scope) -> Select[Any]:
    """Seals and seizures of goods not released yet, oldest first."""
    stmt = select(CaseMeasure).where(col(CaseMeasure.type).in_(list(GOODS_MEASURES)),
                                     col(CaseMeasure.released_at).is_(None))
    if region is not None:
        stmt = stmt.where(scope.inside(col(CaseMeasure.region_code), region))
    return stmt.order_by(col(CaseMeasure.created_at), col(CaseMeasure.id))


async def inbox(session: AsyncSession, *, scope: Scope, limit: int = 200) -> list[InboxItem]:
    """What waits for the caller: decisions awaiting approval by its bureau (leaders), questions
    escalated to its bureau (leaders), and overdue cases inside its jurisdiction (leaders and officers),
    oldest first in each kind."""
    items: list[InboxItem] = []
    if scope.principal_type != "user":
        return items
    if Role.leader in scope.roles:
        rows = (await session.execute(
            select(PenaltyCase).where(PenaltyCase.awaiting_bureau == scope.region_code,
                                      PenaltyCase.status == CaseStatus.pending_approval)
            .order_by(col(PenaltyCase.stage_entered_at)).limit(limit))).scalars()
        items += [InboxItem(kind="approval", case_id=c.id, case_status=c.status, region_code=c.region_code,
                            since=c.stage_entered_at,
                            detail="decision to approve: " + ", ".join(
                                p["type"] for p in (c.decision or {}).get("penalties", [])))
                  for c in rows]
        esc = (await session.execute(
            select(CaseEscalation, PenaltyCase.status).join(PenaltyCase, and_(
                col(PenaltyCase.id) == col(CaseEscalation.case_id)))
            .where(CaseEscalation.to_bureau == scope.region_code, col(CaseEscalation.answered_at).is_(None))
            .order_by(col(CaseEscalation.asked_at)).limit(limit))).all()
        items += [InboxItem(kind="escalation", case_id=e.case_id, case_status=status, region_code=e.region_code,
                            since=e.asked_at, detail=f"question from bureau {e.from_bureau}: {e.question}",
                            escalation_id=e.id) for e, status in esc]
    if {Role.leader, Role.officer} & scope.roles:
        rows = (await session.execute(
            select(PenaltyCase).where(col(PenaltyCase.deadline) < func.now())
            .order_by(col(PenaltyCase.deadline)).limit(limit))).scalars()
        items += [InboxItem(kind="overdue", case_id=c.id, case_status=c.status, region_code=c.region_code,
                            since=c.deadline or c.stage_entered_at,
                            detail=f"{c.status.value} since {c.stage_entered_at.date().isoformat()}, "
                                   f"past its time limit (bureau {c.bureau_code})")
                  for c in rows]
    return items


async def revocation_times(session: AsyncSession, *, region: str | None, scope: Scope) -> dict[str, Any]:
    """Time from a revocation proposal to its national approval (即收即批), over revoked cases in view."""
    seconds = col(PenaltyCase.revocation_approval_seconds)
    stmt: Select[Any] = select(  # type: ignore[call-overload]
        func.count(), func.avg(seconds), func.percentile_cont(0.5).within_group(seconds),
        func.percentile_cont(0.9).within_group(seconds), func.max(seconds)).where(
        col(PenaltyCase.revocation_approval_seconds).is_not(None))
    if region is not None:
        stmt = stmt.where(scope.inside(col(PenaltyCase.region_code), region))
    n, avg, p50, p90, worst = (await session.execute(stmt)).one()
    return {"revocations": int(n), "mean_seconds": avg, "median_seconds": p50, "p90_seconds": p90,
            "max_seconds": worst}
