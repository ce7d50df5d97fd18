"""/api/v1/inspections: field inspections from mobile apps, their offline batches and attachments."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import Header, Query, Request, Response
from fastapi.responses import FileResponse

from app.concurrency import IfMatchDep, set_etag
from app.deps import ScopeDep, SessionDep, SettingsDep
from app.errors import problem_responses
from app.models.common import AwareMoment, RegionCode
from app.models.inspection import (
    AttachmentPublic,
    Conclusion,
    InspectionCreate,
    InspectionKind,
    InspectionPublic,
    InspectionUpdate,
)
from app.pagination import Page, PageDep, paginate
from app.routers import secured_router
from app.routing import autocommit_reads
from app.services import attachment as attachment_service
from app.services import inspection as inspection_service
from app.services import storage

router = secured_router(machine_scope="inspections:read", prefix="/api/v1/inspections", tags=["inspections"])

_UPLOAD_BODY: dict[str, Any] = {"requestBody": {"required": True, "content": {"multipart/form-data": {"schema": {
    "type": "object", "required": ["file"],
    "properties": {"file": {"type": "string", "format": "binary",
                            "description": "a JPEG or PNG photo or a PDF document"}}}}}}}
_FILE_CONTENT: dict[int | str, dict[str, Any]] = {200: {
    "description": "The file, with `ETag` = its sha256 and a `Content-Disposition` naming it",
    "content": {t: {"schema": {"type": "string", "format": "binary"}} for t in storage.TYPES}}}


def _headers(response: Response, version: int, inspection_id: uuid.UUID) -> None:
    set_etag(response, version)
    response.headers["Location"] = f"/api/v1/inspections/{inspection_id}"


@router.post("", status_code=201, response_model=InspectionPublic,
             responses=problem_responses(401, 403, 404, 409, 422))
async def create_inspection(body: InspectionCreate, scope: ScopeDep, session: SessionDep,
                            response: Response) -> InspectionPublic:
    """Record an inspection of an enterprise inside your jurisdiction (inspectors and officers; 403
    otherwise). An enterprise outside your jurisdiction is 404 `enterprise_not_found`; the
    inspection takes the enterprise's `region_code`.

    Rules (422, each with its `code`): at least two different `officers`; all five `checks`; a
    `spot_check` records `samples` (`samples_required`) and only spot checks do (`samples_not_allowed`);
    a sample that passed lists no failed items (`sample_inconsistent`); when a check or a sample
    failed, `conclusion` is `issues_found` (`conclusion_inconsistent`; `issues_found` with every
    check passed is allowed for findings outside the five checks); `inspected_at` carries an offset
    and is not more than a day ahead (`inspected_in_future`).

    `open_case: true` (only with `issues_found`, else 422 `no_issues_for_case`) files a case in
    `registered` state in the same transaction, linked both ways (`case_id` here, `inspection_id`
    on the case). Its kind is `case_kind` or derived from the findings, the gravest first: licence
    check failed → `unlicensed_production`; fraud → `counterfeit`; conditions not met →
    `lowered_conditions`; a failed sample or a safety hazard → `nonconforming_products`; irregular
    production → `irregular_production`; else `other`. A failed licence check changes nothing on
    the enterprise (its `licensed` follows its licences).

    A client-made `id` (offline apps) makes the create repeat-safe: the same `id` with the same body
    answers the stored inspection, 201 with `Idempotent-Replayed: true` (as an `Idempotency-Key`
    replay does); with another body it is 409 `id_conflict`."""
    ins, created = await inspection_service.create_or_replay(session, scope=scope, data=body)
    _headers(response, ins.version, ins.id)
    if not created:
        response.headers["Idempotent-Replayed"] = "true"
    return inspection_service.to_public(ins)


@router.post("/batch", response_model=inspection_service.BatchResults, responses=problem_responses(401, 403, 422))
async def create_inspection_batch(body: inspection_service.InspectionBatch, scope: ScopeDep,
                                  session: SessionDep) -> inspection_service.BatchResults:
    """Sync up to 100 inspections recorded offline, in one request. Each item is a create body (see
    `POST /api/v1/inspections`, same rules) and is judged on its own: the answer (200) lists, in the
    order sent, `{id, status, problem}` with `status` `created`, `replayed` (same `id` and body as
    an inspection already stored) or `rejected` (with the item's problem details: 422 validation
    with `errors[].loc` under `body.items.<n>`, 404 enterprise outside your jurisdiction, 409
    `id_conflict`, ...). A rejected item loses nothing else; the whole batch commits once. A
    database timeout or a deadlock is the whole request's problem (503 or 409 with `Retry-After`):
    retry the batch.

    **Offline clients should always send an `id` with each item**: retrying a batch whose answer
    was lost (a dropped connection) then replays what was stored and creates only what was not.
    An item without `id` gets a server-made one, and a retry creates it again.
    The batch needs no `Idempotency-Key`: the item ids make it repeat-safe. More than 100 items
    (or none) is a 422 for the whole request, and a caller who may not record inspections gets 403
    for the whole request."""
    results = await inspection_service.create_batch(session, scope=scope, items=body.items)
    return inspection_service.BatchResults(results=results)


@router.get("", response_model=Page[InspectionPublic], responses=problem_responses(401, 403, 422))
@autocommit_reads
async def list_inspections(
    scope: ScopeDep, session: SessionDep, page: PageDep,
    enterprise_id: uuid.UUID | None = None,
    region: Annotated[RegionCode | None, Query(description="inside this region (403 outside yours)")] = None,
    kind: InspectionKind | None = None,
    conclusion: Conclusion | None = None,
    since: Annotated[AwareMoment | None, Query(alias="from", description="inspected at or after (RFC 3339)")] = None,
    until: Annotated[AwareMoment | None, Query(alias="to", description="inspected before (RFC 3339)")] = None,
) -> Page[InspectionPublic]:
    """Inspections inside your jurisdiction, newest first (`inspected_at`, then `id`). `from` is
    inclusive and `to` exclusive, both RFC 3339 times with an offset; `region` must lie inside your
    jurisdiction (403 `not_in_jurisdiction`); an `enterprise_id` outside it simply lists nothing."""
    stmt = inspection_service.list_query(scope=scope, enterprise_id=enterprise_id, region=region, kind=kind,
                                         conclusion=conclusion, since=since, until=until)
    items, nxt = await paginate(session, stmt, page)
    return Page[InspectionPublic](items=[inspection_service.to_public(i) for i in items], next_cursor=nxt)


@router.get("/{inspection_id}", response_model=InspectionPublic, responses=problem_responses(401, 404))
@autocommit_reads
async def get_inspection(inspection_id: uuid.UUID, scope: ScopeDep, session: SessionDep,
                         response: Response) -> InspectionPublic:
    """One inspection with its `ETag` (404 outside your jurisdiction)."""
    ins = await inspection_service.get(session, scope=scope, inspection_id=inspection_id)
    set_etag(response, ins.version)
    return inspection_service.to_public(ins)


@router.patch("/{inspection_id}", response_model=InspectionPublic,
              responses=problem_responses(401, 403, 404, 409, 412, 422, 428))
async def update_inspection(inspection_id: uuid.UUID, body: InspectionUpdate, if_match: IfMatchDep,
                            scope: ScopeDep, session: SessionDep, response: Response) -> InspectionPublic:
    """Change an inspection (inspectors and officers); `If-Match` carries the version the edit
    started from (428 without it). If the server's copy changed since, the answer is 412
    `precondition_failed` whose body holds both sides to merge: `current` (the server's copy, with
    `current_version`) and `yours` (the changes sent); nothing is overwritten. The creation rules
    hold after the change, and an inspection that opened a case keeps `issues_found` (409
    `case_opened`). `enterprise_id` cannot change."""
    ins = await inspection_service.update(session, scope=scope, inspection_id=inspection_id, data=body,
                                          expected_version=if_match)
    set_etag(response, ins.version)
    return inspection_service.to_public(ins)


@router.post("/{inspection_id}/attachments", status_code=201, response_model=AttachmentPublic,
             openapi_extra=_UPLOAD_BODY, responses=problem_responses(401, 403, 404, 413, 415, 422))
async def upload_attachment(inspection_id: uuid.UUID, request: Request, scope: ScopeDep, session: SessionDep,
                            settings: SettingsDep, response: Response) -> AttachmentPublic:
    """Attach a photo or scanned document to an inspection inside your jurisdiction (inspectors and
    officers): `multipart/form-data` with one `file` field. The file is streamed to storage while
    it is hashed; over the size limit (`APP_ATTACHMENT_MAX_BYTES`, 20 MiB by default) the upload
    stops with 413 `attachment_too_large`. The type is read from the content (JPEG, PNG or PDF
    magic bytes); other content, or a declared content type or file-name extension that disagrees
    with it, is 415 `unsupported_attachment_type`. The answer carries the file's `sha256`; the
    file is stored under the attachment's id, never under the client's name."""
    a = await attachment_service.upload(session, scope=scope, inspection_id=inspection_id,
                                        headers=request.headers, chunks=request.stream(),
                                        files_dir=settings.files_dir, max_bytes=settings.attachment_max_bytes)
    response.headers["Location"] = f"/api/v1/inspections/{inspection_id}/attachments/{a.id}"
    response.headers["ETag"] = f'"{a.sha256}"'
    return attachment_service.to_public(a)


@router.get("/{inspection_id}/attachments", response_model=Page[AttachmentPublic],
            responses=problem_responses(401, 404, 422))
async def list_attachments(inspection_id: uuid.UUID, scope: ScopeDep, session: SessionDep,
                           page: PageDep) -> Page[AttachmentPublic]:
    """An inspection's attachments, newest first (404 when the inspection is outside your jurisdiction)."""
    stmt = await attachment_service.list_query(session, scope=scope, inspection_id=inspection_id)
    items, nxt = await paginate(session, stmt, page)
    return Page[AttachmentPublic](items=[attachment_service.to_public(a) for a in items], next_cursor=nxt)


