"""Recalls (DOMAIN.md §7): created against an enterprise (linked to the spot check and the case that
caused them), progress reported over time per region and batch, the total never beyond the units
sold; `completed` at 100% and `overdue` past the deadline without a manual step."""

from __future__ import annotations

import uuid
from collections import defaultdict
from datetime import date, timedelta
from typing import Any

from sqlalchemy import Select, func, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from app import policy
from app.concurrency import check_version
from app.errors import Conflict, Unprocessable
from app.models.case import PenaltyCase
from app.models.common import utcnow
from app.models.enterprise import Enterprise
from app.models.inspection import Inspection
from app.models.recall import (
    BatchBreakdown,
    ProgressCreate,
    ProgressPublic,
    Recall,
    RecallCreate,
    RecallProgress,
    RecallPublic,
    RecallStatus,
    RecallUpdate,
    RegionBreakdown,
    _check_units,
)
from app.scope import Scope, get_linked, get_visible
from app.services import audit, reference, versioned
from app.services import license as license_service

ACTIVE = (RecallStatus.open, RecallStatus.overdue)


def effective_status(r: Recall, day: date | None = None) -> RecallStatus:
    """`overdue` the day after the deadline, even before the job has recorded it."""
    if r.status is RecallStatus.open and r.deadline < (day or license_service.today()):
        return RecallStatus.overdue
    return RecallStatus(r.status)


def _rate(recalled: int, sold: int | None) -> float | None:
    return round(recalled / sold, 4) if sold else None


def to_public(r: Recall, recalled_by: dict[tuple[str | None, str | None], int] | None = None) -> RecallPublic:
    """``recalled_by`` maps (region, batch) of the progress reports to units recovered."""
    recalled_by = recalled_by or {}
    batch_sold: dict[str, int] = defaultdict(int)
    region_sold: dict[str, int] = defaultdict(int)
    for d in r.distribution:
        region_sold[d["region_code"]] += d["units_sold"]
        if d.get("batch"):
            batch_sold[d["batch"]] += d["units_sold"]
    batch_got: dict[str, int] = defaultdict(int)
    region_got: dict[str, int] = defaultdict(int)
    for (region, batch), n in recalled_by.items():
        if batch:
            batch_got[batch] += n
        if region:
            region_got[region] += n
    single = r.batches[0] if len(r.batches) == 1 else None
    by_batch = [BatchBreakdown(batch=b, units_sold=batch_sold.get(b, r.units_sold if b == single else 0),
                               units_recalled=batch_got.get(b, r.units_recalled if b == single else 0),
                               recovery_rate=None) for b in r.batches]
    for x in by_batch:
        x.recovery_rate = _rate(x.units_recalled, x.units_sold)
    regions = sorted(set(region_sold) | set(region_got))
    by_region = [RegionBreakdown(region_code=c, units_sold=region_sold.get(c, 0), units_recalled=region_got.get(c, 0),
                                 recovery_rate=_rate(region_got.get(c, 0), region_sold.get(c, 0))) for c in regions]
    return RecallPublic(
        id=r.id, enterprise_id=r.enterprise_id, case_id=r.case_id, inspection_id=r.inspection_id,
        region_code=r.region_code, product=r.product, batches=list(r.batches), hazard=r.hazard, mode=r.mode,
        units_made=r.units_made, units_sold=r.units_sold, distribution=r.distribution,
        units_recalled=r.units_recalled, recovery_rate=_rate(r.units_recalled, r.units_sold) or 0.0,
        by_batch=by_batch, by_region=by_region, deadline=r.deadline, status=effective_status(r),
        cancel_reason=r.cancel_reason, completed_at=r.completed_at, version=r.version, created_at=r.created_at,
        updated_at=r.updated_at)


async def recalled_by(session: AsyncSession, ids: list[uuid.UUID]) -> dict[uuid.UUID, dict[Any, int]]:
    out: dict[uuid.UUID, dict[Any, int]] = {i: {} for i in ids}
    if ids:
        rows = await session.execute(
            select(RecallProgress.recall_id, RecallProgress.sold_region, RecallProgress.batch,
                   func.sum(RecallProgress.units_recalled))
            .where(col(RecallProgress.recall_id).in_(ids))
            .group_by(col(RecallProgress.recall_id), col(RecallProgress.sold_region), col(RecallProgress.batch)))
        for rid, region, batch, n in rows:
            out[rid][(region, batch)] = int(n)
    return out


