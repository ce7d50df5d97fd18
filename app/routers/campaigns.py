"""/api/v1/campaigns: campaigns, their targets per region, the live dashboard and the sweep's gaps."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import Query, Response
from sqlmodel import col, select

from app.deps import ScopeDep, SessionDep
from app.errors import problem_responses
from app.models.campaign import Campaign, CampaignCreate, CampaignPublic, Dashboard, SweepGap, TargetsSet
from app.models.common import RegionCode
from app.pagination import Page, PageDep, paginate
from app.routers import secured_router
from app.routing import autocommit_reads
from app.services import campaign as campaign_service

router = secured_router(machine_scope="reports:read", prefix="/api/v1/campaigns", tags=["campaigns"])


@router.get("", response_model=Page[CampaignPublic], responses=problem_responses(401, 403))
@autocommit_reads
async def list_campaigns(scope: ScopeDep, session: SessionDep, page: PageDep) -> Page[CampaignPublic]:
    """Campaigns, newest first (the 2007 campaign is seeded)."""
    items, nxt = await paginate(session, select(Campaign).order_by(col(Campaign.created_at).desc(),
                                                                   col(Campaign.id).desc()), page)
    out = [campaign_service.to_public(c, await campaign_service.targets_of(session, c.id)) for c in items]
    return Page[CampaignPublic](items=out, next_cursor=nxt)


@router.post("", status_code=201, response_model=CampaignPublic, responses=problem_responses(401, 403, 409, 422))
async def create_campaign(body: CampaignCreate, scope: ScopeDep, session: SessionDep,
                          response: Response) -> CampaignPublic:
    """A new national campaign (national leaders and admins): its key categories (sub-products
    included), its period and national targets (the defaults of DOMAIN.md §4 for those not given).
    Its counters are built from the records at once."""
    c = await campaign_service.create(session, scope=scope, data=body)
    response.headers["Location"] = f"/api/v1/campaigns/{c.id}"
    return campaign_service.to_public(c, await campaign_service.targets_of(session, c.id))


@router.get("/{campaign_id}", response_model=CampaignPublic,
            responses=problem_responses(401, 403, 404))
@autocommit_reads
async def get_campaign(campaign_id: uuid.UUID, scope: ScopeDep, session: SessionDep) -> CampaignPublic:
    c = await campaign_service.get(session, campaign_id)
    return campaign_service.to_public(c, await campaign_service.targets_of(session, c.id))


@router.post("/{campaign_id}/targets", responses=problem_responses(401, 403, 404, 422))
async def set_targets(campaign_id: uuid.UUID, body: TargetsSet, scope: ScopeDep,
                      session: SessionDep) -> dict[str, Any]:
    """Set a region's own targets (provincial and national leaders or admins, for a region inside
    their jurisdiction); regions below inherit them unless they set their own. Answers the region's
    targets as now set."""
    targets = await campaign_service.set_targets(session, scope=scope, campaign_id=campaign_id,
                                                 region_code=body.region_code, targets=body.targets)
    return {"region_code": body.region_code, "targets": targets}


@router.get("/{campaign_id}/dashboard", response_model=Dashboard,
            responses=problem_responses(401, 403, 404, 422))
@autocommit_reads
async def dashboard(
    campaign_id: uuid.UUID, scope: ScopeDep, session: SessionDep,
    region: Annotated[RegionCode | None, Query(description="default: your own region; 403 outside it")] = None,
) -> Dashboard:
    """Every target of DOMAIN.md §4 for the region and each child region: `figure` = `numerator` /
    `denominator`, the `target` that applies there (the nearest bureau's own, else the national one)
    and whether it is `met`. Computed live from counters kept in the writing transactions (and served
    from a per-worker copy while those counters and the targets are unchanged)."""
    raw = await campaign_service.dashboard_json(session, scope=scope, campaign_id=campaign_id, region=region)
    return Response(raw, media_type="application/json")  # type: ignore[return-value]


@router.get("/{campaign_id}/sweep-gaps", response_model=Page[SweepGap],
            responses=problem_responses(401, 403, 404, 422))
@autocommit_reads
async def sweep_gaps(
    campaign_id: uuid.UUID, scope: ScopeDep, session: SessionDep, page: PageDep,
    region: Annotated[RegionCode | None, Query(description="inside this region (403 outside yours)")] = None,
) -> Page[SweepGap]:
    """Producers in the campaign's key categories not yet inspected in the campaign, by region."""
    await campaign_service.get(session, campaign_id)
    items, nxt = await paginate(session, campaign_service.sweep_gaps_query(scope, campaign_id=campaign_id,
                                                                           region=region), page, rows=True)
    return Page[SweepGap](items=[SweepGap(enterprise_id=ce.enterprise_id, region_code=ce.region_code, name=name,
                                          uscc=uscc, licensed=licensed) for ce, name, uscc, licensed in items],
                          next_cursor=nxt)
