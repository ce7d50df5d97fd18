"""Penalty cases (立案 → 结案). This issue only opens the case an inspection files (`open_case`); the
workflow (actions, timeline, approvals) comes with the cases issue."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.models.case import CaseKind, CasePublic, CaseStatus, PenaltyCase
from app.models.inspection import Checks, Inspection, Sample
from app.scope import Scope
from app.services import audit


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


def to_public(c: PenaltyCase) -> CasePublic:
    return CasePublic(id=c.id, enterprise_id=c.enterprise_id, inspection_id=c.inspection_id,
                      region_code=c.region_code, kind=c.kind, status=c.status,
                      possibly_criminal=c.possibly_criminal, version=c.version, created_at=c.created_at)


def _snapshot(c: PenaltyCase) -> dict[str, Any]:
    return to_public(c).model_dump(mode="json", exclude={"created_at"})


async def open_from_inspection(session: AsyncSession, *, scope: Scope, inspection: Inspection,
                               kind: CaseKind) -> PenaltyCase:
    """File a case in `registered` state for an inspection (already flushed), linked both ways, with
    its own audit row. The caller's policy check on the inspection covers this: inspectors file cases."""
    case = PenaltyCase(enterprise_id=inspection.enterprise_id, inspection_id=inspection.id,
                       region_code=inspection.region_code, kind=kind, status=CaseStatus.registered,
                       created_by=scope.principal_id)
    session.add(case)
    await session.flush()
    inspection.case_id = case.id
    await audit.record(session, action="penalty_case.create", entity_type="penalty_case", entity_id=str(case.id),
                       region_code=case.region_code, after=_snapshot(case) | {"opened_from": "inspection"})
    return case
