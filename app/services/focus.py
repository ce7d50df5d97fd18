"""Focus lists (DOMAIN.md §3): key-enterprise flags computed from the records, plus manual flags.

Each criterion has one SQL definition of its own (``criterion_condition``); the enterprise list's
``key`` filter is built from them, and ``key_flags_for`` asks the same questions of a whole page in
one grouped query per criterion (never one per enterprise), adding the figures for the reason.

Manual flags are a bureau's own judgement, shown beside the computed ones (``source: manual``).
DELETE removes a manual flag only: a computed flag follows the records and goes away when they
change (a licence recorded, a later inspection finding the conditions met, ...).
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from datetime import date
from typing import Any

from sqlalchemy import ColumnClause, ColumnElement, and_, exists, func, literal_column, or_
from sqlalchemy import select as sa_select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from app.errors import Conflict, NotFound
from app.models.case import PenaltyCase
from app.models.enterprise import (
    Enterprise,
    EnterpriseKeyFlag,
    KeyCriterion,
    KeyFlagCreate,
    KeyFlagPublic,
    License,
)
from app.models.focus import ManualKeyFlagPublic
from app.models.inspection import Conclusion, Inspection, InspectionKind
from app.scope import Scope
from app.services import audit
from app.services import enterprise as enterprise_service
from app.services import license as license_service

UNLICENSED_REASON = "no valid production licence"
FAILED_SAMPLES: ColumnClause[Any] = literal_column("'$[*] ? (@.passed == false)'::jsonpath")
PASSED_SAMPLES: ColumnClause[Any] = literal_column("'$[*] ? (@.passed == true)'::jsonpath")


def two_years_before(day: date) -> date:
    """Criterion (3) looks back two years (the same calendar day; 29 February falls back to the 28th)."""
    try:
        return day.replace(year=day.year - 2)
    except ValueError:
        return day.replace(year=day.year - 2, day=28)


def failed_spot_check() -> ColumnElement[bool]:
    """An inspection row that is a spot check with at least one failed sample."""
    return and_(col(Inspection.kind) == InspectionKind.spot_check,
                col(Inspection.samples).contains([{"passed": False}]))


def complaint_with_issues() -> ColumnElement[bool]:
    return and_(col(Inspection.kind) == InspectionKind.complaint, col(Inspection.conclusion) == Conclusion.issues_found)


def _conditions_ok() -> Any:
    return Inspection.checks["conditions_met"]["ok"].astext


def criterion_condition(criterion: KeyCriterion, day: date) -> ColumnElement[bool]:
    """SQL condition on ``Enterprise``: it meets ``criterion`` from the records (manual flags aside)."""
    eid = col(Enterprise.id)
    if criterion is KeyCriterion.unlicensed:
        return ~license_service.holds_valid_licence(eid, day)
    if criterion is KeyCriterion.lowered_conditions:
        latest = (select(_conditions_ok()).where(col(Inspection.enterprise_id) == eid)
                  .order_by(col(Inspection.inspected_at).desc(), col(Inspection.id).desc()).limit(1)
                  .correlate(Enterprise).scalar_subquery())
        return latest == "false"
    if criterion is KeyCriterion.spot_check_problems:
        since = license_service.start_of_day(two_years_before(day))
        return exists().where(col(Inspection.enterprise_id) == eid, failed_spot_check(),
                              col(Inspection.inspected_at) >= since)
    return or_(exists().where(col(PenaltyCase.enterprise_id) == eid),
               exists().where(col(Inspection.enterprise_id) == eid, complaint_with_issues()))


def key_condition() -> ColumnElement[bool]:
    """SQL condition: the enterprise meets at least one key criterion or carries a manual flag, i.e.
    exactly the enterprises whose ``key_flags`` are not empty."""
    day = license_service.today()
    manual = exists().where(col(EnterpriseKeyFlag.enterprise_id) == Enterprise.id)
    return or_(*(criterion_condition(c, day) for c in KeyCriterion), manual)


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


Reasons = dict[uuid.UUID, str]


async def _unlicensed(session: AsyncSession, ids: list[uuid.UUID], day: date) -> Reasons:
    licensed = set((await session.execute(
        select(col(License.enterprise_id)).distinct()
        .where(col(License.enterprise_id).in_(ids), license_service.valid_condition(day)))).scalars())
    return {eid: UNLICENSED_REASON for eid in ids if eid not in licensed}


async def _lowered_conditions(session: AsyncSession, ids: list[uuid.UUID]) -> Reasons:
    latest = (await session.execute(
        sa_select(col(Inspection.enterprise_id), col(Inspection.kind), col(Inspection.inspected_at), _conditions_ok(),
                  Inspection.checks["conditions_met"]["note"].astext)
        .where(col(Inspection.enterprise_id).in_(ids)).distinct(col(Inspection.enterprise_id))
        .order_by(col(Inspection.enterprise_id), col(Inspection.inspected_at).desc(), col(Inspection.id).desc()))).all()
    return {eid: f"licensing conditions not met at the latest inspection ({kind} on "
                 f"{license_service.local_date(at).isoformat()}){': ' + note if note else ''}"
            for eid, kind, at, ok, note in latest if ok == "false"}


async def _spot_check_problems(session: AsyncSession, ids: list[uuid.UUID], day: date) -> Reasons:
    since = two_years_before(day)
    failed_samples = func.jsonb_array_length(func.jsonb_path_query_array(col(Inspection.samples), FAILED_SAMPLES))
    rows = (await session.execute(
        select(col(Inspection.enterprise_id), func.count(), func.sum(failed_samples))
        .where(col(Inspection.enterprise_id).in_(ids), failed_spot_check(),
               col(Inspection.inspected_at) >= license_service.start_of_day(since))
        .group_by(col(Inspection.enterprise_id)))).all()
    return {eid: f"{_plural(int(samples), 'failed spot-check sample')} in {_plural(int(checks), 'spot check')} "
                 f"since {since.isoformat()}" for eid, checks, samples in rows}


async def _past_violations(session: AsyncSession, ids: list[uuid.UUID]) -> Reasons:
    past: dict[uuid.UUID, list[str]] = defaultdict(list)
    cases = (await session.execute(
        select(col(PenaltyCase.enterprise_id), func.count(), func.max(col(PenaltyCase.created_at)))
        .where(col(PenaltyCase.enterprise_id).in_(ids)).group_by(col(PenaltyCase.enterprise_id)))).all()
    for eid, n, last in cases:
        past[eid].append(f"{_plural(int(n), 'penalty case')} (latest {license_service.local_date(last).isoformat()})")
    complaints = (await session.execute(
        select(col(Inspection.enterprise_id), func.count(), func.max(col(Inspection.inspected_at)))
        .where(col(Inspection.enterprise_id).in_(ids), complaint_with_issues())
        .group_by(col(Inspection.enterprise_id)))).all()
    for eid, n, last in complaints:
        past[eid].append(f"{_plural(int(n), 'complaint')} with issues found "
                         f"(latest {license_service.local_date(last).isoformat()})")
    return {eid: "; ".join(parts) for eid, parts in past.items()}


async def key_flags_for(session: AsyncSession, enterprises: list[Enterprise]) -> dict[uuid.UUID, list[KeyFlagPublic]]:
    """Flags of each enterprise with their reasons, in one query per criterion for the whole list
    (two for past violations: cases and complaints), plus one for the manual flags."""
    flags: dict[uuid.UUID, list[KeyFlagPublic]] = defaultdict(list)
    if not enterprises:
        return flags
    ids = [e.id for e in enterprises]
    day = license_service.today()
    computed = {
        KeyCriterion.unlicensed: await _unlicensed(session, ids, day),
        KeyCriterion.lowered_conditions: await _lowered_conditions(session, ids),
        KeyCriterion.spot_check_problems: await _spot_check_problems(session, ids, day),
        KeyCriterion.past_violations: await _past_violations(session, ids),
    }
    manual = (await session.execute(
        select(EnterpriseKeyFlag).where(col(EnterpriseKeyFlag.enterprise_id).in_(ids)))).scalars().all()
    for eid in ids:
        for criterion in KeyCriterion:
            if eid in computed[criterion]:
                flags[eid].append(KeyFlagPublic(criterion=criterion, reason=computed[criterion][eid], source="auto"))
            flags[eid].extend(KeyFlagPublic(criterion=m.criterion, reason=m.reason, source="manual")
                              for m in manual if m.enterprise_id == eid and m.criterion == criterion)
    return flags


def manual_public(flag: EnterpriseKeyFlag) -> ManualKeyFlagPublic:
    return ManualKeyFlagPublic(enterprise_id=flag.enterprise_id, criterion=flag.criterion, reason=flag.reason,
                               set_by=flag.set_by, set_at=flag.set_at)


async def _manual(session: AsyncSession, enterprise_id: uuid.UUID, criterion: KeyCriterion) -> EnterpriseKeyFlag | None:
    stmt = select(EnterpriseKeyFlag).where(EnterpriseKeyFlag.enterprise_id == enterprise_id,
                                           EnterpriseKeyFlag.criterion == criterion)
    return (await session.execute(stmt)).scalar_one_or_none()


async def set_manual_flag(session: AsyncSession, *, scope: Scope, enterprise_id: uuid.UUID,
                          data: KeyFlagCreate) -> EnterpriseKeyFlag:
    """Put a manual flag on an enterprise inside the jurisdiction. The same flag with the same reason
    again is a replay; with another reason a 409 (clear it first)."""
    enterprise_service.require_writer(scope)
    e = await enterprise_service.get(session, scope=scope, enterprise_id=enterprise_id)
    existing = await _manual(session, e.id, data.criterion)
    if existing is not None:
        if existing.reason == data.reason:
            return existing
        raise Conflict(f"a manual {data.criterion.value} flag is already set with another reason; delete it first",
                       code="key_flag_exists")
    flag = EnterpriseKeyFlag(enterprise_id=e.id, criterion=data.criterion, region_code=e.region_code,
                             reason=data.reason, set_by=scope.principal_id)
    session.add(flag)
    await session.flush()
    await audit.record(session, action="key_flag.set", entity_type="enterprise", entity_id=str(e.id),
                       region_code=e.region_code, after=manual_public(flag).model_dump(mode="json"))
    return flag


async def clear_manual_flag(session: AsyncSession, *, scope: Scope, enterprise_id: uuid.UUID,
                            criterion: KeyCriterion) -> None:
    """Remove a manual flag (404 when there is none); computed flags are not touched."""
    enterprise_service.require_writer(scope)
    e = await enterprise_service.get(session, scope=scope, enterprise_id=enterprise_id)
    flag = await _manual(session, e.id, criterion)
    if flag is None:
        raise NotFound(f"enterprise {e.id} has no manual {criterion.value} flag", code="key_flag_not_found")
    before = manual_public(flag).model_dump(mode="json")
    await session.delete(flag)
    await session.flush()
    await audit.record(session, action="key_flag.clear", entity_type="enterprise", entity_id=str(e.id),
                       region_code=e.region_code, before=before)
