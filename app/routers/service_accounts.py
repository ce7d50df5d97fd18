"""/api/v1/service-accounts: machine clients (national or provincial admins)."""

from __future__ import annotations

import uuid

from fastapi import Response

from app.concurrency import IfMatchDep, set_etag
from app.deps import ScopeDep, SessionDep
from app.errors import problem_responses
from app.models.user import ServiceAccountCreate, ServiceAccountCreated, ServiceAccountPublic, ServiceAccountUpdate
from app.pagination import Page, PageDep, paginate
from app.routers import secured_router
from app.services import service_account as sa_service

router = secured_router(machine_scope=None, prefix="/api/v1/service-accounts", tags=["service accounts"])


@router.post("", status_code=201, response_model=ServiceAccountCreated, responses=problem_responses(401, 403, 422))
async def create_service_account(body: ServiceAccountCreate, scope: ScopeDep, session: SessionDep,
                                 response: Response) -> ServiceAccountCreated:
    """Create a machine client; `client_secret` is in this response only (store it now): a replay of
    the same `Idempotency-Key` answers the account without it, and only a hash is kept."""
    response.headers["Cache-Control"] = "no-store"
    created = await sa_service.create(session, scope=scope, data=body)
    set_etag(response, created.version)
    response.headers["Location"] = f"/api/v1/service-accounts/{created.id}"
    return created


@router.get("", response_model=Page[ServiceAccountPublic], responses=problem_responses(401, 403, 422))
async def list_service_accounts(scope: ScopeDep, session: SessionDep, page: PageDep) -> Page[ServiceAccountPublic]:
    """Service accounts inside your jurisdiction, newest first."""
    items, nxt = await paginate(session, sa_service.list_query(scope=scope), page)
    return Page[ServiceAccountPublic](items=[sa_service.to_public(s) for s in items], next_cursor=nxt)


@router.get("/{sa_id}", response_model=ServiceAccountPublic, responses=problem_responses(401, 403, 404))
async def get_service_account(sa_id: uuid.UUID, scope: ScopeDep, session: SessionDep,
                              response: Response) -> ServiceAccountPublic:
    """One service account (404 outside your jurisdiction)."""
    sa = await sa_service.get(session, scope=scope, sa_id=sa_id)
    set_etag(response, sa.version)
    return sa_service.to_public(sa)


@router.patch("/{sa_id}", response_model=ServiceAccountPublic,
              responses=problem_responses(401, 403, 404, 412, 422, 428))
async def update_service_account(sa_id: uuid.UUID, body: ServiceAccountUpdate, if_match: IfMatchDep,
                                 scope: ScopeDep, session: SessionDep, response: Response) -> ServiceAccountPublic:
    """Rename, change scopes or deactivate (its tokens stop working at once); needs `If-Match`."""
    sa = await sa_service.update(session, scope=scope, sa_id=sa_id, data=body, expected_version=if_match)
    set_etag(response, sa.version)
    return sa_service.to_public(sa)
