"""Region rectification plans, supervision (督察) and acceptance (验收): each with its own rules and
audit. A plan's progress is read live from the campaign dashboard of its region."""

from __future__ import annotations

import uuid
from datetime import date
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from app import policy
from app.concurrency import check_version
from app.errors import Conflict, InvalidTransition, NotPermitted, Unprocessable
from app.models.common import Level, Role, level_of, prefix_of, utcnow
from app.models.focus import KeyRegion, PlanSummary
from app.models.oversight import (
    Acceptance,
    AcceptanceCreate,
    AcceptancePublic,
    PlanCreate,
    PlanPublic,
    PlanTargetProgress,
    PlanUpdate,
    ProgressNote,
    RectificationPlan,
    Supervision,
    SupervisionCreate,
    SupervisionPublic,
)
from app.models.reference import Region
from app.scope import Scope, get_visible
from app.services import audit
from app.services import campaign as campaign_service
from app.services import license as license_service


async def _campaign_id(session: AsyncSession, given: uuid.UUID | None) -> uuid.UUID:
    if given is not None:
        return (await campaign_service.get(session, given)).id
    cid = (await session.execute(text("SELECT id FROM campaign WHERE code = :c"),
                                 {"c": campaign_service.DEFAULT_CODE})).scalar()
    if cid is None:
        raise Unprocessable("no default campaign is seeded", code="campaign_not_found")
    return uuid.UUID(str(cid))


# ---- rectification plans ----------------------------------------------------------------------

async def plan_public(session: AsyncSession, scope: Scope, p: RectificationPlan) -> PlanPublic:
    board = await campaign_service.dashboard(session, scope=scope, campaign_id=p.campaign_id, region=p.region_code)
    figures = {t.key.value: t for t in board.targets}
    today = license_service.today()
    progress = []
    for t in p.targets:
        f = figures[t["key"]]
        deadline = date.fromisoformat(t["deadline"])
        met = f.figure is not None and f.figure >= t["target"]
        state = "met" if met else "overdue" if today > deadline else "behind" if f.figure is None or \
            f.figure < t["target"] * _elapsed(p.reported_to_government_on, deadline, today) else "on_track"
        progress.append(PlanTargetProgress(key=t["key"], target=t["target"], deadline=deadline, figure=f.figure,
                                           numerator=f.numerator, denominator=f.denominator, state=state))
    return PlanPublic(id=p.id, region_code=p.region_code, campaign_id=p.campaign_id, title=p.title,
                      lead_government=p.lead_government, responsible=p.responsible,
                      reported_to_government_on=p.reported_to_government_on, bureaus=p.bureaus, deadline=p.deadline,
                      status=p.status, progress=progress, progress_notes=p.progress_notes, version=p.version,
                      created_at=p.created_at, updated_at=p.updated_at)


def _elapsed(start: date, end: date, today: date) -> float:
    """Share of the plan's time gone: a target is on track when the figure has come that far."""
    if end <= start:
        return 1.0
    return min(1.0, max(0.0, (today - start).days / (end - start).days))


async def create_plan(session: AsyncSession, *, scope: Scope, data: PlanCreate) -> RectificationPlan:
    policy.require_role(scope, Role.leader, Role.admin, doing="file rectification plans")
    scope.require_region(data.region_code)
    designated = (await session.execute(select(KeyRegion.id).where(KeyRegion.region_code == data.region_code))).first()
    if not designated:
        raise Unprocessable(f"{data.region_code} is not a designated key region", code="not_a_key_region")
    outside = sorted(b for b in data.bureaus if not b.startswith(prefix_of(data.region_code)))
    if outside:
        raise Unprocessable(f"bureaus outside the region: {', '.join(outside)}", code="bureau_outside_region")
    known = set((await session.execute(select(Region.code).where(col(Region.code).in_(data.bureaus)))).scalars())
    unknown = sorted(set(data.bureaus) - known)
    if unknown:
        raise Unprocessable(f"bureaus that are not GB/T 2260 codes: {', '.join(unknown)}", code="unknown_region")
    p = RectificationPlan(region_code=data.region_code, campaign_id=await _campaign_id(session, data.campaign_id),
                          title=data.title, lead_government=data.lead_government,
                          responsible=data.responsible.model_dump(),
                          reported_to_government_on=data.reported_to_government_on,
                          targets=[t.model_dump(mode="json") for t in data.targets], bureaus=sorted(set(data.bureaus)),
                          deadline=data.deadline, created_by=scope.principal_id)
    session.add(p)
    await session.flush()
    await audit.record(session, action="rectification_plan.create", entity_type="rectification_plan",
                       entity_id=str(p.id), region_code=p.region_code, after=_plan_snapshot(p))
    return p


