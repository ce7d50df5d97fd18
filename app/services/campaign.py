"""Campaigns and the live dashboard (DOMAIN.md §4).

The figures come from per-county counters kept by triggers in every writing transaction (migration
0009), so a dashboard of the whole country sums a few thousand rows and is exact at the moment it is
read: an inspection, a case closed or units recalled count as soon as they are committed."""

from __future__ import annotations

import uuid
from collections import OrderedDict
from datetime import date
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from app import policy
from app.errors import Conflict, NotFound, Unprocessable
from app.models.campaign import (
    COUNTERS,
    DEFAULT_TARGETS,
    TARGET_NAMES,
    Campaign,
    CampaignCreate,
    CampaignEnterprise,
    CampaignPublic,
    CampaignTarget,
    Dashboard,
    RegionFigures,
    TargetFigure,
    TargetKey,
)
from app.models.common import NATIONAL_CODE, Level, Role, level_of, prefix_of, utcnow
from app.models.enterprise import Enterprise
from app.models.reference import ProductCategory, Region
from app.scope import Scope
from app.services import audit

DEFAULT_CODE = "2007"

# each target: (numerator counter, denominator counter)
RATIOS: dict[TargetKey, tuple[str, str]] = {
    TargetKey.archive_coverage: ("archived", "key_producers"),
    TargetKey.conditions_compliance: ("compliant", "licensed"),
    TargetKey.recall_completion: ("recall_recalled", "recall_sold"),
    TargetKey.spot_check_pass_rate: ("passed", "samples"),
    TargetKey.spot_check_pass_rate_large: ("passed_large", "samples_large"),
    TargetKey.unlicensed_resolved: ("unlicensed_resolved", "unlicensed_cases"),
    TargetKey.counterfeit_cases_closed: ("counterfeit_closed", "counterfeit_cases"),
    TargetKey.sweep_coverage: ("inspected", "key_producers"),
}


async def _expand(session: AsyncSession, codes: list[str]) -> list[str]:
    """The categories and their sub-products; unknown codes are a 422."""
    rows = (await session.execute(select(ProductCategory.code, ProductCategory.parent_code))).all()
    known = {c for c, _ in rows}
    missing = sorted(set(codes) - known)
    if missing:
        raise Unprocessable(f"unknown product categories: {', '.join(missing)}", code="unknown_category")
    return sorted(set(codes) | {c for c, parent in rows if parent in codes})


async def ensure_default_campaign(session: AsyncSession) -> None:
    """Seed the 2007 campaign (seed §1-§2: the key categories, the targets of DOMAIN.md §4) once."""
    if (await session.execute(select(Campaign.id).where(Campaign.code == DEFAULT_CODE))).first():
        return
    keys = list((await session.execute(select(ProductCategory.code).where(col(ProductCategory.key)))).scalars())
    c = Campaign(code=DEFAULT_CODE, name="2007年产品质量安全专项整治（国质检〔2007〕实施细则）",
                 starts_on=date(2007, 8, 31), key_categories=await _expand(session, keys))
    session.add(c)
    await session.flush()
    session.add_all(CampaignTarget(campaign_id=c.id, region_code=NATIONAL_CODE, key=k.value, target=v)
                    for k, v in DEFAULT_TARGETS.items())
    await session.flush()
    await _rebuild(session, c.id)


async def _rebuild(session: AsyncSession, campaign_id: uuid.UUID) -> None:
    """Build a campaign's counters set-based (seconds on a million enterprises: no statement timeout)."""
    await session.execute(text("SET LOCAL statement_timeout = 0"))
    await session.execute(text("SELECT pqs_rebuild_campaign(:id)"), {"id": campaign_id})


async def targets_of(session: AsyncSession, campaign_id: uuid.UUID) -> dict[tuple[str, str], float]:
    rows = (await session.execute(select(CampaignTarget.region_code, CampaignTarget.key, CampaignTarget.target)
                                  .where(CampaignTarget.campaign_id == campaign_id))).all()
    return {(r, k): t for r, k, t in rows}


def to_public(c: Campaign, targets: dict[tuple[str, str], float]) -> CampaignPublic:
    return CampaignPublic(id=c.id, code=c.code, name=c.name, starts_on=c.starts_on, ends_on=c.ends_on,
                          key_categories=list(c.key_categories), created_at=c.created_at,
                          targets={k: v for (r, k), v in targets.items() if r == NATIONAL_CODE})


async def get(session: AsyncSession, campaign_id: uuid.UUID) -> Campaign:
    c = await session.get(Campaign, campaign_id)
    if c is None:
        raise NotFound(f"No campaign {campaign_id}", code="campaign_not_found")
    return c


