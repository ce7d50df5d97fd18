"""/api/public/v1: disclosed records for the public, without authentication and without personal
data, rate limited per client address."""

from __future__ import annotations

import time
import uuid
from datetime import date, datetime
from typing import Annotated, Any

from fastapi import Depends, Query, Request
from limits import parse, storage, strategies
from pydantic import BaseModel
from sqlmodel import col, select

from app.deps import SessionDep, SettingsDep
from app.errors import RateLimited, problem_responses
from app.models.case import BadRecord, CaseKind
from app.models.common import RegionCode
from app.models.enterprise import Enterprise
from app.models.recall import Recall, RecallStatus
from app.pagination import Page, PageDep, paginate
from app.routers import open_router
from app.routing import autocommit_reads
from app.scope import region_condition
from app.services import license as license_service
from app.services import recall as recall_service

# `limits` (the library behind slowapi): a moving window per client address, in this process's memory.
# With several workers or replicas each counts on its own, so the effective limit is that many times
# higher; put the hard limit in the reverse proxy and keep this one as the service's own floor.
_storage = storage.MemoryStorage()
_limiter = strategies.MovingWindowRateLimiter(_storage)


async def public_rate_limit(request: Request, settings: SettingsDep) -> None:
    item = parse(settings.public_rate_limit)
    who = request.client.host if request.client else "unknown"
    if not _limiter.hit(item, "public", who):
        reset, _ = _limiter.get_window_stats(item, "public", who)
        retry = max(1, int(reset - time.time()) + 1)
        raise RateLimited(f"at most {settings.public_rate_limit} requests per client to the public API; retry later",
                          headers={"Retry-After": str(retry)})


def reset_rate_limits() -> None:
    _storage.reset()


router = open_router(prefix="/api/public/v1", tags=["public"], dependencies=[Depends(public_rate_limit)])


class PublicPenalty(BaseModel):
    type: str
    amount: str | None = None
    legal_basis: str


class PublicBadRecord(BaseModel):
    """A published bad record: the enterprise (a legal person, public by law) and the penalties; no
    natural person's name, no officer, no internal ids beyond the record's own."""

    id: uuid.UUID
    enterprise_name: str
    uscc: str
    region_code: str
    violation: CaseKind
    penalties: list[PublicPenalty]
    decided_at: datetime
    published_at: datetime


def _public(r: BadRecord) -> PublicBadRecord:
    return PublicBadRecord(id=r.id, enterprise_name=r.enterprise_name, uscc=r.uscc, region_code=r.region_code,
                           violation=r.violation, decided_at=r.decided_at, published_at=r.published_at,
                           penalties=[PublicPenalty(type=p["type"], amount=p.get("amount"),
                                                    legal_basis=p["legal_basis"]) for p in r.penalties])


class PublicRecall(BaseModel):
    """A recall as the public sees it: the product, its batches and hazard, how far the recovery is."""

    id: uuid.UUID
    enterprise_name: str
    product: str
    batches: list[str]
    hazard: str
    mode: str
    region_code: str
    units_sold: int
    units_recalled: int
    recovery_rate: float
    deadline: date
    status: str
    created_at: datetime


@router.get("/recalls", response_model=Page[PublicRecall], responses=problem_responses(422, 429))
@autocommit_reads
async def recalls(
    session: SessionDep, page: PageDep,
    region: Annotated[RegionCode | None, Query(description="inside this region")] = None,
    status: RecallStatus | None = None,
) -> Page[Any]:
    """Recalls, newest first (cancelled ones are not listed): the product, batches, hazard and the
    recovery so far. No authentication; rate limited per client (429 with `Retry-After`)."""
    stmt = (select(Recall, Enterprise.name).join(Enterprise, col(Enterprise.id) == col(Recall.enterprise_id))
            .where(col(Recall.status) != RecallStatus.cancelled).execution_options(unscoped=True))
    if region is not None:
        stmt = stmt.where(region_condition(col(Recall.region_code), region))
    if status is not None:
        stmt = stmt.where(recall_service.status_condition(status, license_service.today()))
    items, nxt = await paginate(session, stmt.order_by(col(Recall.created_at).desc(), col(Recall.id).desc()), page,
                                rows=True)
    out = []
    for r, name in items:
        view = recall_service.to_public(r)
        out.append(PublicRecall(id=r.id, enterprise_name=name, product=r.product, batches=list(r.batches),
                                hazard=r.hazard, mode=r.mode.value, region_code=r.region_code, units_sold=r.units_sold,
                                units_recalled=r.units_recalled, recovery_rate=view.recovery_rate,
                                deadline=r.deadline, status=view.status.value, created_at=r.created_at))
    return Page[PublicRecall](items=out, next_cursor=nxt)


@router.get("/bad-records", response_model=Page[PublicBadRecord], responses=problem_responses(422, 429))
@autocommit_reads
async def bad_records(
    session: SessionDep, page: PageDep,
    region: Annotated[RegionCode | None, Query(description="inside this region")] = None,
    uscc: Annotated[str | None, Query(min_length=18, max_length=18)] = None,
) -> Page[Any]:
    """Published bad records (不良记录) of licensed producers, newest first. No authentication; rate
    limited per client (429 with `Retry-After`)."""
    stmt = select(BadRecord).where(col(BadRecord.published)).execution_options(unscoped=True)  # public by design
    if region is not None:
        stmt = stmt.where(region_condition(col(BadRecord.region_code), region))
    if uscc is not None:
        stmt = stmt.where(BadRecord.uscc == uscc.upper())
    items, nxt = await paginate(session, stmt.order_by(col(BadRecord.published_at).desc(), col(BadRecord.id).desc()),
                                page)
    return Page[PublicBadRecord](items=[_public(r) for r in items], next_cursor=nxt)
