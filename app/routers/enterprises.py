"""/api/v1/enterprises: producers and their quality archives."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import Response

from app.concurrency import IfMatchDep, set_etag
from app.deps import ScopeDep, SessionDep
from app.errors import problem_responses
from app.models.enterprise import EnterpriseCreate, EnterprisePublic, EnterpriseUpdate
from app.pagination import Page
from app.query import query_model
from app.routers import secured_router
from app.routing import autocommit_reads
from app.services import enterprise as enterprise_service
from app.services.enterprise import EnterpriseListQuery

router = secured_router(machine_scope="enterprises:read", prefix="/api/v1/enterprises", tags=["archives"])


@router.post("", status_code=201, response_model=EnterprisePublic,
             responses=problem_responses(401, 403, 409, 422))
async def create_enterprise(body: EnterpriseCreate, scope: ScopeDep, session: SessionDep,
                            response: Response) -> EnterprisePublic:
    """Register a producer inside your jurisdiction, licensed or not (unlicensed producers found in the
    field are registered here too; `licensed` follows from valid licences). The `uscc` is checked
    against GB 32100: a wrong check character is 422 `invalid_uscc`, unless a provincial or national
    admin accepts an early pilot-area code with `uscc_check_override` (the reason is audited).
    A repeat with the same client-supplied `id` and content answers the stored enterprise (201)."""
    e, _ = await enterprise_service.create(session, scope=scope, data=body)
    set_etag(response, e.version)
    response.headers["Location"] = f"/api/v1/enterprises/{e.id}"
    return (await enterprise_service.to_public_many(session, [e]))[0]


@router.get("", response_model=Page[EnterprisePublic], responses=problem_responses(401, 403, 422))
@autocommit_reads
async def list_enterprises(
    scope: ScopeDep, session: SessionDep,
    query: Annotated[EnterpriseListQuery, query_model(EnterpriseListQuery)],
) -> Response:
    """Producers inside your jurisdiction, newest first, each with its key-enterprise flags."""
    body = await enterprise_service.list_page(session, scope=scope, query=query)
    return Response(body, media_type="application/json")


@router.get("/{enterprise_id}", response_model=EnterprisePublic, responses=problem_responses(401, 404))
@autocommit_reads
async def get_enterprise(enterprise_id: uuid.UUID, scope: ScopeDep, session: SessionDep,
                         response: Response) -> EnterprisePublic:
    """One producer (404 outside your jurisdiction)."""
    e = await enterprise_service.get(session, scope=scope, enterprise_id=enterprise_id)
    set_etag(response, e.version)
    return (await enterprise_service.to_public_many(session, [e]))[0]


@router.patch("/{enterprise_id}", response_model=EnterprisePublic,
              responses=problem_responses(401, 403, 404, 412, 422, 428))
async def update_enterprise(enterprise_id: uuid.UUID, body: EnterpriseUpdate, if_match: IfMatchDep,
                            scope: ScopeDep, session: SessionDep, response: Response) -> EnterprisePublic:
    """Correct a producer's basic information; needs `If-Match`. `uscc`, `region_code` and
    `licensed` are not editable here."""
    e = await enterprise_service.update(session, scope=scope, enterprise_id=enterprise_id, data=body,
                                        expected_version=if_match)
    set_etag(response, e.version)
    return (await enterprise_service.to_public_many(session, [e]))[0]