async def to_public_many(session: AsyncSession, items: list[Recall]) -> list[RecallPublic]:
    got = await recalled_by(session, [r.id for r in items])
    return [to_public(r, got[r.id]) for r in items]


def _snapshot(r: Recall) -> dict[str, Any]:
    return to_public(r).model_dump(mode="json", exclude={"by_batch", "by_region", "created_at", "updated_at"})


def _require_writer(scope: Scope) -> None:
    policy.require(policy.can_record_inspections(scope), code="role_not_permitted")


async def create(session: AsyncSession, *, scope: Scope, data: RecallCreate) -> tuple[Recall, bool]:
    _require_writer(scope)
    existing = await versioned.replayed(
        session, Recall, data.id, scope=scope, what="recall",
        same=lambda r: (r.enterprise_id, r.product, r.units_sold) == (data.enterprise_id, data.product,
                                                                      data.units_sold))
    if existing is not None:
        return existing, False
    enterprise = await get_visible(session, Enterprise, data.enterprise_id, what="enterprise")
    if data.case_id is not None:
        await get_linked(session, PenaltyCase, data.case_id, what="case", enterprise_id=enterprise.id)
    if data.inspection_id is not None:
        await get_linked(session, Inspection, data.inspection_id, what="inspection", enterprise_id=enterprise.id)
    await _check_regions(session, [d.region_code for d in data.distribution])
    r = Recall(id=data.id or uuid.uuid4(), enterprise_id=enterprise.id, case_id=data.case_id,
               inspection_id=data.inspection_id, region_code=enterprise.region_code, product=data.product,
               batches=data.batches, hazard=data.hazard, mode=data.mode, units_made=data.units_made,
               units_sold=data.units_sold, distribution=[d.model_dump() for d in data.distribution],
               deadline=data.deadline, created_by=scope.principal_id)
    session.add(r)
    await session.flush()
    await audit.record(session, action="recall.create", entity_type="recall", entity_id=str(r.id),
                       region_code=r.region_code, after=_snapshot(r))
    return r, True


async def _check_regions(session: AsyncSession, codes: list[str]) -> None:
    for code in sorted(set(codes)):
        if not await reference.region_exists(session, code):
            raise Unprocessable(f"distribution region_code {code} is not a GB/T 2260 code", code="unknown_region")


async def get(session: AsyncSession, *, recall_id: uuid.UUID, for_update: bool = False) -> Recall:
    return await get_visible(session, Recall, recall_id, what="recall", for_update=for_update)


async def update_recall(session: AsyncSession, *, scope: Scope, recall_id: uuid.UUID, data: RecallUpdate,
                        expected_version: int) -> Recall:
    _require_writer(scope)
    r = await get(session, recall_id=recall_id, for_update=True)
    check_version(r.version, expected_version, current_body=_snapshot(r))
    changes = data.model_dump(exclude_unset=True)
    if not changes:
        return r
    if r.status in (RecallStatus.completed, RecallStatus.cancelled):
        raise Conflict(f"the recall is {r.status.value}; it no longer changes", code="recall_closed")
    if ("status" in changes) != ("cancel_reason" in changes):
        raise Unprocessable("cancelling takes status=cancelled with a cancel_reason", code="cancel_needs_reason")
    made = changes.get("units_made", r.units_made)
    sold = changes.get("units_sold", r.units_sold)
    dist = data.distribution if data.distribution is not None else None
    try:
        _check_units(made, sold, dist, list(r.batches))
    except ValueError as exc:
        raise Unprocessable(str(exc), code="inconsistent_units") from exc
    if dist is None and "units_sold" in changes and r.distribution and \
            sum(d["units_sold"] for d in r.distribution) != sold:
        raise Unprocessable("units_sold no longer matches the distribution; send both", code="inconsistent_units")
    if sold < r.units_recalled:
        raise Unprocessable(f"units_sold cannot go below the {r.units_recalled} units already recalled",
                            code="below_units_recalled")
    if dist is not None:
        await _check_regions(session, [d.region_code for d in dist])
        changes["distribution"] = [d.model_dump() for d in dist]
        problem = _over_caps(_caps(changes["distribution"]), (await recalled_by(session, [r.id]))[r.id])
        if problem:
            raise Unprocessable(f"{problem}: the distribution cannot say fewer were sold", code="below_units_recalled")
    before = _snapshot(r)
    if "status" in changes:
        changes["status"] = RecallStatus(changes["status"])
    for k, v in changes.items():
        setattr(r, k, v)
    _settle(r)
    r.version += 1
    r.updated_at = utcnow()
    await session.flush()
    await audit.record(session, action="recall.update", entity_type="recall", entity_id=str(r.id),
                       region_code=r.region_code, before=before, after=_snapshot(r))
    return r


