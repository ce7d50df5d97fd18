"""The one way a versioned record is changed: apply the fields, bump ``version`` and ``updated_at``,
flush, and append the audit row with before and after, in the caller's transaction."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from sqlalchemy.ext.asyncio import AsyncSession

from app.models.common import utcnow
from app.services import audit

T = TypeVar("T")


async def apply_changes(session: AsyncSession, obj: T, changes: dict[str, Any], *, entity_type: str,
                        snapshot: Callable[[T], dict[str, Any]]) -> T:
    before = snapshot(obj)
    for field, value in changes.items():
        setattr(obj, field, value)
    obj.version += 1  # type: ignore[attr-defined]
    obj.updated_at = utcnow()  # type: ignore[attr-defined]
    await session.flush()
    await audit.record(session, action=f"{entity_type}.update", entity_type=entity_type,
                       entity_id=str(obj.id), region_code=obj.region_code,  # type: ignore[attr-defined]
                       before=before, after=snapshot(obj))
    return obj
