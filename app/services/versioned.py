"""The one way a versioned record is changed: apply the fields, bump ``version`` and ``updated_at``,
flush, and append the audit row with before and after, in the caller's transaction; and the one way
a create with a client-supplied id is told from its replay (``replayed``)."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any, TypeVar

from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import select

from app.errors import Conflict
from app.models.common import utcnow
from app.scope import Scope
from app.services import audit

T = TypeVar("T")


async def replayed(session: AsyncSession, model: type[T], record_id: uuid.UUID | None, *, scope: Scope,
                   same: Callable[[T], bool], what: str) -> T | None:
    """A create that carries a client-supplied id (offline devices retry): the stored record when that
    id exists with the same content inside the caller's jurisdiction (a replay), None when the id is
    new, and 409 ``id_conflict`` otherwise."""
    if record_id is None:
        return None
    existing = (await session.execute(select(model).where(model.id == record_id)  # type: ignore[attr-defined]
                                      .execution_options(unscoped=True))).scalar_one_or_none()
    if existing is None:
        return None
    if same(existing) and scope.contains(existing.region_code):  # type: ignore[attr-defined]
        return existing
    raise Conflict(f"{what} {record_id} already exists with other content", code="id_conflict")


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