def _plan_snapshot(p: RectificationPlan) -> dict[str, Any]:
    return {"title": p.title, "responsible": p.responsible, "targets": p.targets, "bureaus": p.bureaus,
            "deadline": p.deadline.isoformat(), "status": p.status, "version": p.version}


async def get_plan(session: AsyncSession, plan_id: uuid.UUID, for_update: bool = False) -> RectificationPlan:
    return await get_visible(session, RectificationPlan, plan_id, what="rectification_plan", for_update=for_update)


async def update_plan(session: AsyncSession, *, scope: Scope, plan_id: uuid.UUID, data: PlanUpdate,
                      expected_version: int) -> RectificationPlan:
    policy.require_role(scope, Role.leader, Role.admin, doing="change rectification plans")
    p = await get_plan(session, plan_id, for_update=True)
    check_version(p.version, expected_version, current_body=_plan_snapshot(p))
    changes = data.model_dump(exclude_unset=True, mode="json")
    if not changes:
        return p
    if p.status != "active":
        raise Conflict(f"the plan is {p.status}", code="plan_closed")
    before = _plan_snapshot(p)
    if "deadline" in changes:
        changes["deadline"] = data.deadline
    for k, v in changes.items():
        setattr(p, k, v)
    p.version += 1
    p.updated_at = utcnow()
    await session.flush()
    await audit.record(session, action="rectification_plan.update", entity_type="rectification_plan",
                       entity_id=str(p.id), region_code=p.region_code, before=before, after=_plan_snapshot(p))
    return p


async def add_note(session: AsyncSession, *, scope: Scope, plan_id: uuid.UUID, data: ProgressNote) -> RectificationPlan:
    policy.require_role(scope, Role.leader, Role.officer, Role.admin, doing="report plan progress")
    p = await get_plan(session, plan_id, for_update=True)
    if p.status != "active":
        raise Conflict(f"the plan is {p.status}", code="plan_closed")
    note = {"note": data.note, "as_of": data.as_of.isoformat(), "by": scope.username, "bureau": scope.region_code,
            "at": utcnow().isoformat()}
    p.progress_notes = [*p.progress_notes, note]
    p.version += 1
    p.updated_at = utcnow()
    await session.flush()
    await audit.record(session, action="rectification_plan.progress", entity_type="rectification_plan",
                       entity_id=str(p.id), region_code=p.region_code, after=note)
    return p


async def plan_summaries(session: AsyncSession, scope: Scope, region: str) -> list[PlanSummary]:
    plans = (await session.execute(select(RectificationPlan).where(RectificationPlan.region_code == region)
                                   .order_by(col(RectificationPlan.created_at).desc()))).scalars().all()
    out = []
    for p in plans:
        view = await plan_public(session, scope, p)
        out.append(PlanSummary(id=p.id, title=p.title, status=p.status, deadline=p.deadline,
                               targets_met=sum(1 for t in view.progress if t.state == "met"),
                               targets=len(view.progress),
                               behind_or_overdue=[t.key.value for t in view.progress
                                                  if t.state in ("behind", "overdue")]))
    return out


def plans_query(scope: Scope, region: str | None) -> Any:
    stmt = select(RectificationPlan)
    if region is not None:
        stmt = stmt.where(scope.inside(col(RectificationPlan.region_code), region))
    return stmt.order_by(col(RectificationPlan.created_at).desc(), col(RectificationPlan.id).desc())


# ---- supervision ------------------------------------------------------------------------------

def supervision_public(s: Supervision) -> SupervisionPublic:
    return SupervisionPublic(
        id=s.id, region_code=s.region_code, supervising_bureau=s.supervising_bureau, subject=s.subject,
        findings=s.findings, correction_deadline=s.correction_deadline, accountable=s.accountable, status=s.status,
        overdue=s.status == "open" and s.correction_deadline < license_service.today(),
        correction_report=s.correction_report, corrected_at=s.corrected_at, closed_at=s.closed_at,
        version=s.version, created_at=s.created_at)


async def create_supervision(session: AsyncSession, *, scope: Scope, data: SupervisionCreate) -> Supervision:
    """A higher bureau supervises one below it: findings, a correction deadline, accountable people."""
    policy.require_role(scope, Role.leader, Role.officer, doing="supervise")
    scope.require_region(data.region_code)
    if data.region_code == scope.region_code:
        raise Unprocessable("a bureau supervises the bureaus below it, not itself", code="not_a_lower_bureau")
    s = Supervision(region_code=data.region_code, supervising_bureau=scope.region_code, subject=data.subject,
                    findings=data.findings, correction_deadline=data.correction_deadline,
                    accountable=[a.model_dump() for a in data.accountable], created_by=scope.principal_id)
    session.add(s)
    await session.flush()
    await audit.record(session, action="supervision.create", entity_type="supervision", entity_id=str(s.id),
                       region_code=s.region_code, after=supervision_public(s).model_dump(mode="json"))
    return s


