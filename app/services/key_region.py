"""Key regions (重点地区, DOMAIN.md §3): the three criteria's figures per region, computed in SQL
grouped by child region, and the designations bureaus make.

Figures (``since`` defaults to two years back, like the key-enterprise spot-check criterion):
1. unlicensed production: producers without a valid licence / producers (now);
2. licensed producers' spot-check pass rate: passing samples / samples, over spot checks since
   ``since`` of producers holding a valid licence now;
3. counterfeiting: counterfeit cases (``kind: counterfeit``) opened since ``since``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import ColumnClause, ColumnElement, Select, case, func, literal_column, null, or_
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from app import policy
from app.errors import Conflict, Unprocessable
from app.models.case import CaseKind, PenaltyCase
from app.models.common import Level, level_of
from app.models.enterprise import Enterprise
from app.models.focus import (
    Indicator,
    KeyRegion,
    KeyRegionCreate,
    KeyRegionCriterion,
    KeyRegionOverview,
    KeyRegionPublic,
    RegionIndicators,
)
from app.models.inspection import Inspection, InspectionKind
from app.models.reference import Region
from app.scope import Scope, region_condition
from app.services import audit, focus
from app.services import license as license_service

ONE: ColumnClause[Any] = literal_column("1")
NAMES = {
    KeyRegionCriterion.unlicensed_production: "unlicensed producers / producers",
    KeyRegionCriterion.low_pass_rate: "passing spot-check samples / samples of licensed producers",
    KeyRegionCriterion.counterfeiting: "counterfeit cases",
}


@dataclass
class Figures:
    producers: int = 0
    unlicensed: int = 0
    samples: int = 0
    passed: int = 0
    counterfeit_cases: int = 0

    def indicators(self) -> list[Indicator]:
        def ratio(n: int, d: int) -> float | None:
            return round(n / d, 4) if d else None

        c = KeyRegionCriterion
        return [
            Indicator(criterion=c.unlicensed_production, name=NAMES[c.unlicensed_production],
                      figure=ratio(self.unlicensed, self.producers), numerator=self.unlicensed,
                      denominator=self.producers),
            Indicator(criterion=c.low_pass_rate, name=NAMES[c.low_pass_rate], figure=ratio(self.passed, self.samples),
                      numerator=self.passed, denominator=self.samples),
            Indicator(criterion=c.counterfeiting, name=NAMES[c.counterfeiting], figure=float(self.counterfeit_cases),
                      numerator=self.counterfeit_cases, denominator=None),
        ]


def _child_key(region_col: Any, children: list[str]) -> ColumnElement[Any]:
    """The child region a record's region code falls in: a province (national's children), a city or
    a province-administered county (a province's), a county (a city's). Other codes keep their own
    (records filed at the parent's own code count in the total only)."""
    if not children:
        return null()
    province = func.concat(func.left(region_col, 2), "0000")
    city = func.concat(func.left(region_col, 4), "00")
    return case((province.in_(children), province), (city.in_(children), city), else_=region_col)


def _inside(region_col: Any, region: str) -> ColumnElement[bool]:
    return region_condition(region_col, region)


async def _rollup(session: AsyncSession, inner: Select[Any], *measures: str) -> dict[str | None, list[int]]:
    """GROUP BY ROLLUP(child) over ``inner`` (child, measures...): {child: sums, None: the total}."""
    sub = inner.subquery()
    sums = [func.coalesce(func.sum(sub.c[m]), 0) for m in measures]
    rows = (await session.execute(
        select(sub.c.child, func.grouping(sub.c.child), *sums).group_by(func.rollup(sub.c.child)))).all()
    out: dict[str | None, list[int]] = {}
    for child, is_total, *values in rows:
        out[None if is_total else child] = [int(v) for v in values]
    return out


async def figures(session: AsyncSession, *, region: str, children: list[str], since: date,
                  day: date) -> dict[str | None, Figures]:
    """Figures of ``region`` (key None) and of each child, in three grouped queries."""
    from_day = license_service.start_of_day(since)

    e_region = col(Enterprise.region_code)
    unlicensed = case((license_service.holds_valid_licence(col(Enterprise.id), day), 0), else_=1)
    producers = await _rollup(session, select(
        _child_key(e_region, children).label("child"), ONE.label("n"), unlicensed.label("u"),
    ).select_from(Enterprise).where(_inside(e_region, region)), "n", "u")

    i_region, i_samples = col(Inspection.region_code), col(Inspection.samples)
    passed = func.jsonb_path_query_array(i_samples, focus.PASSED_SAMPLES)
    samples = await _rollup(session, select(
        _child_key(i_region, children).label("child"), func.jsonb_array_length(i_samples).label("n"),
        func.jsonb_array_length(passed).label("p"),
    ).select_from(Inspection).where(
        _inside(i_region, region), col(Inspection.kind) == InspectionKind.spot_check,
        col(Inspection.inspected_at) >= from_day,
        license_service.holds_valid_licence(col(Inspection.enterprise_id), day)), "n", "p")

    c_region = col(PenaltyCase.region_code)
    cases = await _rollup(session, select(
        _child_key(c_region, children).label("child"), ONE.label("n"),
    ).select_from(PenaltyCase).where(
        _inside(c_region, region), col(PenaltyCase.kind) == CaseKind.counterfeit,
        col(PenaltyCase.created_at) >= from_day), "n")

    out: dict[str | None, Figures] = {}
    for key in {None, *children}:
        p, s, c = producers.get(key, [0, 0]), samples.get(key, [0, 0]), cases.get(key, [0])
        out[key] = Figures(producers=p[0], unlicensed=p[1], samples=s[0], passed=s[1], counterfeit_cases=c[0])
    return out


def to_public(k: KeyRegion) -> KeyRegionPublic:
    return KeyRegionPublic.model_validate(k, from_attributes=True)


async def overview(session: AsyncSession, *, scope: Scope, region: str | None, since: date | None) -> KeyRegionOverview:
    """The region (default: the caller's) and each child region, with figures and designations."""
    region = region or scope.region_code
    scope.require_region(region)
    day = license_service.today()
    since = since or focus.two_years_before(day)
    regions = (await session.execute(select(Region).where(
        or_(col(Region.code) == region, col(Region.parent_code) == region)).order_by(col(Region.code)))).scalars().all()
    own = next((r for r in regions if r.code == region), None)
    if own is None:
        raise Unprocessable(f"region {region} is not a GB/T 2260 code", code="unknown_region")
    children = [r for r in regions if r.code != region]
    figs = await figures(session, region=region, children=[r.code for r in children], since=since, day=day)
    designations = (await session.execute(
        select(KeyRegion).where(col(KeyRegion.region_code).in_([r.code for r in regions]))
        .order_by(col(KeyRegion.designated_at)))).scalars().all()

    def entry(r: Region, key: str | None) -> RegionIndicators:
        mine = [to_public(d) for d in designations if d.region_code == r.code]
        return RegionIndicators(region_code=r.code, name=r.name, level=r.level, designated=bool(mine),
                                designations=mine, indicators=figs[key].indicators())

    top = entry(own, None)
    return KeyRegionOverview(**top.model_dump(exclude={"designations", "indicators"}), designations=top.designations,
                             indicators=top.indicators, since=since, children=[entry(r, r.code) for r in children])




async def designate(session: AsyncSession, *, scope: Scope, data: KeyRegionCreate) -> KeyRegion:
    """Designate a key region inside the jurisdiction, keeping the figures it was designated on."""
    policy.require(policy.can_designate_key_regions(scope), code="designation_not_permitted")
    scope.require_region(data.region_code, what="region_code")
    if level_of(data.region_code) is Level.national:
        raise Unprocessable("the whole country cannot be a key region", code="invalid_region")
    if (await session.get(Region, data.region_code)) is None:
        raise Unprocessable(f"region_code {data.region_code} is not a GB/T 2260 code", code="unknown_region")
    taken = (await session.execute(select(KeyRegion.id).where(
        KeyRegion.region_code == data.region_code, KeyRegion.designated_by == scope.region_code))).first()
    if taken:
        raise Conflict(f"your bureau has already designated {data.region_code}", code="already_designated")
    day = license_service.today()
    figs = await figures(session, region=data.region_code, children=[], since=focus.two_years_before(day), day=day)
    k = KeyRegion(region_code=data.region_code, criteria=[c.value for c in data.criteria], reason=data.reason,
                  designated_by=scope.region_code, designated_by_level=scope.level,
                  designated_by_user=scope.principal_id if scope.principal_type == "user" else None,
                  indicators=[i.model_dump(mode="json") for i in figs[None].indicators()])
    session.add(k)
    await session.flush()
    await audit.record(session, action="key_region.designate", entity_type="key_region", entity_id=str(k.id),
                       region_code=k.region_code, after=to_public(k).model_dump(mode="json"))
    return k


async def designations_query(*, scope: Scope, region: str | None,
                             criterion: KeyRegionCriterion | None) -> Select[Any]:
    stmt = select(KeyRegion)
    if region is not None:
        scope.require_region(region)
        stmt = stmt.where(_inside(col(KeyRegion.region_code), region))
    if criterion is not None:
        stmt = stmt.where(KeyRegion.__table__.c.criteria.any(criterion.value))  # type: ignore[attr-defined]
    return stmt.order_by(col(KeyRegion.designated_at).desc(), col(KeyRegion.id).desc())
