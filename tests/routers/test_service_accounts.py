"""/api/v1/service-accounts over HTTP: who manages them, scoping, the once-shown secret, deactivation."""

from __future__ import annotations

import hashlib
import uuid
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from tests.conftest import assert_problem, bearer, create_user, login

PROBLEM_JSON = "application/problem+json"
PASSWORD = "correct-horse-battery"






def sa_body(name: str = "zj-market-regulator", region_code: str = "330000",
            scopes: list[str] | None = None) -> dict[str, Any]:
    return {"name": name, "region_code": region_code, "scopes": scopes or ["enterprises:read", "recalls:read"]}


async def admin_at(client: httpx.AsyncClient, admin_token: str, region_code: str,
                   roles: list[str] | None = None) -> str:
    username = f"admin{region_code}"
    await create_user(client, admin_token, username=username, region_code=region_code, roles=roles or ["admin"])
    return str((await login(client, username, PASSWORD))["access_token"])


async def create_sa(client: httpx.AsyncClient, token: str, **kw: Any) -> dict[str, Any]:
    r = await client.post("/api/v1/service-accounts", headers=bearer(token), json=sa_body(**kw))
    assert r.status_code == 201, r.text
    body: dict[str, Any] = r.json()
    return body


async def client_credentials(client: httpx.AsyncClient, client_id: str, secret: str) -> httpx.Response:
    return await client.post("/api/v1/auth/token", data={"grant_type": "client_credentials", "client_id": client_id,
                                                         "client_secret": secret})


async def sa_count(connection: AsyncConnection) -> int:
    return int((await connection.execute(text("SELECT count(*) FROM service_account"))).scalar_one())


async def test_secret_is_shown_once_and_stored_hashed(client, admin_token, connection):
    r = await client.post("/api/v1/service-accounts", headers=bearer(admin_token),
                          json=sa_body(scopes=["recalls:read", "enterprises:read", "recalls:read"]))
    assert r.status_code == 201, r.text
    created = r.json()
    secret = created["client_secret"]
    assert len(secret) >= 32 and created["client_id"].startswith("sa-")
    assert created["region_code"] == "330000" and created["level"] == "provincial"
    assert created["scopes"] == ["enterprises:read", "recalls:read"] and created["active"] is True
    assert created["version"] == 1 and r.headers["etag"] == '"1"'
    assert r.headers["location"] == f"/api/v1/service-accounts/{created['id']}"

    row = (await connection.execute(text("SELECT secret_hash, created_by FROM service_account WHERE id = :i"),
                                    {"i": created["id"]})).one()
    assert row.secret_hash == "sha256$" + hashlib.sha256(secret.encode()).hexdigest()
    me = (await client.get("/api/v1/me", headers=bearer(admin_token))).json()
    assert str(row.created_by) == me["id"]

    r = await client.get(f"/api/v1/service-accounts/{created['id']}", headers=bearer(admin_token))
    assert r.status_code == 200 and r.headers["etag"] == '"1"'
    assert "client_secret" not in r.json() and secret not in r.text and "secret_hash" not in r.text
    assert r.json() == {k: v for k, v in created.items() if k != "client_secret"}

    r = await client.get("/api/v1/service-accounts", headers=bearer(admin_token))
    assert r.status_code == 200
    assert [i["id"] for i in r.json()["items"]] == [created["id"]]
    assert secret not in r.text and "secret" not in r.text

    r = await client.get("/api/v1/audit-events", headers=bearer(admin_token),
                         params={"entity_type": "service_account", "entity_id": created["id"]})
    assert [e["action"] for e in r.json()["items"]] == ["service_account.create"]
    assert r.json()["items"][0]["after"]["client_id"] == created["client_id"]
    assert secret not in r.text and "secret" not in r.text

    # The secret works, for a token with the account's scopes and no refresh token.
    r = await client_credentials(client, created["client_id"], secret)
    assert r.status_code == 200, r.text
    assert r.json()["scope"] == "enterprises:read recalls:read" and r.json().get("refresh_token") is None
    assert_problem(await client_credentials(client, created["client_id"], secret + "x"), 401, "invalid_client")


async def test_provincial_admin_creates_service_accounts_inside_its_province(client, admin_token, connection):
    prov = await admin_at(client, admin_token, "330000")
    for region_code in ("330000", "330100", "330106"):
        created = await create_sa(client, prov, name=f"sa {region_code}", region_code=region_code)
        assert created["region_code"] == region_code
    assert await sa_count(connection) == 3


@pytest.mark.parametrize("region_code", ["320000", "320102", "000000"])
async def test_provincial_admin_cannot_create_service_account_outside(client, admin_token, connection, region_code):
    prov = await admin_at(client, admin_token, "330000")
    r = await client.post("/api/v1/service-accounts", headers=bearer(prov), json=sa_body(region_code=region_code))
    assert_problem(r, 403, "not_in_jurisdiction")
    assert await sa_count(connection) == 0