def _caps(distribution: list[dict[str, Any]]) -> dict[tuple[str, str | None], int]:
    """Units sold per (region, batch) and per (region, None) = the region's total."""
    caps: dict[tuple[str, str | None], int] = defaultdict(int)
    for d in distribution:
        caps[(d["region_code"], None)] += d["units_sold"]
        if d.get("batch"):
            caps[(d["region_code"], d["batch"])] += d["units_sold"]
    return caps


def _over_caps(caps: dict[tuple[str, str | None], int], got: dict[tuple[str | None, str | None], int]) -> str | None:
    """The first region (or region and batch) where more was recalled than the distribution says was
    sold; None when every figure fits. Progress without a region counts only toward the total."""
    by_region: dict[str, int] = defaultdict(int)
    by_batch: dict[str, int] = defaultdict(int)
    for (region, batch), n in got.items():
        if region is not None:
            by_region[region] += n
        if batch is not None:
            by_batch[batch] += n
    for region, n in sorted(by_region.items()):
        if n > caps.get((region, None), 0):
            return f"{n} units recalled in {region} exceed the {caps.get((region, None), 0)} sold there"
    batch_caps: dict[str, int] = defaultdict(int)
    batched_regions = set()
    for (region, batch), n in caps.items():
        if batch is not None:
            batch_caps[batch] += n
            batched_regions.add(region)
    for batch, n in sorted(by_batch.items()):
        if batch_caps and n > batch_caps.get(batch, 0):
            return f"{n} units of batch {batch} recalled exceed the {batch_caps.get(batch, 0)} sold"
    for (region, batch), n in sorted(got.items(), key=str):
        if region in batched_regions and batch is not None and n > caps.get((region, batch), 0):
            return (f"{n} units of batch {batch} recalled in {region} exceed the {caps.get((region, batch), 0)} "
                    "sold there")
    return None


def _settle(r: Recall) -> None:
    """Completed at 100%; back to open or overdue otherwise (a correction of units_sold may reopen)."""
    if r.status is RecallStatus.cancelled:
        return
    if r.units_recalled >= r.units_sold:
        if r.status is not RecallStatus.completed:
            r.status, r.completed_at = RecallStatus.completed, utcnow()
    elif r.status is RecallStatus.completed:
        r.status, r.completed_at = RecallStatus.open, None
    if r.status is RecallStatus.open and r.deadline < license_service.today():
        r.status = RecallStatus.overdue
    elif r.status is RecallStatus.overdue and r.deadline >= license_service.today():  # the deadline was extended
        r.status = RecallStatus.open


