"""Service accounts: machine clients of other government systems, with scopes and a region."""

from __future__ import annotations

import secrets
import uuid
from typing import Any

from sqlalchemy import Select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import select

from app import policy
from app.concurrency import check_version
from app.errors import Unprocessable
from app.models.common import level_of
from app.models.user import (
    ServiceAccount,
    ServiceAccountCreate,
    ServiceAccountCreated,
    ServiceAccountPublic,
    ServiceAccountUpdate,
)
from app.scope import Scope, get_visible
from app.security import hash_secret, new_secret
from app.services import audit, reference, versioned


def to_public(sa: ServiceAccount) -> ServiceAccountPublic:
    return ServiceAccountPublic(id=sa.id, name=sa.name, client_id=sa.client_id, region_code=sa.region_code,
                                level=level_of(sa.region_code), scopes=sorted(sa.scopes), agency=sa.agency,
                                active=sa.active, version=sa.version, created_at=sa.created_at)


def _snapshot(sa: ServiceAccount) -> dict[str, Any]:
    return to_public(sa).model_dump(mode="json")


async def create(session: AsyncSession, *, scope: Scope, data: ServiceAccountCreate) -> ServiceAccountCreated:
    policy.require(policy.can_manage_service_accounts(scope))
    scope.require_region(data.region_code)
    if not await reference.region_exists(session, data.region_code):
        raise Unprocessable(f"region_code {data.region_code} is not a GB/T 2260 code", code="unknown_region")
    secret = new_secret()
    sa = ServiceAccount(name=data.name, client_id=f"sa-{secrets.token_hex(8)}", secret_hash=hash_secret(secret),
                        region_code=data.region_code, scopes=data.scopes, agency=data.agency,
                        created_by=scope.principal_id)
    session.add(sa)
    await session.flush()
    await audit.record(session, action="service_account.create", entity_type="service_account",
                       entity_id=str(sa.id), region_code=sa.region_code, after=_snapshot(sa))
    return ServiceAccountCreated(**to_public(sa).model_dump(), client_secret=secret)


def list_query(*, scope: Scope) -> Select[Any]:
    policy.require(policy.can_manage_service_accounts(scope))
    return select(ServiceAccount).order_by(ServiceAccount.created_at.desc(), ServiceAccount.id.desc())  # type: ignore[attr-defined]


async def get(session: AsyncSession, *, scope: Scope, sa_id: uuid.UUID, for_update: bool = False) -> ServiceAccount:
    policy.require(policy.can_manage_service_accounts(scope))
    return await get_visible(session, ServiceAccount, sa_id, what="service_account", for_update=for_update)


async def update(session: AsyncSession, *, scope: Scope, sa_id: uuid.UUID, data: ServiceAccountUpdate,
                 expected_version: int) -> ServiceAccount:
    sa = await get(session, scope=scope, sa_id=sa_id, for_update=True)
    check_version(sa.version, expected_version, current_body=_snapshot(sa))
    changes = data.model_dump(exclude_unset=True)
    if not changes:  # an empty PATCH changes nothing: no new version, no audit row
        return sa
    return await versioned.apply_changes(session, sa, changes, entity_type="service_account", snapshot=_snapshot)
