"""/api/v1/licenses: production licences recorded in the quality archives."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import Query, Response

from app.concurrency import set_etag
from app.deps import ScopeDep, SessionDep
from app.errors import problem_responses
from app.models.common import Day, RegionCode
from app.models.enterprise import LicenseCreate, LicensePublic, LicenseStatus
from app.pagination import Page, PageDep, paginate
from app.routers import secured_router
from app.routing import autocommit_reads
from app.services import license as license_service

router = secured_router(machine_scope="enterprises:read", prefix="/api/v1/licenses", tags=["licences"])


@router.post("", status_code=201, response_model=LicensePublic,
             responses=problem_responses(401, 403, 404, 409, 422))
async def create_license(body: LicenseCreate, scope: ScopeDep, session: SessionDep,
                         response: Response) -> LicensePublic:
    """Record a production licence of an enterprise inside your jurisdiction (inspectors, officers
    and admins of the bureau keeping the archive, whatever level issued it; an enterprise outside
    your jurisdiction is 404).

    The number is validated: national `XK12-001-00018` with `issuer_level: national`, or provincial
    `（鄂）XK12-001-00018` with `issuer_level: provincial`, the abbreviation being the enterprise's
    province (`license_province_mismatch` otherwise). ASCII parentheses are accepted and stored
    full-width. `category_code` must be in the category tree (`unknown_category`), `issued_on` before
    `expires_on` (`invalid_dates`), and the number unrecorded (409 `license_number_taken`).
    The status is `valid`, or `expired` when the licence is already past its date; it changes later
    only through cases and the expiry job. The enterprise's `licensed` is recomputed at once."""
    lic, _ = await license_service.create(session, scope=scope, data=body)
    set_etag(response, lic.version)
    response.headers["Location"] = f"/api/v1/licenses/{lic.id}"
    return license_service.to_public(lic)


@router.get("", response_model=Page[LicensePublic], responses=problem_responses(401, 403, 422))
@autocommit_reads
async def list_licenses(
    scope: ScopeDep, session: SessionDep, page: PageDep,
    enterprise_id: uuid.UUID | None = None,
    status: Annotated[LicenseStatus | None, Query(description="status as shown (a valid licence past its "
                                                              "date is expired)")] = None,
    category: Annotated[str | None, Query(max_length=16, description="category code, sub-products included")] = None,
    region: Annotated[RegionCode | None, Query(description="inside this region (403 outside yours)")] = None,
    expiring_before: Annotated[Day | None, Query(description="expires_on before this date")] = None,
    number: Annotated[str | None, Query(min_length=14, max_length=32, description="exact licence number")] = None,
) -> Page[LicensePublic]:
    """Licences of enterprises inside your jurisdiction, newest first. Combine `status=valid` and
    `expiring_before` to find the licences about to lapse."""
    stmt = await license_service.list_query(session, scope=scope, enterprise_id=enterprise_id, status=status,
                                            category=category, region=region, expiring_before=expiring_before,
                                            number=number)
    items, nxt = await paginate(session, stmt, page)
    day = license_service.today()
    return Page[LicensePublic](items=[license_service.to_public(x, day) for x in items], next_cursor=nxt)


@router.get("/{license_id}", response_model=LicensePublic, responses=problem_responses(401, 404))
@autocommit_reads
async def get_license(license_id: uuid.UUID, scope: ScopeDep, session: SessionDep,
                      response: Response) -> LicensePublic:
    """One licence (404 outside your jurisdiction). A valid licence past its `expires_on` is shown
    `expired` even before the expiry job has recorded it."""
    lic = await license_service.get(session, scope=scope, license_id=license_id)
    set_etag(response, lic.version)
    return license_service.to_public(lic)
