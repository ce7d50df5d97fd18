"""The quality archive (质量监管信息档案, DOMAIN.md §5), assembled on each request from the records
themselves, so an inspection shows the moment it is committed and nothing is typed twice.

Queries are bounded whatever the enterprise's history: the enterprise, its flags (one query per
criterion), then one query each for licences, inspections (split into spot checks, annual reviews
and the others here), cases, bad records, recalls and category names. All of them go through the caller's scope."""

from __future__ import annotations

import uuid
from collections import Counter
from datetime import date

from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from app.models.archive import Archive, ArchiveCategory, LicenseSummary, ProductionInfo
from app.models.case import BadRecord, PenaltyCase
from app.models.common import utcnow
from app.models.enterprise import Enterprise, License, LicensePublic, LicenseStatus
from app.models.inspection import Inspection, InspectionKind, InspectionPublic
from app.models.recall import Recall
from app.models.reference import ProductCategory
from app.scope import Scope
from app.services import case as case_service
from app.services import enterprise as enterprise_service
from app.services import inspection as inspection_service
from app.services import license as license_service
from app.services import recall as recall_service


def _summary(licences: list[LicensePublic]) -> LicenseSummary:
    by = Counter(x.status for x in licences)
    valid = [x.expires_on for x in licences if x.status is LicenseStatus.valid]
    return LicenseSummary(total=len(licences), valid=by[LicenseStatus.valid], expired=by[LicenseStatus.expired],
                          suspended=by[LicenseStatus.suspended], revoked=by[LicenseStatus.revoked],
                          cancelled=by[LicenseStatus.cancelled], next_expiry=min(valid, default=None))


def _categories(e: Enterprise, rows: dict[str, ProductCategory],
                licences: list[LicensePublic]) -> list[ArchiveCategory]:
    """The enterprise's categories; a valid licence covers its own category, the sub-products of it,
    and counts for the parent of a licensed sub-product."""
    valid = {x.category_code for x in licences if x.status is LicenseStatus.valid}

    def parent(code: str) -> str | None:
        row = rows.get(code)
        return row.parent_code if row else None

    def covered(code: str) -> bool:
        return code in valid or parent(code) in valid or any(parent(v) == code for v in valid)

    return [ArchiveCategory(code=c, name=rows[c].name if c in rows else c, parent_code=parent(c),
                            key=rows[c].key if c in rows else False, licensed=covered(c))
            for c in e.category_codes]


async def build(session: AsyncSession, *, scope: Scope, enterprise_id: uuid.UUID) -> Archive:
    """The archive of one enterprise inside the jurisdiction (404 outside)."""
    e = await enterprise_service.get(session, scope=scope, enterprise_id=enterprise_id)
    basic = (await enterprise_service.to_public_many(session, [e]))[0]
    day: date = license_service.today()
    licences = [license_service.to_public(x, day) for x in (await session.execute(
        select(License).where(License.enterprise_id == e.id)
        .order_by(col(License.issued_on).desc(), col(License.created_at).desc()))).scalars()]
    inspections = (await session.execute(
        select(Inspection).where(Inspection.enterprise_id == e.id)
        .order_by(col(Inspection.inspected_at).desc(), col(Inspection.id).desc()))).scalars().all()
    cases = (await session.execute(
        select(PenaltyCase).where(PenaltyCase.enterprise_id == e.id)
        .order_by(col(PenaltyCase.created_at).desc(), col(PenaltyCase.id).desc()))).scalars().all()
    bad = (await session.execute(
        select(BadRecord).where(BadRecord.enterprise_id == e.id)
        .order_by(col(BadRecord.decided_at).desc(), col(BadRecord.id).desc()))).scalars().all()
    recalls = (await session.execute(
        select(Recall).where(Recall.enterprise_id == e.id)
        .order_by(col(Recall.created_at).desc(), col(Recall.id).desc()))).scalars().all()
    codes = sorted({*e.category_codes, *(x.category_code for x in licences)})
    rows = {c.code: c for c in (await session.execute(
        select(ProductCategory).where(col(ProductCategory.code).in_(codes)))).scalars()} if codes else {}
    by_kind: dict[str, list[InspectionPublic]] = {"spot": [], "annual": [], "other": []}
    for i in inspections:
        group = {InspectionKind.spot_check: "spot", InspectionKind.annual_review: "annual"}.get(i.kind, "other")
        by_kind[group].append(inspection_service.to_public(i))
    return Archive(
        enterprise_id=e.id, generated_at=utcnow(), basic=basic,
        production=ProductionInfo(size=e.size, licensed=any(x.status is LicenseStatus.valid for x in licences),
                                  categories=_categories(e, rows, licences),
                                  licenses=_summary(licences)),
        licenses=licences, spot_checks=by_kind["spot"], annual_reviews=by_kind["annual"],
        inspections=by_kind["other"],
        cases=[case_service.to_public(c) for c in cases],
        bad_records=[{"id": str(r.id), "case_id": str(r.case_id), "violation": r.violation.value,
                      "penalties": r.penalties, "decided_at": r.decided_at.isoformat(), "published": r.published,
                      "published_at": r.published_at.isoformat()} for r in bad],
        recalls=[recall_service.to_public(r).model_dump(mode="json", exclude={"by_batch", "by_region"})
                 for r in recalls])
