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
from datetime import date, datetime
from typing import Any

from sqlalchemy import ColumnClause, ColumnElement, and_, exists, literal_column, or_, text
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from app import scope as scope_mod
from app.errors import Conflict, NotFound
from app.models.case import PenaltyCase
from app.models.enterprise import (
    Enterprise,
    EnterpriseKeyFlag,
    KeyCriterion,
    KeyFlagCreate,
    KeyFlagPublic,
)
from app.models.focus import ManualKeyFlagPublic
from app.models.inspection import Conclusion, Inspection, InspectionKind
from app.scope import Scope
from app.services import audit
from app.services import enterprise as enterprise_service
from app.services import license as license_service

UNLICENSED_REASON = "no valid production licence"
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


# One round trip for a whole page: a LATERAL subquery per criterion and one for the manual flags.
# It is plain SQL (the ORM's per-statement cost dominated the page), so it applies the caller's
# jurisdiction itself: every table it reads is filtered by the same region prefix the scope uses.
_PAGE_FLAGS = text("""
SELECT ids.id,
       NOT EXISTS (SELECT 1 FROM license l WHERE l.enterprise_id = ids.id AND l.region_code LIKE :pattern
                   AND l.status = 'valid' AND l.expires_on >= :day) AS unlicensed,
       lc.kind, lc.inspected_at, lc.ok, lc.note,
       sc.checks, sc.samples, pc.n AS cases, pc.last AS last_case, cp.n AS complaints, cp.last AS last_complaint,
       mf.flags
FROM unnest(CAST(:ids AS uuid[])) AS ids(id)
LEFT JOIN LATERAL (
  SELECT i.kind, i.inspected_at, i.checks->'conditions_met'->>'ok' AS ok, i.checks->'conditions_met'->>'note' AS note
  FROM inspection i WHERE i.enterprise_id = ids.id AND i.region_code LIKE :pattern
  ORDER BY i.inspected_at DESC, i.id DESC LIMIT 1) lc ON true
LEFT JOIN LATERAL (
  SELECT count(*) AS checks,
         sum(jsonb_array_length(jsonb_path_query_array(i.samples, '$[*] ? (@.passed == false)'))) AS samples
  FROM inspection i WHERE i.enterprise_id = ids.id AND i.region_code LIKE :pattern AND i.kind = 'spot_check'
   AND i.samples @> '[{"passed": false}]' AND i.inspected_at >= :since) sc ON true
LEFT JOIN LATERAL (
  SELECT count(*) AS n, max(c.created_at) AS last FROM penalty_case c
  WHERE c.enterprise_id = ids.id AND c.region_code LIKE :pattern) pc ON true
LEFT JOIN LATERAL (
  SELECT count(*) AS n, max(i.inspected_at) AS last FROM inspection i
  WHERE i.enterprise_id = ids.id AND i.region_code LIKE :pattern AND i.kind = 'complaint'
   AND i.conclusion = 'issues_found') cp ON true
LEFT JOIN LATERAL (
  SELECT coalesce(jsonb_agg(jsonb_build_array(f.criterion, f.reason) ORDER BY f.criterion), '[]') AS flags
  FROM enterprise_key_flag f WHERE f.enterprise_id = ids.id AND f.region_code LIKE :pattern) mf ON true
""")


def _local(at: datetime) -> str:
    return license_service.local_date(at).isoformat()


def _auto_reasons(row: Any, since: date) -> dict[KeyCriterion, str]:
    reasons: dict[KeyCriterion, str] = {}
    if row.unlicensed:
        reasons[KeyCriterion.unlicensed] = UNLICENSED_REASON
    if row.ok == "false":
        reasons[KeyCriterion.lowered_conditions] = (
            f"licensing conditions not met at the latest inspection ({row.kind} on {_local(row.inspected_at)})"
            f"{': ' + row.note if row.note else ''}")
    if row.checks:
        reasons[KeyCriterion.spot_check_problems] = (
            f"{_plural(int(row.samples or 0), 'failed spot-check sample')} in "
            f"{_plural(int(row.checks), 'spot check')} since {since.isoformat()}")
    past = []
    if row.cases:
        past.append(f"{_plural(int(row.cases), 'penalty case')} (latest {_local(row.last_case)})")
    if row.complaints:
        past.append(f"{_plural(int(row.complaints), 'complaint')} with issues found "
                    f"(latest {_local(row.last_complaint)})")
    if past:
        reasons[KeyCriterion.past_violations] = "; ".join(past)
    return reasons


async def key_flags_for(session: AsyncSession, enterprises: list[Enterprise]) -> dict[uuid.UUID, list[KeyFlagPublic]]:
    """Flags of each enterprise of a page with their reasons, computed and manual, in one query."""
    flags: dict[uuid.UUID, list[KeyFlagPublic]] = defaultdict(list)
    if not enterprises:
        return flags
    scope = scope_mod.current(session.sync_session)
    day = license_service.today()
    since = two_years_before(day)
    rows = (await session.execute(_PAGE_FLAGS, {
        "ids": [e.id for e in enterprises], "day": day, "since": license_service.start_of_day(since),
        "pattern": (scope.prefix if scope else "") + "%"})).all()
    for row in rows:
        auto = _auto_reasons(row, since)
        manual = [(KeyCriterion(c), reason) for c, reason in row.flags]
        for criterion in KeyCriterion:
            if criterion in auto:
                flags[row.id].append(KeyFlagPublic(criterion=criterion, reason=auto[criterion], source="auto"))
            flags[row.id].extend(KeyFlagPublic(criterion=c, reason=r, source="manual")
                                 for c, r in manual if c == criterion)
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