async def create(session: AsyncSession, *, scope: Scope, data: CampaignCreate) -> Campaign:
    """A national campaign: its counters are built at once from the records (set-based)."""
    policy.require_role(scope, Role.leader, Role.admin, doing="create campaigns", at_or_above=Level.national)
    if (await session.execute(select(Campaign.id).where(Campaign.code == data.code))).first():
        raise Conflict(f"a campaign with code {data.code} exists", code="campaign_code_taken")
    c = Campaign(code=data.code, name=data.name, starts_on=data.starts_on, ends_on=data.ends_on,
                 key_categories=await _expand(session, data.key_categories), created_by=scope.principal_id)
    session.add(c)
    await session.flush()
    targets = {k.value: v for k, v in DEFAULT_TARGETS.items()} | {k.value: v for k, v in data.targets.items()}
    session.add_all(CampaignTarget(campaign_id=c.id, region_code=NATIONAL_CODE, key=k, target=v,
                                   set_by=scope.principal_id) for k, v in targets.items())
    await session.flush()
    await _rebuild(session, c.id)
    await audit.record(session, action="campaign.create", entity_type="campaign", entity_id=str(c.id),
                       region_code=NATIONAL_CODE, after=to_public(c, {(NATIONAL_CODE, k): v for k, v in
                                                                      targets.items()}).model_dump(mode="json"))
    return c


async def set_targets(session: AsyncSession, *, scope: Scope, campaign_id: uuid.UUID, region_code: str,
                      targets: dict[TargetKey, float]) -> dict[str, float]:
    """A province (or the nation) sets its own targets for a region inside its jurisdiction; regions
    below inherit them unless they have their own."""
    policy.require_role(scope, Role.leader, Role.admin, doing="set campaign targets",
                        at_or_above=Level.provincial)
    scope.require_region(region_code)
    c = await get(session, campaign_id)
    if not (await session.execute(select(Region.code).where(Region.code == region_code))).first() \
            and region_code != NATIONAL_CODE:
        raise Unprocessable(f"region_code {region_code} is not a GB/T 2260 code", code="unknown_region")
    before = {k: v for (r, k), v in (await targets_of(session, c.id)).items() if r == region_code}
    now = utcnow()
    for key, value in targets.items():
        row = await session.get(CampaignTarget, (c.id, region_code, key.value))
        if row is None:
            session.add(CampaignTarget(campaign_id=c.id, region_code=region_code, key=key.value, target=value,
                                       set_by=scope.principal_id, set_at=now))
        else:
            row.target, row.set_by, row.set_at = value, scope.principal_id, now
    await session.flush()
    after = before | {k.value: v for k, v in targets.items()}
    await audit.record(session, action="campaign.targets", entity_type="campaign", entity_id=str(c.id),
                       region_code=region_code, before={"targets": before}, after={"targets": after})
    return after


def _effective(targets: dict[tuple[str, str], float], region: str, key: TargetKey) -> tuple[float, str]:
    """The target of the nearest bureau at or above ``region`` that set one."""
    chain = [region, region[:4] + "00", region[:2] + "0000", NATIONAL_CODE]
    for code in dict.fromkeys(chain):
        if (code, key.value) in targets:
            return targets[(code, key.value)], code
    return DEFAULT_TARGETS[key], NATIONAL_CODE


def _figures(region: str, counts: dict[str, int], targets: dict[tuple[str, str], float]) -> list[TargetFigure]:
    out = []
    for key in TargetKey:
        num_c, den_c = RATIOS[key]
        num, den = int(counts.get(num_c, 0)), int(counts.get(den_c, 0))
        target, who = _effective(targets, region, key)
        figure = round(num / den, 4) if den else None
        out.append(TargetFigure(key=key, name=TARGET_NAMES[key], figure=figure, numerator=num, denominator=den,
                                target=target, target_set_by=who, met=None if figure is None else figure >= target))
    return out


def _child_expr(region: str) -> str:
    level = level_of(region)
    if level is Level.national:
        return "left(region_code, 2) || '0000'"
    if level is Level.provincial:
        return "left(region_code, 4) || '00'"
    return "region_code"