async def add_progress(session: AsyncSession, *, scope: Scope, recall_id: uuid.UUID,
                       data: ProgressCreate) -> Recall:
    """Units recovered since the last report; the totals (overall, and per region and batch when the
    distribution says how many were sold there) never exceed what was sold (422, nothing stored)."""
    _require_writer(scope)
    r = await get(session, recall_id=recall_id, for_update=True)  # one report at a time per recall
    if r.status not in ACTIVE:
        raise Conflict(f"the recall is {r.status.value}; it takes no more progress", code="recall_closed")
    if data.as_of > license_service.today() + timedelta(days=1):
        raise Unprocessable("as_of lies in the future", code="as_of_in_future")
    if data.batch is not None and data.batch not in r.batches:
        raise Unprocessable(f"batch {data.batch} is not one of the recall's batches", code="unknown_batch")
    total = r.units_recalled + data.units_recalled
    if total > r.units_sold:
        raise Unprocessable(f"{total} units recalled would exceed the {r.units_sold} sold "
                            f"({r.units_sold - r.units_recalled} still out)", code="exceeds_units_sold")
    caps = _caps(r.distribution)
    if caps and (data.region_code is not None or data.batch is not None):
        if data.region_code is not None and (data.region_code, None) not in caps:
            raise Unprocessable(f"the distribution sold nothing in {data.region_code}",
                                code="region_not_in_distribution")
        got = dict((await recalled_by(session, [r.id]))[r.id])
        key = (data.region_code, data.batch)
        got[key] = got.get(key, 0) + data.units_recalled
        problem = _over_caps(caps, got)
        if problem:
            raise Unprocessable(problem, code="exceeds_units_sold_in_region")
    p = RecallProgress(recall_id=r.id, region_code=r.region_code, units_recalled=data.units_recalled,
                       as_of=data.as_of, note=data.note, sold_region=data.region_code, batch=data.batch,
                       created_by=scope.principal_id)
    session.add(p)
    before = _snapshot(r)
    r.units_recalled = total
    _settle(r)
    r.version += 1
    r.updated_at = utcnow()
    await session.flush()
    await audit.record(session, action="recall.progress", entity_type="recall", entity_id=str(r.id),
                       region_code=r.region_code, before=before,
                       after=_snapshot(r) | {"progress": ProgressPublic(
                           id=p.id, units_recalled=p.units_recalled, as_of=p.as_of, note=p.note,
                           region_code=p.sold_region, batch=p.batch, created_at=p.created_at).model_dump(mode="json")})
    return r


def progress_query(recall_id: uuid.UUID) -> Select[Any]:
    return select(RecallProgress).where(RecallProgress.recall_id == recall_id).order_by(
        col(RecallProgress.created_at), col(RecallProgress.id))


def progress_public(p: RecallProgress) -> ProgressPublic:
    return ProgressPublic(id=p.id, units_recalled=p.units_recalled, as_of=p.as_of, note=p.note,
                          region_code=p.sold_region, batch=p.batch, created_at=p.created_at)


def list_query(scope: Scope, *, region: str | None, status: RecallStatus | None, enterprise_id: uuid.UUID | None,
               case_id: uuid.UUID | None) -> Select[Any]:
    stmt = select(Recall)
    if region is not None:
        stmt = stmt.where(scope.inside(col(Recall.region_code), region))
    if enterprise_id is not None:
        stmt = stmt.where(Recall.enterprise_id == enterprise_id)
    if case_id is not None:
        stmt = stmt.where(Recall.case_id == case_id)
    if status is not None:
        stmt = stmt.where(status_condition(status, license_service.today()))
    return stmt.order_by(col(Recall.created_at).desc(), col(Recall.id).desc())


def status_condition(status: RecallStatus, day: date) -> Any:
    """The effective status in SQL (an open recall past its deadline is overdue before the job runs)."""
    s, deadline = col(Recall.status), col(Recall.deadline)
    if status is RecallStatus.open:
        return (s == RecallStatus.open) & (deadline >= day)
    if status is RecallStatus.overdue:
        return (s == RecallStatus.overdue) | ((s == RecallStatus.open) & (deadline < day))
    return s == status


async def mark_overdue(session: AsyncSession, *, day: date | None = None) -> int:
    """Background job: record `overdue` on open recalls past their deadline (audited)."""
    day = day or license_service.today()
    due = (select(Recall.id).where(col(Recall.status) == RecallStatus.open, col(Recall.deadline) < day)
           .limit(1000).with_for_update(skip_locked=True))
    rows = (await session.execute(
        update(Recall).where(col(Recall.id).in_(due.scalar_subquery()))
        .values(status=RecallStatus.overdue, version=col(Recall.version) + 1, updated_at=utcnow())
        .returning(col(Recall.id), col(Recall.region_code), col(Recall.deadline), col(Recall.version))
        .execution_options(synchronize_session=False, unscoped=True))).all()
    for rid, region_code, deadline, version in rows:
        await audit.record(session, action="recall.overdue", entity_type="recall", entity_id=str(rid),
                           region_code=region_code, actor_name="recall deadline job", before={"status": "open"},
                           after={"status": "overdue", "deadline": deadline.isoformat(), "version": version})
    return len(rows)
