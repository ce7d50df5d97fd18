"""Focus lists (DOMAIN.md §3): key-enterprise flags computed from the records, plus manual flags."""

from __future__ import annotations

import uuid
from collections import defaultdict
from typing import Any

from sqlalchemy import ColumnElement, exists, or_
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from app.models.enterprise import Enterprise, EnterpriseKeyFlag, KeyCriterion, KeyFlagPublic


async def key_flags_for(session: AsyncSession, enterprises: list[Enterprise]) -> dict[uuid.UUID, list[KeyFlagPublic]]:
    """Flags of each enterprise, in one query per source (never one per enterprise)."""
    flags: dict[uuid.UUID, list[KeyFlagPublic]] = defaultdict(list)
    if not enterprises:
        return flags
    for e in enterprises:
        if not e.licensed:
            flags[e.id].append(KeyFlagPublic(criterion=KeyCriterion.unlicensed,
                                             reason="no valid production licence", source="auto"))
    ids = [e.id for e in enterprises]
    manual = (await session.execute(
        select(EnterpriseKeyFlag).where(col(EnterpriseKeyFlag.enterprise_id).in_(ids))
    )).scalars().all()
    for m in manual:
        flags[m.enterprise_id].append(KeyFlagPublic(criterion=m.criterion, reason=m.reason, source="manual"))
    return flags


def key_condition() -> ColumnElement[bool]:
    """SQL condition: the enterprise meets at least one key criterion."""
    manual = exists().where(col(EnterpriseKeyFlag.enterprise_id) == Enterprise.id)
    return or_(col(Enterprise.licensed).is_(False), manual)


def describe() -> dict[str, Any]:
    return {c.value: c.name for c in KeyCriterion}
