"""/api/v1/rectification-plans, /api/v1/supervisions and /api/v1/acceptances."""

from __future__ import annotations

import uuid
from typing import Annotated, Literal

from fastapi import Query, Response

from app.concurrency import IfMatchDep, set_etag
from app.deps import ScopeDep, SessionDep
from app.errors import problem_responses
from app.models.common import RegionCode
from app.models.oversight import (
    AcceptanceCreate,
    AcceptancePublic,
    CorrectionBody,
    PlanCreate,
    PlanPublic,
    PlanUpdate,
    ProgressNote,
    SupervisionCreate,
    SupervisionPublic,
)
from app.pagination import Page, PageDep, paginate
from app.routers import secured_router
from app.routing import autocommit_reads
from app.services import oversight as service

router = secured_router(machine_scope="reports:read", tags=["oversight"])
REGION = Annotated[RegionCode | None, Query(description="inside this region (403 outside yours)")]


# ---- rectification plans ----------------------------------------------------------------------

@router.post("/api/v1/rectification-plans", status_code=201, response_model=PlanPublic,
             responses=problem_responses(401, 403, 404, 422))
async def create_plan(body: PlanCreate, scope: ScopeDep, session: SessionDep, response: Response) -> PlanPublic:
    """A key region's rectification plan (区域整治, leaders and admins): reported to the local government,
    led by it, with a responsible person, the bureaus organised under it, and targets with deadlines
    (dashboard keys). Its `progress` is read live from the campaign dashboard of the region: `met`,
    `on_track` (the figure has come as far as the time has), `behind`, or `overdue`."""
    p = await service.create_plan(session, scope=scope, data=body)
    response.headers["Location"] = f"/api/v1/rectification-plans/{p.id}"
    set_etag(response, p.version)
    return await service.plan_public(session, scope, p)


@router.get("/api/v1/rectification-plans", response_model=Page[PlanPublic],
            responses=problem_responses(401, 403, 422))
@autocommit_reads
async def list_plans(scope: ScopeDep, session: SessionDep, page: PageDep, region: REGION = None) -> Page[PlanPublic]:
    items, nxt = await paginate(session, service.plans_query(scope, region), page)
    return Page[PlanPublic](items=[await service.plan_public(session, scope, p) for p in items], next_cursor=nxt)


@router.get("/api/v1/rectification-plans/{plan_id}", response_model=PlanPublic,
            responses=problem_responses(401, 404))
@autocommit_reads
async def get_plan(plan_id: uuid.UUID, scope: ScopeDep, session: SessionDep, response: Response) -> PlanPublic:
    p = await service.get_plan(session, plan_id)
    set_etag(response, p.version)
    return await service.plan_public(session, scope, p)


@router.patch("/api/v1/rectification-plans/{plan_id}", response_model=PlanPublic,
              responses=problem_responses(401, 403, 404, 409, 412, 422, 428))
async def update_plan(plan_id: uuid.UUID, body: PlanUpdate, if_match: IfMatchDep, scope: ScopeDep,
                      session: SessionDep, response: Response) -> PlanPublic:
    """Move the deadline, change the responsible person, or complete or cancel the plan; `If-Match`."""
    p = await service.update_plan(session, scope=scope, plan_id=plan_id, data=body, expected_version=if_match)
    set_etag(response, p.version)
    return await service.plan_public(session, scope, p)


@router.post("/api/v1/rectification-plans/{plan_id}/progress", response_model=PlanPublic,
             responses=problem_responses(401, 403, 404, 409, 422))
async def plan_progress(plan_id: uuid.UUID, body: ProgressNote, scope: ScopeDep, session: SessionDep,
                        response: Response) -> PlanPublic:
    """Add a dated progress note (what was done) beside the live figures."""
    p = await service.add_note(session, scope=scope, plan_id=plan_id, data=body)
    set_etag(response, p.version)
    return await service.plan_public(session, scope, p)


# ---- supervision ------------------------------------------------------------------------------

@router.post("/api/v1/supervisions", status_code=201, response_model=SupervisionPublic,
             responses=problem_responses(401, 403, 422))
