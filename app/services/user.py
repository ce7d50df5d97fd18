"""Users: admins manage people inside their own jurisdiction and never grant more than they hold."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from sqlalchemy import Select, func
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from app import policy
from app.concurrency import check_version
from app.config import Settings
from app.errors import Conflict, Unprocessable
from app.models.common import Role, level_of, utcnow
from app.models.user import User, UserCreate, UserPublic, UserUpdate
from app.scope import Scope, get_visible
from app.security import hash_password
from app.services import audit, reference
from app.services import auth as auth_service


def to_public(user: User) -> UserPublic:
    return UserPublic(
        id=user.id, username=user.username, display_name=user.display_name, region_code=user.region_code,
        level=level_of(user.region_code), roles=sorted(user.roles), active=user.active,
        version=user.version, created_at=user.created_at, updated_at=user.updated_at,
    )


def _snapshot(user: User) -> dict[str, Any]:
    return to_public(user).model_dump(mode="json", exclude={"created_at"})


async def _check_region(session: AsyncSession, scope: Scope, region_code: str) -> None:
    scope.require_region(region_code)
    if not await reference.region_exists(session, region_code):
        raise Unprocessable(f"region_code {region_code} is not a GB/T 2260 code", code="unknown_region")


async def create_user(session: AsyncSession, *, scope: Scope, data: UserCreate) -> User:
    policy.require(policy.is_admin(scope))
    await _check_region(session, scope, data.region_code)
    policy.require(policy.can_grant_roles(scope, data.roles), code="role_not_held")
    exists = (await session.execute(
        select(User.id).where(func.lower(User.username) == data.username.lower()).execution_options(unscoped=True)
    )).first()
    if exists:
        raise Conflict(f"username {data.username} is taken", code="username_taken")
    user = User(username=data.username, password_hash=await asyncio.to_thread(hash_password, data.password),
                display_name=data.display_name, region_code=data.region_code,
                roles=[r.value for r in data.roles], active=data.active)
    session.add(user)
    await session.flush()
    await audit.record(session, action="user.create", entity_type="user", entity_id=str(user.id),
                       region_code=user.region_code, after=_snapshot(user))
    return user


def users_query(*, scope: Scope, region: str | None, role: Role | None, active: bool | None,
                q: str | None) -> Select[Any]:
    policy.require(policy.is_admin(scope))
    stmt = select(User)
    if region is not None:
        stmt = stmt.where(scope.inside(col(User.region_code), region))
    if role is not None:
        stmt = stmt.where(User.roles.contains([role.value]))  # type: ignore[attr-defined]
    if active is not None:
        stmt = stmt.where(User.active == active)
    if q:
        stmt = stmt.where(col(User.username).contains(q, autoescape=True)
                          | col(User.display_name).contains(q, autoescape=True))
    return stmt.order_by(User.created_at.desc(), User.id.desc())  # type: ignore[attr-defined]


async def get_user(session: AsyncSession, *, scope: Scope, user_id: uuid.UUID, for_update: bool = False) -> User:
    """Anyone reads their own account; admins read accounts inside their jurisdiction."""
    if user_id != scope.principal_id:
        policy.require(policy.is_admin(scope))
    return await get_visible(session, User, user_id, what="user", for_update=for_update)


async def update_user(session: AsyncSession, *, scope: Scope, user_id: uuid.UUID, data: UserUpdate,
                      expected_version: int, settings: Settings) -> User:
    policy.require(policy.is_admin(scope))
    user = await get_user(session, scope=scope, user_id=user_id, for_update=True)
    policy.require(policy.can_manage_user(scope, user.roles), code="role_not_held")
    check_version(user.version, expected_version, current_body=to_public(user).model_dump(mode="json"))
    before = _snapshot(user)
    changes = data.model_dump(exclude_unset=True)
    if not changes:  # an empty PATCH changes nothing: no new version, no audit row
        return user
    if "region_code" in changes:
        await _check_region(session, scope, changes["region_code"])
        user.region_code = changes["region_code"]
    if "roles" in changes:
        added = set(changes["roles"]) - set(user.roles)
        policy.require(policy.can_grant_roles(scope, added), code="role_not_held")
        user.roles = sorted(r.value if isinstance(r, Role) else r for r in changes["roles"])
    if "display_name" in changes:
        user.display_name = changes["display_name"]
    revoke_reason = None
    if "password" in changes:
        user.password_hash = await asyncio.to_thread(hash_password, changes["password"])
        revoke_reason = "password_changed"
    if "active" in changes:
        if user.active and not changes["active"]:
            revoke_reason = "deactivated"
        user.active = changes["active"]
    if revoke_reason:
        await auth_service.revoke_user_tokens(session, user.id, reason=revoke_reason)
        now = utcnow()
        user.tokens_valid_after = now.replace(microsecond=now.microsecond // 1000 * 1000)  # iat has ms
    user.version += 1
    user.updated_at = utcnow()
    await session.flush()
    after = _snapshot(user)
    if "password" in changes:
        after["password_changed"] = True
    await audit.record(session, action="user.update", entity_type="user", entity_id=str(user.id),
                       region_code=user.region_code, before=before, after=after)
    return user


async def ensure_bootstrap_admin(session: AsyncSession, settings: Settings) -> User | None:
    """Create the first national admin (all four roles) from the environment when no user exists."""
    if not settings.bootstrap_admin_username or not settings.bootstrap_admin_password:
        return None
    any_user = (await session.execute(select(User.id).limit(1).execution_options(unscoped=True))).first()
    if any_user:
        return None
    user = User(username=settings.bootstrap_admin_username,
                password_hash=hash_password(settings.bootstrap_admin_password),
                display_name="Bootstrap administrator", region_code=settings.bootstrap_admin_region,
                roles=[r.value for r in Role])
    session.add(user)
    await session.flush()
    await audit.record(session, action="user.bootstrap", entity_type="user", entity_id=str(user.id),
                       region_code=user.region_code, after=_snapshot(user), actor_type="system",
                       actor_name="bootstrap")
    return user
