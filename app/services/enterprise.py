"""Enterprises (producers) and their quality archives."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import Select, and_, func, not_, or_
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from app import policy
from app.concurrency import check_version
from app.errors import Conflict, NotPermitted, Unprocessable
from app.models.common import Level, Role
from app.models.enterprise import (
    Enterprise,
    EnterpriseCreate,
    EnterprisePublic,
    EnterpriseSize,
    EnterpriseUpdate,
    KeyFlagPublic,
)
from app.models.reference import ProductCategory
from app.scope import Scope, get_visible
from app.services import audit, focus, reference, uscc, versioned


def to_public(e: Enterprise, flags: list[KeyFlagPublic] | None = None) -> EnterprisePublic:
    return EnterprisePublic(
        id=e.id, uscc=e.uscc, name=e.name, legal_representative=e.legal_representative, address=e.address,
        region_code=e.region_code, size=e.size, category_codes=list(e.category_codes), licensed=e.licensed,
        key_flags=flags or [], version=e.version, created_at=e.created_at, updated_at=e.updated_at)


async def to_public_many(session: AsyncSession, items: list[Enterprise]) -> list[EnterprisePublic]:
    flags = await focus.key_flags_for(session, items)
    return [to_public(e, flags.get(e.id)) for e in items]


def _snapshot(e: Enterprise) -> dict[str, Any]:
    return to_public(e).model_dump(mode="json", exclude={"key_flags", "created_at", "updated_at"})


def require_writer(scope: Scope) -> None:
    policy.require(policy.can_keep_archives(scope))


async def check_categories(session: AsyncSession, codes: list[str]) -> None:
    if not codes:
        return
    found = set((await session.execute(
        select(ProductCategory.code).where(col(ProductCategory.code).in_(codes)))).scalars())
    missing = sorted(set(codes) - found)
    if missing:
        raise Unprocessable(f"unknown product categories: {', '.join(missing)}", code="unknown_category")


def _validate_uscc(scope: Scope, data: EnterpriseCreate) -> None:
    msg = uscc.problem(data.uscc)
    if msg is None:
        if data.uscc_check_override:
            raise Unprocessable("uscc_check_override is only for codes whose check character fails",
                                code="override_not_needed")
        return
    if not uscc.is_check_failure(data.uscc) or not data.uscc_check_override:
        raise Unprocessable(msg, code="invalid_uscc",
                            extra={"errors": [{"loc": ["body", "uscc"], "msg": msg}]})
    # Early pilot-area codes fail the check legitimately: a provincial (or national) admin accepts one.
    if not (Role.admin in scope.roles and scope.at_or_above(Level.provincial)):
        raise NotPermitted("only a provincial or national admin may accept a code whose check character fails",
                           code="uscc_override_not_permitted")


async def create(session: AsyncSession, *, scope: Scope, data: EnterpriseCreate) -> tuple[Enterprise, bool]:
    """Returns the enterprise and whether it was created (False: a replay of a client-supplied id)."""
    require_writer(scope)
    scope.require_region(data.region_code)
    existing = await versioned.replayed(
        session, Enterprise, data.id, scope=scope, what="enterprise",
        same=lambda e: (e.uscc, e.name, e.region_code) == (data.uscc, data.name, data.region_code))
    if existing is not None:
        return existing, False
    if not await reference.region_exists(session, data.region_code):
        raise Unprocessable(f"region_code {data.region_code} is not a GB/T 2260 code", code="unknown_region")
    _validate_uscc(scope, data)
    await check_categories(session, data.category_codes)
    taken = (await session.execute(
        select(Enterprise.id).where(Enterprise.uscc == data.uscc).execution_options(unscoped=True))).first()
    if taken:
        raise Conflict(f"an enterprise with uscc {data.uscc} exists", code="uscc_taken")
    e = Enterprise.model_validate(data.model_dump(exclude={"id"}) | ({"id": data.id} if data.id else {}))
    session.add(e)
    await session.flush()
    after = _snapshot(e)
    if data.uscc_check_override:
        after["uscc_check_override"] = data.uscc_check_override
    await audit.record(session, action="enterprise.create", entity_type="enterprise", entity_id=str(e.id),
                       region_code=e.region_code, after=after)
    return e, True


async def get(session: AsyncSession, *, scope: Scope, enterprise_id: uuid.UUID, for_update: bool = False) -> Enterprise:
    return await get_visible(session, Enterprise, enterprise_id, what="enterprise", for_update=for_update)


async def update(session: AsyncSession, *, scope: Scope, enterprise_id: uuid.UUID, data: EnterpriseUpdate,
                 expected_version: int) -> Enterprise:
    require_writer(scope)
    e = await get(session, scope=scope, enterprise_id=enterprise_id, for_update=True)
    check_version(e.version, expected_version, current_body=to_public(e).model_dump(mode="json"))
    changes = data.model_dump(exclude_unset=True)
    if not changes:  # an empty PATCH changes nothing: no new version, no audit row
        return e
    if "category_codes" in changes:
        changes["category_codes"] = sorted(set(changes["category_codes"]))
        await check_categories(session, changes["category_codes"])
    return await versioned.apply_changes(session, e, changes, entity_type="enterprise", snapshot=_snapshot)


async def list_query(session: AsyncSession, *, scope: Scope, region: str | None, category: str | None,
                     licensed: bool | None, key: bool | None, size: EnterpriseSize | None,
                     q: str | None) -> Select[Any]:
    stmt = select(Enterprise)
    if region is not None:
        stmt = stmt.where(scope.inside(col(Enterprise.region_code), region))
    if category:
        # a category also finds enterprises filed under its sub-products (GIN-indexed overlap)
        codes = [category, *(await session.execute(
            select(ProductCategory.code).where(ProductCategory.parent_code == category))).scalars()]
        stmt = stmt.where(Enterprise.__table__.c.category_codes.overlap(codes))  # type: ignore[attr-defined]
    if licensed is not None:
        stmt = stmt.where(Enterprise.licensed == licensed)
    if size is not None:
        stmt = stmt.where(Enterprise.size == size)
    if key is not None:
        cond = focus.key_condition()
        stmt = stmt.where(cond if key else not_(cond))
    if q:
        term = q.strip()
        if len(term) == 2:
            # pg_trgm cannot index two characters (most Chinese trade names): the name's stored
            # character pairs with their GIN index can (migration 0006)
            name_match: Any = Enterprise.__table__.c.name_bigrams.contains([term.lower()])  # type: ignore[attr-defined]
        else:
            name_match = col(Enterprise.name).ilike("%" + term.replace("\\", "\\\\").replace("%", "\\%")
                                                   .replace("_", "\\_") + "%")
        stmt = stmt.where(or_(name_match, and_(
            func.length(term) >= 4, col(Enterprise.uscc).like(term.upper() + "%"))))
    return stmt.order_by(col(Enterprise.created_at).desc(), col(Enterprise.id).desc())