@pytest.mark.parametrize(("region_code", "roles"), [
    ("330100", ["admin"]),                                      # city admin
    ("330106", ["admin", "inspector", "leader", "officer"]),    # county admin with every role
    ("330000", ["inspector", "leader", "officer"]),             # provincial, but not an admin
    ("000000", ["leader"]),                                     # national, but not an admin
])
async def test_only_national_or_provincial_admins_manage_service_accounts(client, admin_token, connection,
                                                                          region_code, roles):
    existing = await create_sa(client, admin_token, region_code="330106")
    token = await admin_at(client, admin_token, region_code, roles)

    r = await client.post("/api/v1/service-accounts", headers=bearer(token), json=sa_body(region_code=region_code))
    assert_problem(r, 403, "forbidden")
    assert_problem(await client.get("/api/v1/service-accounts", headers=bearer(token)), 403, "forbidden")
    assert_problem(await client.get(f"/api/v1/service-accounts/{existing['id']}", headers=bearer(token)),
                   403, "forbidden")
    r = await client.patch(f"/api/v1/service-accounts/{existing['id']}",
                           headers={**bearer(token), "If-Match": '"1"'}, json={"active": False})
    assert_problem(r, 403, "forbidden")
    assert await sa_count(connection) == 1
    assert (await connection.execute(text("SELECT active FROM service_account"))).scalar_one() is True


@pytest.mark.parametrize("override", [
    {"scopes": ["enterprises:write"]},
    {"scopes": ["enterprises:read", "*"]},
    {"scopes": []},
    {"name": ""},
    {"client_id": "sa-chosen-by-me"},
    {"client_secret": "my-own-secret"},
    {"secret_hash": "$argon2id$v=19$m=65536,t=3,p=4$c29tZXNhbHQ$aGFzaA"},
    {"active": False, "id": "4b0e8a4e-2f1c-4c55-9a59-7f0c1b1a2d3e"},
    {"region_code": "3300"},
    {"region_code": "33000O"},
], ids=["unknown-scope", "wildcard-scope", "no-scopes", "empty-name", "client-id", "client-secret", "secret-hash",
        "id-and-active", "short-region", "letter-in-region"])
async def test_create_rejects_invalid_input(client, admin_token, connection, override):
    r = await client.post("/api/v1/service-accounts", headers=bearer(admin_token), json={**sa_body(), **override})
    body = assert_problem(r, 422, "validation_error")
    fields = {e["loc"][1] for e in body["errors"] if len(e["loc"]) > 1}
    assert next(iter(override)) in fields, body["errors"]
    assert await sa_count(connection) == 0


async def test_create_rejects_unknown_region(client, admin_token, connection):
    r = await client.post("/api/v1/service-accounts", headers=bearer(admin_token), json=sa_body(region_code="999999"))
    assert_problem(r, 422, "unknown_region")
    assert await sa_count(connection) == 0


async def test_national_admin_sees_every_service_account(client, admin_token):
    zj = await create_sa(client, admin_token, name="zhejiang", region_code="330000")
    js = await create_sa(client, admin_token, name="jiangsu", region_code="320000")
    r = await client.get("/api/v1/service-accounts", headers=bearer(admin_token))
    assert [i["name"] for i in r.json()["items"]] == ["jiangsu", "zhejiang"]  # newest first
    for sa in (zj, js):
        r = await client.get(f"/api/v1/service-accounts/{sa['id']}", headers=bearer(admin_token))
        assert r.status_code == 200 and r.json()["region_code"] == sa["region_code"]


async def test_provincial_admin_sees_only_its_provinces_service_accounts(client, admin_token, connection):
    zj = await create_sa(client, admin_token, name="zhejiang", region_code="330000")
    hz = await create_sa(client, admin_token, name="hangzhou", region_code="330100")
    js = await create_sa(client, admin_token, name="jiangsu", region_code="320000")
    prov = await admin_at(client, admin_token, "330000")

    r = await client.get("/api/v1/service-accounts", headers=bearer(prov))
    assert r.status_code == 200, r.text
    assert {i["id"] for i in r.json()["items"]} == {zj["id"], hz["id"]}
    assert (await client.get(f"/api/v1/service-accounts/{hz['id']}", headers=bearer(prov))).status_code == 200

    missing = await client.get(f"/api/v1/service-accounts/{uuid.uuid4()}", headers=bearer(prov))
    outside = await client.get(f"/api/v1/service-accounts/{js['id']}", headers=bearer(prov))
    assert_problem(outside, 404, "service_account_not_found")
    assert outside.json()["title"] == missing.json()["title"] and "jiangsu" not in outside.text
    r = await client.patch(f"/api/v1/service-accounts/{js['id']}", headers={**bearer(prov), "If-Match": '"1"'},
                           json={"active": False})
    assert_problem(r, 404, "service_account_not_found")
    row = (await connection.execute(text("SELECT active, version FROM service_account WHERE id = :i"),
                                    {"i": js["id"]})).one()
    assert row.active is True and row.version == 1


