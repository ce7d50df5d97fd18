"""Shared builders of the case tests: a bureau hierarchy (Xihu county, Hangzhou, Zhejiang, national,
a sibling county) with one user per role, a licensed enterprise, and helpers to drive a case."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from tests.conftest import bearer, user_token
from tests.routers.archive_data import create_license
from tests.routers.test_inspections import HANGZHOU, SHANGCHENG, XIHU, ZHEJIANG, create_enterprise

URL = "/api/v1/cases"
BASIS = "《国务院关于加强食品等产品安全监督管理的特别规定》第三条"
SEAL = {"type": "seal_goods", "items": [{"name": "BV 2.5mm² 电线", "quantity": "120", "unit": "卷"}],
        "legal_basis": BASIS}
FINE = {"penalties": [{"type": "fine", "amount": "15000.00", "legal_basis": BASIS},
                      {"type": "warning", "legal_basis": BASIS}]}
SUSPEND = {"penalties": [{"type": "suspend_license", "legal_basis": BASIS}]}
REVOKE = {"penalties": [{"type": "revoke_license", "legal_basis": BASIS},
                        {"type": "fine", "amount": "50000", "legal_basis": BASIS}]}


@dataclass
class Bureaus:
    admin: str
    inspector: str       # Xihu county
    officer: str         # Xihu county
    leader: str          # Xihu county
    city_leader: str     # Hangzhou
    prov_leader: str     # Zhejiang
    nat_leader: str      # national
    sibling: str         # Shangcheng county leader+officer+inspector
    enterprise: dict[str, Any]  # licensed, in Xihu


async def make_bureaus(client: httpx.AsyncClient, admin_token: str) -> Bureaus:
    async def u(name: str, region: str, *roles: str) -> str:
        return await user_token(client, admin_token, username=name, region_code=region, roles=list(roles))

    ent = await create_enterprise(client, admin_token, XIHU)
    await create_license(client, admin_token, ent)
    return Bureaus(
        admin=admin_token, inspector=await u("xh.insp", XIHU, "inspector"), officer=await u("xh.off", XIHU, "officer"),
        leader=await u("xh.lead", XIHU, "leader"), city_leader=await u("hz.lead", HANGZHOU, "leader"),
        prov_leader=await u("zj.lead", ZHEJIANG, "leader"), nat_leader=await u("cn.lead", "000000", "leader"),
        sibling=await u("sc.all", SHANGCHENG, "leader", "officer", "inspector"), enterprise=ent)


async def file_case(client: httpx.AsyncClient, token: str, enterprise: dict[str, Any], **kw: Any) -> dict[str, Any]:
    r = await client.post(URL, headers=bearer(token), json={"enterprise_id": enterprise["id"],
                                                            "kind": "nonconforming_products", **kw})
    assert r.status_code == 201, r.text
    out: dict[str, Any] = r.json()
    return out


async def act(client: httpx.AsyncClient, token: str, case: dict[str, Any], action: str,
              body: dict[str, Any] | None = None, version: int | None = None) -> httpx.Response:
    return await client.post(f"{URL}/{case['id']}/actions/{action}", json=body or {},
                             headers={**bearer(token), "If-Match": f'"{version or case["version"]}"'})


async def ok(client: httpx.AsyncClient, token: str, case: dict[str, Any], action: str,
             body: dict[str, Any] | None = None) -> dict[str, Any]:
    r = await act(client, token, case, action, body)
    assert r.status_code == 200, r.text
    assert r.headers["etag"] == f'"{r.json()["version"]}"'
    out: dict[str, Any] = r.json()
    return out


async def get_case(client: httpx.AsyncClient, token: str, case: dict[str, Any]) -> dict[str, Any]:
    r = await client.get(f"{URL}/{case['id']}", headers=bearer(token))
    assert r.status_code == 200, r.text
    out: dict[str, Any] = r.json()
    return out


async def to_pending(client: httpx.AsyncClient, b: Bureaus, decision: dict[str, Any],
                     **kw: Any) -> dict[str, Any]:
    case = await file_case(client, b.inspector, b.enterprise, **kw)
    case = await ok(client, b.inspector, case, "investigate")
    return await ok(client, b.officer, case, "propose_decision", decision)


async def to_decided(client: httpx.AsyncClient, b: Bureaus, decision: dict[str, Any] = FINE) -> dict[str, Any]:
    case = await to_pending(client, b, decision)
    return await ok(client, b.leader, case, "approve", {"comment": "同意"})


async def scalar(conn: AsyncConnection, sql: str, **params: Any) -> Any:
    return (await conn.execute(text(sql), params)).scalar_one()


async def timeline(client: httpx.AsyncClient, token: str, case: dict[str, Any]) -> list[dict[str, Any]]:
    r = await client.get(f"{URL}/{case['id']}/timeline", headers=bearer(token))
    assert r.status_code == 200, r.text
    items: list[dict[str, Any]] = r.json()["items"]
    return items
