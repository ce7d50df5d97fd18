"""/api/v1/key-regions: key regions (重点地区), their indicator figures and designations."""

from __future__ import annotations

from typing import Annotated

from fastapi import Query

from app.deps import ScopeDep, SessionDep
from app.errors import problem_responses
from app.models.common import Day, RegionCode
from app.models.focus import KeyRegionCreate, KeyRegionCriterion, KeyRegionOverview, KeyRegionPublic
from app.pagination import Page, PageDep, paginate
from app.routers import secured_router
from app.services import key_region as key_region_service
from app.services import oversight as oversight_service

router = secured_router(machine_scope="enterprises:read", prefix="/api/v1", tags=["focus lists"])


@router.get("/key-regions", response_model=KeyRegionOverview, responses=problem_responses(401, 403, 422))
async def key_regions(
    scope: ScopeDep, session: SessionDep,
    region: Annotated[RegionCode | None, Query(description="default: your region (403 outside it)")] = None,
    since: Annotated[Day | None, Query(description="count samples and cases from this date "
                                                    "(default: two years ago)")] = None,
) -> KeyRegionOverview:
    """The three key-region criteria's figures for the region and each child region, computed from
    the records: (1) `unlicensed_production`: producers without a valid licence / producers;
    (2) `low_pass_rate`: passing samples / samples of spot checks since `since` of producers that
    hold a valid licence; (3) `counterfeiting`: counterfeit cases opened since `since`. Each region
    says whether it is `designated` and by whom (national and provincial designations are both
    listed)."""
    return await key_region_service.overview(session, scope=scope, region=region, since=since)


@router.post("/key-regions", status_code=201, response_model=KeyRegionPublic,
             responses=problem_responses(401, 403, 409, 422))
async def designate_key_region(body: KeyRegionCreate, scope: ScopeDep, session: SessionDep) -> KeyRegionPublic:
    """Designate a key region inside your jurisdiction on one or more criteria, with the reason
    (leaders and admins of national and provincial bureaus; audited). `designated_by` is your
    bureau; the figures at the time are kept with the designation. A bureau designates a region
    once (409 `already_designated`); a national and a provincial designation of the same region
    are kept side by side."""
    k = await key_region_service.designate(session, scope=scope, data=body)
    return key_region_service.to_public(k)


@router.get("/key-regions/designations", response_model=Page[KeyRegionPublic],
            responses=problem_responses(401, 403, 422))
async def list_designations(
    scope: ScopeDep, session: SessionDep, page: PageDep,
    region: Annotated[RegionCode | None, Query(description="inside this region (403 outside yours)")] = None,
    criterion: KeyRegionCriterion | None = None,
) -> Page[KeyRegionPublic]:
    """Key-region designations inside your jurisdiction, newest first (the published lists), each with
    its region's rectification plans and how many of their targets are met now."""
    stmt = await key_region_service.designations_query(scope=scope, region=region, criterion=criterion)
    items, nxt = await paginate(session, stmt, page)
    views = [key_region_service.to_public(k) for k in items]
    for v in views:  # each key region's progress against its plans, read live
        v.plans = await oversight_service.plan_summaries(session, scope, v.region_code)
    return Page[KeyRegionPublic](items=views, next_cursor=nxt)