async def create_supervision(body: SupervisionCreate, scope: ScopeDep, session: SessionDep,
                             response: Response) -> SupervisionPublic:
    """Supervise (督察) a bureau below yours (leaders and officers): findings, a correction deadline
    (限期整改) and the people held accountable (责任追究). Past the deadline while open it is `overdue`."""
    s = await service.create_supervision(session, scope=scope, data=body)
    response.headers["Location"] = f"/api/v1/supervisions/{s.id}"
    set_etag(response, s.version)
    return service.supervision_public(s)


@router.get("/api/v1/supervisions", response_model=Page[SupervisionPublic],
            responses=problem_responses(401, 403, 422))
@autocommit_reads
async def list_supervisions(scope: ScopeDep, session: SessionDep, page: PageDep, region: REGION = None,
                            status: Literal["open", "corrected", "closed"] | None = None) -> Page[SupervisionPublic]:
    """Supervisions of bureaus inside your jurisdiction (a bureau sees those of itself)."""
    items, nxt = await paginate(session, service.supervisions_query(scope, region, status), page)
    return Page[SupervisionPublic](items=[service.supervision_public(s) for s in items], next_cursor=nxt)


@router.get("/api/v1/supervisions/{supervision_id}", response_model=SupervisionPublic,
            responses=problem_responses(401, 404))
@autocommit_reads
async def get_supervision(supervision_id: uuid.UUID, scope: ScopeDep, session: SessionDep,
                          response: Response) -> SupervisionPublic:
    s = await service.get_supervision(session, supervision_id)
    set_etag(response, s.version)
    return service.supervision_public(s)


@router.post("/api/v1/supervisions/{supervision_id}/actions/report_correction", response_model=SupervisionPublic,
             responses=problem_responses(401, 403, 404, 409, 412, 422, 428))
async def report_correction(supervision_id: uuid.UUID, body: CorrectionBody, if_match: IfMatchDep, scope: ScopeDep,
                            session: SessionDep, response: Response) -> SupervisionPublic:
    """The supervised bureau reports its correction (open → corrected)."""
    s = await service.supervision_action(session, scope=scope, sid=supervision_id, action="report_correction",
                                         report=body.report, expected_version=if_match)
    set_etag(response, s.version)
    return service.supervision_public(s)


@router.post("/api/v1/supervisions/{supervision_id}/actions/{action}", response_model=SupervisionPublic,
             responses=problem_responses(401, 403, 404, 409, 412, 428))
async def close_or_reopen(supervision_id: uuid.UUID, action: Literal["close", "reopen"], if_match: IfMatchDep,
                          scope: ScopeDep, session: SessionDep, response: Response) -> SupervisionPublic:
    """The supervising bureau accepts the correction (`close`) or finds it short (`reopen`)."""
    s = await service.supervision_action(session, scope=scope, sid=supervision_id, action=action, report=None,
                                         expected_version=if_match)
    set_etag(response, s.version)
    return service.supervision_public(s)


# ---- acceptance -------------------------------------------------------------------------------

@router.post("/api/v1/acceptances", status_code=201, response_model=AcceptancePublic,
             responses=problem_responses(401, 403, 404, 409, 422))
async def create_acceptance(body: AcceptanceCreate, scope: ScopeDep, session: SessionDep,
                            response: Response) -> AcceptancePublic:
    """A provincial leader records the province's verdict (验收) on one of its cities after the
    campaign: `passed`, `conditional` or `failed`, findings, the acceptance's own spot checks, and the
    campaign's figures for the city as they stood (snapshotted). One per campaign and city (409)."""
    a = await service.create_acceptance(session, scope=scope, data=body)
    response.headers["Location"] = f"/api/v1/acceptances/{a.id}"
    return service.acceptance_public(a)


@router.get("/api/v1/acceptances", response_model=Page[AcceptancePublic],
            responses=problem_responses(401, 403))
@autocommit_reads
async def list_acceptances(scope: ScopeDep, session: SessionDep, page: PageDep,
                           campaign_id: uuid.UUID | None = None) -> Page[AcceptancePublic]:
    items, nxt = await paginate(session, service.acceptances_query(scope, campaign_id), page)
    return Page[AcceptancePublic](items=[service.acceptance_public(a) for a in items], next_cursor=nxt)