@router.get("/{inspection_id}/attachments/{attachment_id}", response_class=FileResponse,
            responses={**_FILE_CONTENT, 304: {"description": "Not modified (`If-None-Match` matched)"},
                       **problem_responses(401, 404)})
async def download_attachment(
    inspection_id: uuid.UUID, attachment_id: uuid.UUID, scope: ScopeDep, session: SessionDep,
    settings: SettingsDep,
    if_none_match: Annotated[str | None, Header(description="the ETag held: 304 when unchanged")] = None,
) -> Response:
    """Download an attachment (404 outside your jurisdiction, as its inspection). `Content-Type` is
    the type found in the content at upload; `ETag` is the file's sha256."""
    a = await attachment_service.get(session, scope=scope, inspection_id=inspection_id, attachment_id=attachment_id)
    tag = f'"{a.sha256}"'
    if if_none_match is not None and tag in {t.strip() for t in if_none_match.split(",")}:
        return Response(status_code=304, headers={"ETag": tag})
    path = await attachment_service.file_of(a, settings.files_dir)
    return FileResponse(path, media_type=a.content_type, headers={
        "ETag": tag, "Content-Disposition": storage.content_disposition(a.filename),
        "X-Content-Type-Options": "nosniff", "Cache-Control": "private, max-age=0"})
