"""/api/v1/recalls: recalls of sold unsafe products and their progress, per batch and per region."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import Query, Response

from app.concurrency import IfMatchDep, set_etag
from app.deps import ScopeDep, SessionDep
from app.errors import problem_responses
from app.models.common import RegionCode
from app.models.recall import ProgressCreate, ProgressPublic, RecallCreate, RecallPublic, RecallStatus, RecallUpdate
from app.pagination import Page, PageDep, paginate
from app.routers import secured_router
from app.routing import autocommit_reads
from app.services import recall as recall_service

router = secured_router(machine_scope="recalls:read", prefix="/api/v1/recalls", tags=["recalls"])


async def _view(session: SessionDep, recall: recall_service.Recall, response: Response) -> RecallPublic:
    set_etag(response, recall.version)
    return (await recall_service.to_public_many(session, [recall]))[0]


@router.post("", status_code=201, response_model=RecallPublic, responses=problem_responses(401, 403, 404, 409, 422))
async def create_recall(body: RecallCreate, scope: ScopeDep, session: SessionDep, response: Response) -> RecallPublic:
    """Open a recall (ordered 责令 or voluntary 主动) of a product of an enterprise inside your
    jurisdiction (inspectors and officers), linked to the spot check (`inspection_id`) and the case
    (`case_id`) that caused it. `units_sold` cannot exceed `units_made`; an optional `distribution`
    says where the units were sold (per region, and per batch when known) and must add up to
    `units_sold`: recovery is then tracked per region and per batch."""
    recall, _ = await recall_service.create(session, scope=scope, data=body)
    response.headers["Location"] = f"/api/v1/recalls/{recall.id}"
    return await _view(session, recall, response)


@router.get("", response_model=Page[RecallPublic], responses=problem_responses(401, 403, 422))
@autocommit_reads
async def list_recalls(
    scope: ScopeDep, session: SessionDep, page: PageDep,
    region: Annotated[RegionCode | None, Query(description="inside this region (403 outside yours)")] = None,
    status: RecallStatus | None = None, enterprise_id: uuid.UUID | None = None, case_id: uuid.UUID | None = None,
) -> Page[RecallPublic]:
    """Recalls inside your jurisdiction, newest first; `status=overdue` includes open recalls past their
    deadline at once."""
    stmt = recall_service.list_query(scope, region=region, status=status, enterprise_id=enterprise_id,
                                     case_id=case_id)
    items, nxt = await paginate(session, stmt, page)
    return Page[RecallPublic](items=await recall_service.to_public_many(session, items), next_cursor=nxt)


@router.get("/{recall_id}", response_model=RecallPublic, responses=problem_responses(401, 404))
@autocommit_reads
async def get_recall(recall_id: uuid.UUID, scope: ScopeDep, session: SessionDep, response: Response) -> RecallPublic:
    """One recall with its recovery rate overall, per batch (`by_batch`) and per region where the units
    were sold (`by_region`)."""
    return await _view(session, await recall_service.get(session, recall_id=recall_id), response)


@router.patch("/{recall_id}", response_model=RecallPublic,
              responses=problem_responses(401, 403, 404, 409, 412, 422, 428))
async def update_recall(recall_id: uuid.UUID, body: RecallUpdate, if_match: IfMatchDep, scope: ScopeDep,
                        session: SessionDep, response: Response) -> RecallPublic:
    """Correct the hazard, deadline, units or distribution, or cancel (`status: cancelled` with a
    `cancel_reason`); needs `If-Match`. The units can never fall below what was already recalled."""
    recall = await recall_service.update_recall(session, scope=scope, recall_id=recall_id, data=body,
                                                expected_version=if_match)
    return await _view(session, recall, response)


@router.post("/{recall_id}/progress", status_code=201, response_model=RecallPublic,
             responses=problem_responses(401, 403, 404, 409, 422))
async def report_progress(recall_id: uuid.UUID, body: ProgressCreate, scope: ScopeDep, session: SessionDep,
                          response: Response) -> RecallPublic:
    """Report units recovered since the last report, optionally where (`region_code`, where they were
    sold) and of which `batch`. The total never goes beyond `units_sold` (422 `exceeds_units_sold`),
    nor a region's (and batch's) beyond what the distribution says was sold there
    (`exceeds_units_sold_in_region`). At 100% the recall is `completed`."""
    recall = await recall_service.add_progress(session, scope=scope, recall_id=recall_id, data=body)
    return await _view(session, recall, response)


@router.get("/{recall_id}/progress", response_model=Page[ProgressPublic], responses=problem_responses(401, 404))
@autocommit_reads
async def list_progress(recall_id: uuid.UUID, scope: ScopeDep, session: SessionDep,
                        page: PageDep) -> Page[ProgressPublic]:
    """The progress reports of a recall, oldest first."""
    await recall_service.get(session, recall_id=recall_id)
    items, nxt = await paginate(session, recall_service.progress_query(recall_id), page)
    return Page[ProgressPublic](items=[recall_service.progress_public(p) for p in items], next_cursor=nxt)
