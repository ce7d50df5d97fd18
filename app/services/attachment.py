"""Photos and scanned documents of an inspection (查阅复制): rows here, files in app/services/storage.py.
Attachments are scoped like their inspection (their region is the inspection's)."""

from __future__ import annotations

import logging
import uuid
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any

import anyio
from sqlalchemy import Select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from app import policy
from app.errors import NotFound
from app.models.inspection import Attachment, AttachmentPublic
from app.scope import Scope
from app.services import audit, storage
from app.services import inspection as inspection_service

log = logging.getLogger(__name__)


def to_public(a: Attachment) -> AttachmentPublic:
    return AttachmentPublic(id=a.id, inspection_id=a.inspection_id, filename=a.filename,
                            content_type=a.content_type, size_bytes=a.size_bytes, sha256=a.sha256,
                            created_at=a.created_at)


async def upload(session: AsyncSession, *, scope: Scope, inspection_id: uuid.UUID, headers: Mapping[str, str],
                 chunks: AsyncIterator[bytes], files_dir: Path, max_bytes: int) -> Attachment:
    """Attach a file to an inspection inside the jurisdiction. The inspection is looked up before
    the body is read, so an upload to one outside it stops at 404 without storing anything."""
    policy.require(policy.can_record_inspections(scope))
    ins = await inspection_service.get(session, scope=scope, inspection_id=inspection_id)
    got = await storage.receive(headers, chunks, files_dir=files_dir, max_bytes=max_bytes)
    try:
        content_type = storage.content_type(got)
    except BaseException:
        got.tmp_path.unlink(missing_ok=True)
        raise
    attachment_id = uuid.uuid4()
    key = storage.storage_key(attachment_id)
    await storage.place(session, got, files_dir, key)
    a = Attachment(id=attachment_id, inspection_id=ins.id, region_code=ins.region_code, filename=got.filename,
                   content_type=content_type, size_bytes=got.size, sha256=got.sha256, storage_key=key,
                   created_by=scope.principal_id)
    session.add(a)
    await session.flush()
    await audit.record(session, action="attachment.create", entity_type="attachment", entity_id=str(a.id),
                       region_code=a.region_code, after=to_public(a).model_dump(mode="json"))
    return a


async def list_query(session: AsyncSession, *, scope: Scope, inspection_id: uuid.UUID) -> Select[Any]:
    """An inspection's attachments, newest first (404 when the inspection is outside the jurisdiction)."""
    ins = await inspection_service.get(session, scope=scope, inspection_id=inspection_id)
    return (select(Attachment).where(Attachment.inspection_id == ins.id)
            .order_by(col(Attachment.created_at).desc(), col(Attachment.id).desc()))


async def get(session: AsyncSession, *, scope: Scope, inspection_id: uuid.UUID, attachment_id: uuid.UUID) -> Attachment:
    a = (await session.execute(select(Attachment).where(
        Attachment.id == attachment_id, Attachment.inspection_id == inspection_id))).scalar_one_or_none()
    if a is None:
        raise NotFound(f"No attachment {attachment_id} on inspection {inspection_id}", code="attachment_not_found")
    return a


async def file_of(a: Attachment, files_dir: Path) -> Path:
    path = storage.path_of(files_dir, a.storage_key)
    if not await anyio.Path(path).is_file():
        log.error("attachment %s has no file at %s", a.id, path)
        raise NotFound(f"The file of attachment {a.id} is missing from storage", code="attachment_file_missing")
    return path
