"""/api/v1/enterprises/{id}/archive and the enterprise's manual key flags."""

from __future__ import annotations

import uuid

from fastapi import Response

from app.deps import ScopeDep, SessionDep
from app.errors import problem_responses
from app.models.archive import Archive
from app.models.enterprise import KeyCriterion, KeyFlagCreate
from app.models.focus import ManualKeyFlagPublic
from app.routers import secured_router
from app.routing import autocommit_reads
from app.services import archive as archive_service
from app.services import focus as focus_service

router = secured_router(machine_scope="enterprises:read", prefix="/api/v1/enterprises", tags=["archives"])


@router.get("/{enterprise_id}/archive", response_model=Archive, responses=problem_responses(401, 404))
@autocommit_reads
async def get_archive(enterprise_id: uuid.UUID, scope: ScopeDep, session: SessionDep) -> Response:
    """The quality archive (质量监管信息档案) of a producer inside your jurisdiction (404 outside):
    `basic` information with its key flags, `production` (categories with names and whether a valid
    licence covers them, a summary of licences), `licenses`, `spot_checks` (with samples),
    `annual_reviews`, `inspections` (sweep, routine and complaint), `cases`, `bad_records` and
    `recalls`, newest first. It is assembled from the records on every request, so an inspection
    appears as soon as it is recorded."""
    return Response(await archive_service.build(session, scope=scope, enterprise_id=enterprise_id),
                    media_type="application/json")


@router.post("/{enterprise_id}/key-flags", status_code=201, response_model=ManualKeyFlagPublic,
             responses=problem_responses(401, 403, 404, 409, 422))
async def set_key_flag(enterprise_id: uuid.UUID, body: KeyFlagCreate, scope: ScopeDep,
                       session: SessionDep) -> ManualKeyFlagPublic:
    """Flag a producer as a key enterprise on one of the four criteria, with the reason (inspectors,
    officers and admins; audited). It shows in `key_flags` with `source: manual` beside the flags
    computed from the records, and makes `?key=true` find the producer. The same flag with the same
    reason again answers the stored flag; with another reason it is 409 `key_flag_exists`."""
    flag = await focus_service.set_manual_flag(session, scope=scope, enterprise_id=enterprise_id, data=body)
    return focus_service.manual_public(flag)


@router.delete("/{enterprise_id}/key-flags/{criterion}", status_code=204, response_class=Response,
               responses=problem_responses(401, 403, 404))
async def clear_key_flag(enterprise_id: uuid.UUID, criterion: KeyCriterion, scope: ScopeDep,
                         session: SessionDep) -> None:
    """Remove a manual flag (audited; 404 `key_flag_not_found` when there is none). Flags computed
    from the records are not cleared by hand: they follow the records (a licence recorded, a later
    inspection finding the conditions met, failed samples older than two years)."""
    await focus_service.clear_manual_flag(session, scope=scope, enterprise_id=enterprise_id, criterion=criterion)
