"""/api/v1/users: people, managed by administrators inside their jurisdiction."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import Query, Response

from app.concurrency import IfMatchDep, set_etag
from app.deps import ScopeDep, SessionDep, SettingsDep
from app.errors import problem_responses
from app.models.common import Role
from app.models.user import UserCreate, UserPublic, UserUpdate
from app.pagination import Page, PageDep, paginate
from app.routers import secured_router
from app.routing import autocommit_reads
from app.services import user as user_service

router = secured_router(machine_scope=None, prefix="/api/v1/users", tags=["users"])


@router.post("", status_code=201, response_model=UserPublic, responses=problem_responses(401, 403, 409, 422))
async def create_user(body: UserCreate, scope: ScopeDep, session: SessionDep, response: Response) -> UserPublic:
    """Create a user inside your jurisdiction with roles you hold yourself (403 `not_in_jurisdiction`
    or `role_not_held` otherwise). Admins only."""
    user = await user_service.create_user(session, scope=scope, data=body)
    set_etag(response, user.version)
    response.headers["Location"] = f"/api/v1/users/{user.id}"
    return user_service.to_public(user)


@router.get("", response_model=Page[UserPublic], responses=problem_responses(401, 403, 422))
@autocommit_reads
async def list_users(
    scope: ScopeDep, session: SessionDep, page: PageDep,
    region: Annotated[str | None, Query(pattern=r"^[0-9]{6}$", description="inside this region")] = None,
    role: Role | None = None,
    active: bool | None = None,
    q: Annotated[str | None, Query(max_length=64, description="username or display name contains")] = None,
) -> Page[UserPublic]:
    """Users inside your jurisdiction, newest first. Admins only."""
    stmt = user_service.users_query(scope=scope, region=region, role=role, active=active, q=q)
    items, nxt = await paginate(session, stmt, page)
    return Page[UserPublic](items=[user_service.to_public(u) for u in items], next_cursor=nxt)


@router.get("/{user_id}", response_model=UserPublic, responses=problem_responses(401, 403, 404))
@autocommit_reads
async def get_user(user_id: uuid.UUID, scope: ScopeDep, session: SessionDep, response: Response) -> UserPublic:
    """One user (yourself, or as an admin anyone inside your jurisdiction; 404 outside it)."""
    user = await user_service.get_user(session, scope=scope, user_id=user_id)
    set_etag(response, user.version)
    return user_service.to_public(user)


@router.patch("/{user_id}", response_model=UserPublic, responses=problem_responses(401, 403, 404, 412, 422, 428))
async def update_user(user_id: uuid.UUID, body: UserUpdate, if_match: IfMatchDep, scope: ScopeDep,
                      session: SessionDep, settings: SettingsDep, response: Response) -> UserPublic:
    """Change a user; needs `If-Match` with its ETag. Deactivating a user (or changing its password)
    revokes its refresh tokens, and its access tokens stop working at once."""
    user = await user_service.update_user(session, scope=scope, user_id=user_id, data=body,
                                          expected_version=if_match, settings=settings)
    set_etag(response, user.version)
    return user_service.to_public(user)