# Dashboards already computed, per worker, keyed by campaign and region and valid while the counters
# and targets are unchanged. The version is (rows, newest id) of the campaign's deltas and a digest of
# its targets' content: every committed write adds delta rows (the count grows, even when a slower
# transaction commits a smaller id later), folding or rebuilding replaces rows with newer ids, and any
# target change changes the digest, so a cached dashboard is never stale.
_CACHE: OrderedDict[tuple[uuid.UUID, str], tuple[tuple[Any, ...], Dashboard, bytes]] = OrderedDict()
_CACHE_SIZE = 512
_VERSION = text("""
SELECT (SELECT count(*) FROM campaign_delta WHERE campaign_id = :c),
       (SELECT max(id) FROM campaign_delta WHERE campaign_id = :c),
       (SELECT md5(coalesce(string_agg(region_code || ':' || key || ':' || target::text, ','
                                        ORDER BY region_code, key), ''))
          FROM campaign_target WHERE campaign_id = :c)""")


async def dashboard(session: AsyncSession, *, scope: Scope, campaign_id: uuid.UUID, region: str | None) -> Dashboard:
    return (await _dashboard(session, scope=scope, campaign_id=campaign_id, region=region))[0]


async def dashboard_json(session: AsyncSession, *, scope: Scope, campaign_id: uuid.UUID, region: str | None) -> bytes:
    """The dashboard as JSON, serialised once per version."""
    return (await _dashboard(session, scope=scope, campaign_id=campaign_id, region=region))[1]


async def _dashboard(session: AsyncSession, *, scope: Scope, campaign_id: uuid.UUID,
                     region: str | None) -> tuple[Dashboard, bytes]:
    region = region or scope.region_code
    scope.require_region(region)
    version = tuple((await session.execute(_VERSION, {"c": campaign_id})).one())
    hit = _CACHE.get((campaign_id, region))
    if hit is not None and hit[0] == version:
        _CACHE.move_to_end((campaign_id, region))
        return hit[1], hit[2]
    board = await _compute_dashboard(session, campaign_id=campaign_id, region=region)
    raw = board.model_dump_json().encode()
    _CACHE[(campaign_id, region)] = (version, board, raw)
    while len(_CACHE) > _CACHE_SIZE:
        _CACHE.popitem(last=False)
    return board, raw


async def _compute_dashboard(session: AsyncSession, *, campaign_id: uuid.UUID, region: str) -> Dashboard:
    c = await get(session, campaign_id)
    sums = ", ".join(f"sum({x}) AS {x}" for x in COUNTERS)
    rows = (await session.execute(text(  # built from constants only; the values are bound
        f"SELECT {_child_expr(region)} AS child, {sums} FROM campaign_delta"  # noqa: S608
        " WHERE campaign_id = :c AND region_code LIKE :p GROUP BY 1"),
        {"c": c.id, "p": prefix_of(region) + "%"})).mappings().all()
    targets = await targets_of(session, c.id)
    total: dict[str, int] = dict.fromkeys(COUNTERS, 0)
    by_child: dict[str, dict[str, int]] = {}
    for r in rows:
        for x in COUNTERS:
            total[x] += int(r[x] or 0)
        if r["child"] != region:
            by_child[r["child"]] = {x: int(r[x] or 0) for x in COUNTERS}
    children = (await session.execute(select(Region.code, Region.name).where(Region.parent_code == region)
                                      .order_by(Region.code))).all()
    names: dict[str, str] = {code: name for code, name in children}
    if region == NATIONAL_CODE:
        names.update({code: name for code, name in (await session.execute(select(Region.code, Region.name).where(
            col(Region.code).in_(list(by_child))))).all()})
        own_name = "全国"
    else:
        own_name = (await session.execute(select(Region.name).where(Region.code == region))).scalar() or region
    child_codes = sorted(set(names) | set(by_child))
    return Dashboard(
        campaign_id=c.id, generated_at=utcnow(), region_code=region, name=own_name,
        targets=_figures(region, total, targets),
        children=[RegionFigures(region_code=code, name=names.get(code, code),
                                targets=_figures(code, by_child.get(code, {}), targets)) for code in child_codes])


def sweep_gaps_query(scope: Scope, *, campaign_id: uuid.UUID, region: str | None) -> Any:
    """Key producers not yet inspected in the campaign, inside the region, by region then id."""
    stmt = (select(CampaignEnterprise, Enterprise.name, Enterprise.uscc, Enterprise.licensed)
            .join(Enterprise, col(Enterprise.id) == col(CampaignEnterprise.enterprise_id))
            .where(CampaignEnterprise.campaign_id == campaign_id, CampaignEnterprise.key_producers == 1,
                   CampaignEnterprise.inspected == 0))
    if region is not None:
        stmt = stmt.where(scope.inside(col(CampaignEnterprise.region_code), region))
    return stmt.order_by(col(CampaignEnterprise.region_code), col(CampaignEnterprise.enterprise_id))


async def compact(session: AsyncSession) -> int:
    return int((await session.execute(text("SELECT pqs_compact_campaign_deltas()"))).scalar_one())