async def test_deactivated_service_account_cannot_get_or_use_tokens(client, admin_token, connection):
    sa = await create_sa(client, admin_token, region_code="330000")
    r = await client_credentials(client, sa["client_id"], sa["client_secret"])
    assert r.status_code == 200, r.text
    sa_token = r.json()["access_token"]
    assert (await client.get("/api/v1/enterprises", headers=bearer(sa_token))).status_code == 200
    url = f"/api/v1/service-accounts/{sa['id']}"

    assert_problem(await client.patch(url, headers=bearer(admin_token), json={"active": False}),
                   428, "precondition_required")
    r = await client.patch(url, headers={**bearer(admin_token), "If-Match": '"1"'}, json={"name": "renamed"})
    assert r.status_code == 200 and r.json()["version"] == 2
    body = assert_problem(await client.patch(url, headers={**bearer(admin_token), "If-Match": '"1"'},
                                             json={"active": False}), 412, "precondition_failed")
    assert body["current_version"] == 2 and body["current"]["active"] is True
    assert (await connection.execute(text("SELECT active FROM service_account"))).scalar_one() is True

    r = await client.patch(url, headers={**bearer(admin_token), "If-Match": '"2"'}, json={"active": False})
    assert r.status_code == 200, r.text
    assert r.json()["active"] is False and r.json()["version"] == 3 and r.headers["etag"] == '"3"'
    assert "client_secret" not in r.json()
    assert (await connection.execute(text("SELECT active FROM service_account"))).scalar_one() is False

    assert_problem(await client_credentials(client, sa["client_id"], sa["client_secret"]), 401, "invalid_client")
    assert_problem(await client.get("/api/v1/enterprises", headers=bearer(sa_token)), 401, "invalid_token")

    r = await client.get("/api/v1/audit-events", headers=bearer(admin_token),
                         params={"entity_type": "service_account", "entity_id": sa["id"]})
    events = r.json()["items"]
    assert [e["action"] for e in events] == ["service_account.update", "service_account.update",
                                             "service_account.create"]
    assert events[0]["before"]["active"] is True and events[0]["after"]["active"] is False
    assert sa["client_secret"] not in r.text


@pytest.mark.parametrize("field", ["scopes", "name", "active"])
async def test_patch_with_explicit_null_is_422(client, admin_token, connection, field):
    sa = await create_sa(client, admin_token)
    r = await client.patch(f"/api/v1/service-accounts/{sa['id']}", headers={**bearer(admin_token), "If-Match": '"1"'},
                           json={field: None})
    assert r.status_code == 422, r.text
    assert r.headers["content-type"].startswith(PROBLEM_JSON)
    assert (await connection.execute(text("SELECT version FROM service_account"))).scalar_one() == 1


async def test_patch_rejects_unknown_scope_and_fields(client, admin_token, connection):
    sa = await create_sa(client, admin_token)
    for payload in ({"scopes": ["users:write"]}, {"region_code": "320000"}, {"client_id": "sa-x"}):
        r = await client.patch(f"/api/v1/service-accounts/{sa['id']}",
                               headers={**bearer(admin_token), "If-Match": '"1"'}, json=payload)
        assert_problem(r, 422, "validation_error")
    row = (await connection.execute(text("SELECT region_code, scopes, version FROM service_account"))).one()
    assert (row.region_code, row.scopes, row.version) == ("330000", ["enterprises:read", "recalls:read"], 1)


async def test_service_accounts_cannot_manage_users_or_service_accounts(client, admin_token, connection):
    sa = await create_sa(client, admin_token, region_code="000000")
    token = (await client_credentials(client, sa["client_id"], sa["client_secret"])).json()["access_token"]
    r = await client.post("/api/v1/users", headers=bearer(token), json={
        "username": "robot.made", "password": PASSWORD, "display_name": "x", "region_code": "330106",
        "roles": ["inspector"]})
    assert_problem(r, 403, "forbidden")
    assert_problem(await client.get("/api/v1/users", headers=bearer(token)), 403, "forbidden")
    assert_problem(await client.post("/api/v1/service-accounts", headers=bearer(token), json=sa_body()),
                   403, "forbidden")
    assert_problem(await client.get("/api/v1/service-accounts", headers=bearer(token)), 403, "forbidden")
    assert await sa_count(connection) == 1
    assert (await connection.execute(text("SELECT count(*) FROM app_user WHERE username = 'robot.made'"))
            ).scalar_one() == 0
