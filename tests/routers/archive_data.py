"""Small builders for the licence, archive and focus-list tests: enterprises and licences through
HTTP, inspections and cases as rows (committed through the test's own session)."""

from __future__ import annotations

import itertools
import uuid
from datetime import date, datetime, timedelta
from typing import Any

import httpx
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.models.case import CaseKind, PenaltyCase
from app.models.inspection import Inspection
from app.services import license as license_service
from app.services import uscc
from tests.conftest import bearer

_serial = itertools.count(1)
_numbers = itertools.count(1)
OK_CHECKS = {k: {"ok": True, "note": None} for k in
             ("licensed", "conditions_met", "standard_production", "no_safety_hazard", "no_fraud")}


def today() -> date:
    return license_service.today()


def days_ago(n: int) -> datetime:
    return datetime.now(license_service.CHINA_TZ) - timedelta(days=n)


async def create_enterprise(client: httpx.AsyncClient, token: str, region_code: str = "330106",
                            **kw: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"uscc": uscc.make(f"91{region_code}MA{next(_serial):07d}"),
                            "name": "杭州西湖电线电缆有限公司", "region_code": region_code, "size": "medium",
                            "category_codes": ["05", "0501"]}
    body.update(kw)
    r = await client.post("/api/v1/enterprises", headers=bearer(token), json=body)
    assert r.status_code == 201, r.text
    out: dict[str, Any] = r.json()
    return out


def license_body(enterprise: dict[str, Any], **kw: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"number": f"XK05-001-{next(_numbers):05d}", "enterprise_id": enterprise["id"],
                            "category_code": "05", "issued_on": (today() - timedelta(days=365)).isoformat(),
                            "expires_on": (today() + timedelta(days=365 * 4)).isoformat(),
                            "issuer_level": "national"}
    body.update(kw)
    return body


async def create_license(client: httpx.AsyncClient, token: str, enterprise: dict[str, Any],
                         **kw: Any) -> dict[str, Any]:
    r = await client.post("/api/v1/licenses", headers=bearer(token), json=license_body(enterprise, **kw))
    assert r.status_code == 201, r.text
    out: dict[str, Any] = r.json()
    return out


def sample(passed: bool, product: str = "BV 2.5mm² 电线") -> dict[str, Any]:
    return {"product": product, "batch": "20261101", "standard": "GB/T 5023.3-2008", "lab": "浙江省质检院",
            "passed": passed, "failed_items": [] if passed else ["导体电阻"]}


async def insert_inspection(sessionmaker: async_sessionmaker[AsyncSession], enterprise: dict[str, Any], *,
                            kind: str = "sweep", at: datetime | None = None,
                            samples: list[dict[str, Any]] | None = None,
                            failed: tuple[str, ...] = (), notes: dict[str, str] | None = None,
                            conclusion: str | None = None) -> uuid.UUID:
    """An inspection row as the inspections API stores it (checks in ``failed`` not ok)."""
    checks = {k: {"ok": k not in failed, "note": (notes or {}).get(k)} for k in OK_CHECKS}
    samples = samples or []
    issues = bool(failed) or any(not s["passed"] for s in samples)
    row = Inspection(enterprise_id=uuid.UUID(enterprise["id"]), region_code=enterprise["region_code"], kind=kind,
                     inspected_at=at or days_ago(1), officers=["王芳", "李强"], checks=checks, samples=samples,
                     conclusion=conclusion or ("issues_found" if issues else "compliant"), body_hash="0" * 64)
    async with sessionmaker() as session:
        session.add(row)
        await session.commit()
    return row.id


async def insert_case(sessionmaker: async_sessionmaker[AsyncSession], enterprise: dict[str, Any], *,
                      kind: CaseKind = CaseKind.nonconforming_products, at: datetime | None = None) -> uuid.UUID:
    row = PenaltyCase(enterprise_id=uuid.UUID(enterprise["id"]), region_code=enterprise["region_code"],
                      bureau_code=enterprise["region_code"], kind=kind, created_at=at or days_ago(1))
    async with sessionmaker() as session:
        session.add(row)
        await session.commit()
    return row.id