async def get_supervision(session: AsyncSession, sid: uuid.UUID, for_update: bool = False) -> Supervision:
    return await get_visible(session, Supervision, sid, what="supervision", for_update=for_update)


async def supervision_action(session: AsyncSession, *, scope: Scope, sid: uuid.UUID, action: str,
                             report: str | None, expected_version: int) -> Supervision:
    """report_correction: the supervised bureau (open → corrected); close: the supervising bureau
    (corrected → closed); reopen: the supervising bureau (corrected → open, the correction falls short)."""
    s = await get_supervision(session, sid, for_update=True)
    check_version(s.version, expected_version, current_body=supervision_public(s).model_dump(mode="json"))
    policy.require_role(scope, Role.leader, Role.officer, doing="act on a supervision")
    before = supervision_public(s).model_dump(mode="json")
    now = utcnow()
    if action == "report_correction":
        if scope.region_code != s.region_code:
            raise NotPermitted("the supervised bureau reports its correction", code="not_your_bureau")
        if s.status != "open":
            raise InvalidTransition(f"a {s.status} supervision takes no correction report")
        s.status, s.correction_report, s.corrected_at = "corrected", report, now
    else:
        if scope.region_code != s.supervising_bureau:
            raise NotPermitted("the supervising bureau closes or reopens it", code="not_your_bureau")
        if s.status != "corrected":
            raise InvalidTransition(f"a {s.status} supervision cannot be {action}d")
        s.status, s.closed_at = ("closed", now) if action == "close" else ("open", None)
    s.version += 1
    s.updated_at = now
    await session.flush()
    await audit.record(session, action=f"supervision.{action}", entity_type="supervision", entity_id=str(s.id),
                       region_code=s.region_code, before=before, after=supervision_public(s).model_dump(mode="json"))
    return s


def supervisions_query(scope: Scope, region: str | None, status: str | None) -> Any:
    stmt = select(Supervision)
    if region is not None:
        stmt = stmt.where(scope.inside(col(Supervision.region_code), region))
    if status is not None:
        stmt = stmt.where(Supervision.status == status)
    return stmt.order_by(col(Supervision.created_at).desc(), col(Supervision.id).desc())


# ---- acceptance -------------------------------------------------------------------------------

def acceptance_public(a: Acceptance) -> AcceptancePublic:
    return AcceptancePublic.model_validate(a, from_attributes=True)


async def create_acceptance(session: AsyncSession, *, scope: Scope, data: AcceptanceCreate) -> Acceptance:
    """A province's verdict on one of its cities, with the campaign's figures for the city as they
    stood at acceptance (snapshotted); one per campaign and city."""
    if scope.principal_type != "user" or Role.leader not in scope.roles or scope.level is not Level.provincial:
        raise NotPermitted("a provincial bureau's leader accepts its cities", code="role_not_permitted")
    scope.require_region(data.region_code)
    if level_of(data.region_code) is not Level.city:
        raise Unprocessable(f"{data.region_code} is not a city", code="not_a_city")
    cid = await _campaign_id(session, data.campaign_id)
    if (await session.execute(select(Acceptance.id).where(Acceptance.campaign_id == cid,
                                                          Acceptance.region_code == data.region_code))).first():
        raise Conflict(f"city {data.region_code} was already accepted in this campaign", code="already_accepted")
    board = await campaign_service.dashboard(session, scope=scope, campaign_id=cid, region=data.region_code)
    a = Acceptance(campaign_id=cid, region_code=data.region_code, accepting_bureau=scope.region_code,
                   verdict=data.verdict.value, score=data.score, findings=data.findings,
                   spot_checks=data.spot_checks.model_dump() if data.spot_checks else None,
                   figures=[t.model_dump(mode="json") for t in board.targets], accepted_on=data.accepted_on,
                   created_by=scope.principal_id)
    session.add(a)
    await session.flush()
    await audit.record(session, action="acceptance.create", entity_type="acceptance", entity_id=str(a.id),
                       region_code=a.region_code, after=acceptance_public(a).model_dump(mode="json"))
    return a


def acceptances_query(scope: Scope, campaign_id: uuid.UUID | None) -> Any:
    stmt = select(Acceptance)
    if campaign_id is not None:
        stmt = stmt.where(Acceptance.campaign_id == campaign_id)
    return stmt.order_by(col(Acceptance.region_code), col(Acceptance.id))
