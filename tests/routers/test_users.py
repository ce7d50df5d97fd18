"""/api/v1/users over HTTP: grant rules, validation, ETag/If-Match and the audit trail.

Jurisdiction reads and lists (who sees whom) are in tests/test_scope.py."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from tests.conftest import assert_problem, bearer, create_user, login

PROBLEM_JSON = "application/problem+json"
PASSWORD = "correct-horse-battery"






def user_body(username: str, region_code: str, roles: list[str], **overrides: Any) -> dict[str, Any]:
    body = {"username": username, "password": PASSWORD, "display_name": username,
            "region_code": region_code, "roles": roles}
    return {**body, **overrides}


async def make_user(client: httpx.AsyncClient, token: str, username: str, region_code: str,
                    roles: list[str]) -> tuple[dict[str, Any], str]:
    """Create a user as ``token`` and log in as it: (its public record, its access token)."""
    body = await create_user(client, token, username=username, region_code=region_code, roles=roles)
    return body, str((await login(client, username, PASSWORD))["access_token"])


async def db_user(connection: AsyncConnection, username: str) -> dict[str, Any] | None:
    row = (await connection.execute(text("SELECT * FROM app_user WHERE username = :u"), {"u": username})).mappings()
    first = row.first()
    return dict(first) if first else None


async def audit_count(connection: AsyncConnection, *, action: str, username: str) -> int:
    return int((await connection.execute(text(
        "SELECT count(*) FROM audit_event WHERE action = :a AND after->>'username' = :u"),
        {"a": action, "u": username})).scalar_one())


def if_match(token: str, version: int) -> dict[str, str]:
    return {**bearer(token), "If-Match": f'"{version}"'}


# --- who may create whom ------------------------------------------------------------------------


async def test_provincial_admin_creates_user_inside_its_province(client, admin_token, connection):
    _, prov = await make_user(client, admin_token, "zj.admin", "330000", ["admin", "inspector"])
    r = await client.post("/api/v1/users", headers=bearer(prov),
                          json=user_body("xihu.inspector", "330106", ["inspector"]))
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["username"] == "xihu.inspector"
    assert body["region_code"] == "330106" and body["level"] == "county"
    assert body["roles"] == ["inspector"] and body["active"] is True and body["version"] == 1
    assert r.headers["etag"] == '"1"'
    assert r.headers["location"] == f"/api/v1/users/{body['id']}"
    assert "password" not in r.text

    row = await db_user(connection, "xihu.inspector")
    assert row is not None and str(row["id"]) == body["id"]
    assert row["region_code"] == "330106" and row["roles"] == ["inspector"]
    assert row["password_hash"].startswith("$argon2") and PASSWORD not in row["password_hash"]
    assert await audit_count(connection, action="user.create", username="xihu.inspector") == 1
    await login(client, "xihu.inspector", PASSWORD)  # the new user can log in


@pytest.mark.parametrize("region_code", ["320102", "320000", "000000"])
async def test_provincial_admin_cannot_create_user_outside_its_province(client, admin_token, connection,
                                                                         region_code):
    _, prov = await make_user(client, admin_token, "zj.admin", "330000", ["admin", "inspector"])
    r = await client.post("/api/v1/users", headers=bearer(prov),
                          json=user_body("outsider", region_code, ["inspector"]))
    assert_problem(r, 403, "not_in_jurisdiction")
    assert await db_user(connection, "outsider") is None
    assert await audit_count(connection, action="user.create", username="outsider") == 0


async def test_county_admin_cannot_create_city_provincial_national_or_sibling_user(client, admin_token, connection):
    _, county = await make_user(client, admin_token, "xihu.admin", "330106", ["admin", "inspector"])
    for i, region_code in enumerate(["330100", "330000", "000000", "330102"]):
        r = await client.post("/api/v1/users", headers=bearer(county),
                              json=user_body(f"above{i}", region_code, ["inspector"]))
        assert_problem(r, 403, "not_in_jurisdiction")
        assert await db_user(connection, f"above{i}") is None
    r = await client.post("/api/v1/users", headers=bearer(county),
                          json=user_body("xihu.inspector", "330106", ["inspector"]))
    assert r.status_code == 201, r.text  # its own county is fine
    assert (await db_user(connection, "xihu.inspector")) is not None


async def test_admin_cannot_create_user_with_role_it_does_not_hold(client, admin_token, connection):
    _, prov = await make_user(client, admin_token, "zj.admin", "330000", ["admin", "inspector"])
    for roles in (["leader"], ["inspector", "officer"]):
        r = await client.post("/api/v1/users", headers=bearer(prov),
                              json=user_body("promoted", "330106", roles))
        body = assert_problem(r, 403, "role_not_held")
        assert roles[-1] in body["detail"]
        assert await db_user(connection, "promoted") is None
    assert await audit_count(connection, action="user.create", username="promoted") == 0


async def test_admin_cannot_add_role_it_does_not_hold_on_patch(client, admin_token, connection):
    # A national admin, so this is about roles only (jurisdiction is tests/test_scope.py's business).
    me, limited = await make_user(client, admin_token, "cn.admin", "000000", ["admin", "inspector"])
    target = await create_user(client, limited, username="xihu.inspector", region_code="330106", roles=["inspector"])
    r = await client.patch(f"/api/v1/users/{target['id']}", headers=if_match(limited, 1),
                           json={"roles": ["inspector", "leader"]})
    body = assert_problem(r, 403, "role_not_held")
    assert "leader" in body["detail"]
    row = await db_user(connection, "xihu.inspector")
    assert row is not None and row["roles"] == ["inspector"] and row["version"] == 1

    # Nor can it make itself more than it is.
    r = await client.patch(f"/api/v1/users/{me['id']}", headers=if_match(limited, 1),
                           json={"roles": ["admin", "inspector", "leader"]})
    assert_problem(r, 403, "role_not_held")
    row = await db_user(connection, "cn.admin")
    assert row is not None and sorted(row["roles"]) == ["admin", "inspector"] and row["version"] == 1
    assert (await connection.execute(text("SELECT count(*) FROM audit_event WHERE action = 'user.update'"))
            ).scalar_one() == 0


async def test_admin_cannot_change_a_user_holding_roles_it_lacks(client, admin_token, connection):
    """Resetting the password of a leader would let an admin without the leader role act as one."""
    leader = await create_user(client, admin_token, username="xihu.leader", region_code="330106",
                               roles=["inspector", "leader"])
    _, limited = await make_user(client, admin_token, "cn.admin", "000000", ["admin", "inspector"])
    for change in ({"password": "a-new-password-1"}, {"roles": ["inspector"]}, {"display_name": "X"}):
        r = await client.patch(f"/api/v1/users/{leader['id']}", headers=if_match(limited, 1), json=change)
        assert_problem(r, 403, "role_not_held")
    row = await db_user(connection, "xihu.leader")
    assert row is not None and row["roles"] == ["inspector", "leader"] and row["version"] == 1


async def test_admin_may_remove_roles_it_holds_from_a_user(client, admin_token, connection):
    leader = await create_user(client, admin_token, username="xihu.leader2", region_code="330106",
                               roles=["inspector", "leader"])
    r = await client.patch(f"/api/v1/users/{leader['id']}", headers=if_match(admin_token, 1),
                           json={"roles": ["leader"], "display_name": "Xihu leader"})
    assert r.status_code == 200, r.text
    assert r.json()["roles"] == ["leader"] and r.json()["display_name"] == "Xihu leader"
    row = await db_user(connection, "xihu.leader2")
    assert row is not None and row["roles"] == ["leader"] and row["version"] == 2


async def test_admin_cannot_move_user_outside_its_jurisdiction(client, admin_token, connection):
    _, prov = await make_user(client, admin_token, "zj.admin", "330000", ["admin", "inspector"])
    target = await create_user(client, prov, username="xihu.inspector", region_code="330106", roles=["inspector"])
    r = await client.patch(f"/api/v1/users/{target['id']}", headers=if_match(prov, 1),
                           json={"region_code": "320102"})
    assert_problem(r, 403, "not_in_jurisdiction")
    row = await db_user(connection, "xihu.inspector")
    assert row is not None and row["region_code"] == "330106" and row["version"] == 1


@pytest.mark.parametrize("roles", [["inspector"], ["officer"], ["leader"], ["inspector", "leader", "officer"]])
async def test_non_admins_cannot_create_list_or_read_other_users(client, admin_token, connection, roles):
    _, token = await make_user(client, admin_token, "worker", "330106", roles)
    other = await create_user(client, admin_token, username="colleague", region_code="330106", roles=["inspector"])

    r = await client.post("/api/v1/users", headers=bearer(token),
                          json=user_body("made.by.worker", "330106", ["inspector"]))
    assert_problem(r, 403, "forbidden")
    assert await db_user(connection, "made.by.worker") is None
    assert_problem(await client.get("/api/v1/users", headers=bearer(token)), 403, "forbidden")
    assert_problem(await client.get("/api/v1/users", headers=bearer(token), params={"region": "330106"}),
                   403, "forbidden")
    # Another user's record is refused the same way whether it exists or not.
    assert_problem(await client.get(f"/api/v1/users/{other['id']}", headers=bearer(token)), 403, "forbidden")
    assert_problem(await client.get(f"/api/v1/users/{uuid.uuid4()}", headers=bearer(token)), 403, "forbidden")
    r = await client.patch(f"/api/v1/users/{other['id']}", headers=if_match(token, 1), json={"active": False})
    assert_problem(r, 403, "forbidden")
    row = await db_user(connection, "colleague")
    assert row is not None and row["active"] is True and row["version"] == 1


@pytest.mark.parametrize(("region_code", "roles"), [
    ("000000", ["inspector"]),
    ("000000", ["officer"]),
    ("000000", ["leader", "officer"]),
    ("000000", ["admin"]),
    ("330106", ["inspector"]),  # every level x role: tests/test_scope.py
])
async def test_anyone_reads_their_own_user(client, admin_token, region_code, roles):
    me, token = await make_user(client, admin_token, "someone", region_code, roles)
    r = await client.get(f"/api/v1/users/{me['id']}", headers=bearer(token))
    assert r.status_code == 200, r.text
    assert r.json()["username"] == "someone" and r.json()["roles"] == roles
    assert r.json()["region_code"] == region_code
    assert r.headers["etag"] == '"1"'
    assert "password" not in r.text


async def test_user_endpoints_need_authentication(client):
    assert_problem(await client.get("/api/v1/users"), 401, "unauthenticated")
    assert_problem(await client.post("/api/v1/users", json=user_body("anon", "330106", ["inspector"])),
                   401, "unauthenticated")
    assert_problem(await client.get(f"/api/v1/users/{uuid.uuid4()}"), 401, "unauthenticated")


# --- input validation ---------------------------------------------------------------------------


async def test_duplicate_username_is_409_and_keeps_the_first(client, admin_token, connection):
    first = await create_user(client, admin_token, username="dup", region_code="320102", roles=["inspector"])
    r = await client.post("/api/v1/users", headers=bearer(admin_token),
                          json=user_body("dup", "330106", ["leader"]))
    assert_problem(r, 409, "username_taken")
    rows = (await connection.execute(text("SELECT id, region_code, roles FROM app_user WHERE username = 'dup'"))).all()
    assert [(str(i), rc, roles) for i, rc, roles in rows] == [(first["id"], "320102", ["inspector"])]
    assert await audit_count(connection, action="user.create", username="dup") == 1


@pytest.mark.parametrize(("creator_region", "region_code"), [("000000", "999999"), ("330000", "330199")])
async def test_unknown_region_code_is_422(client, admin_token, connection, creator_region, region_code):
    token = admin_token
    if creator_region != "000000":
        _, token = await make_user(client, admin_token, "creator", creator_region, ["admin", "inspector"])
    r = await client.post("/api/v1/users", headers=bearer(token), json=user_body("nowhere", region_code, ["inspector"]))
    assert_problem(r, 422, "unknown_region")
    assert await db_user(connection, "nowhere") is None


@pytest.mark.parametrize(("field", "value"), [
    ("id", "4b0e8a4e-2f1c-4c55-9a59-7f0c1b1a2d3e"),
    ("password_hash", "$argon2id$v=19$m=65536,t=3,p=4$c29tZXNhbHQ$aGFzaA"),
    ("version", 7),
    ("level", "national"),
    ("created_at", "2020-01-01T00:00:00+00:00"),
])
async def test_create_rejects_unknown_fields(client, admin_token, connection, field, value):
    r = await client.post("/api/v1/users", headers=bearer(admin_token),
                          json=user_body("massassign", "330106", ["inspector"], **{field: value}))
    body = assert_problem(r, 422, "validation_error")
    assert ["body", field] in [e["loc"] for e in body["errors"]]
    assert await db_user(connection, "massassign") is None


@pytest.mark.parametrize("region_code", [
    "33010",
    "3301060",
    "33O106",
    "",
    330106,
    None,
])
async def test_create_rejects_malformed_region_code(client, admin_token, connection, region_code):
    # A provincial admin: a malformed code is bad input (422), not a jurisdiction question (403).
    _, prov = await make_user(client, admin_token, "zj.admin", "330000", ["admin", "inspector"])
    r = await client.post("/api/v1/users", headers=bearer(prov),
                          json={**user_body("badregion", "330106", ["inspector"]), "region_code": region_code})
    body = assert_problem(r, 422, "validation_error")
    assert ["body", "region_code"] in [e["loc"] for e in body["errors"]]
    assert await db_user(connection, "badregion") is None


@pytest.mark.parametrize("override", [
    {"username": "ab"},
    {"username": "with space"},
    {"username": "王芳芳"},
    {"password": "short"},
    {"roles": []},
    {"roles": ["superuser"]},
    {"display_name": ""},
], ids=["short-username", "space-in-username", "cjk-username", "short-password", "no-roles", "unknown-role",
        "empty-display-name"])
async def test_create_rejects_invalid_values(client, admin_token, connection, override):
    r = await client.post("/api/v1/users", headers=bearer(admin_token),
                          json={**user_body("validname", "330106", ["inspector"]), **override})
    body = assert_problem(r, 422, "validation_error")
    field = next(iter(override))
    assert any(e["loc"][:2] == ["body", field] for e in body["errors"]), body["errors"]
    assert (await connection.execute(text("SELECT count(*) FROM app_user"))).scalar_one() == 1  # bootstrap only


async def test_list_rejects_malformed_region_filter(client, admin_token):
    for region in ("3301", "abcdef", "3301066"):
        r = await client.get("/api/v1/users", headers=bearer(admin_token), params={"region": region})
        body = assert_problem(r, 422, "validation_error")
        assert body["errors"][0]["loc"] == ["query", "region"]


@pytest.mark.parametrize(("field", "value"), [
    ("username", "renamed"),
    ("password_hash", "$argon2id$v=19$m=65536,t=3,p=4$c29tZXNhbHQ$aGFzaA"),
    ("version", 9),
    ("id", "4b0e8a4e-2f1c-4c55-9a59-7f0c1b1a2d3e"),
    ("roles", ["root"]),
    ("password", "short"),
    ("region_code", "3301"),
    ("active", 0),  # JSON types as documented: not read as false
    ("active", "false"),
])
async def test_patch_rejects_unknown_fields_and_bad_values(client, admin_token, connection, field, value):
    target = await create_user(client, admin_token, username="patched", region_code="330106", roles=["inspector"])
    r = await client.patch(f"/api/v1/users/{target['id']}", headers=if_match(admin_token, 1), json={field: value})
    body = assert_problem(r, 422, "validation_error")
    assert any(e["loc"][:2] == ["body", field] for e in body["errors"]), body["errors"]
    row = await db_user(connection, "patched")
    assert row is not None and row["version"] == 1 and row["region_code"] == "330106"


@pytest.mark.parametrize("field", [
    "roles",
    "password",
    "region_code",
    "display_name",
    "active",
])
async def test_patch_with_explicit_null_is_422_not_500(client, admin_token, connection, field):
    target = await create_user(client, admin_token, username="nulled", region_code="330106", roles=["inspector"])
    r = await client.patch(f"/api/v1/users/{target['id']}", headers=if_match(admin_token, 1), json={field: None})
    assert r.status_code == 422, r.text
    assert r.headers["content-type"].startswith(PROBLEM_JSON)
    row = await db_user(connection, "nulled")
    assert row is not None and row["version"] == 1 and row["active"] is True


# --- ETag / If-Match ----------------------------------------------------------------------------


async def test_patch_needs_current_if_match(client, admin_token, connection):
    target = await create_user(client, admin_token, username="etagged", region_code="330106", roles=["inspector"])
    url = f"/api/v1/users/{target['id']}"

    r = await client.get(url, headers=bearer(admin_token))
    assert r.status_code == 200 and r.headers["etag"] == '"1"' and r.json()["version"] == 1

    r = await client.patch(url, headers=bearer(admin_token), json={"display_name": "no precondition"})
    assert_problem(r, 428, "precondition_required")

    r = await client.patch(url, headers=if_match(admin_token, 1), json={"display_name": "second"})
    assert r.status_code == 200, r.text
    assert r.json()["version"] == 2 and r.json()["display_name"] == "second"
    assert r.headers["etag"] == '"2"'

    # Someone still holding version 1 loses, and is shown what is there now.
    r = await client.patch(url, headers=if_match(admin_token, 1), json={"display_name": "stale"})
    body = assert_problem(r, 412, "precondition_failed")
    assert body["current_version"] == 2
    assert body["current"]["version"] == 2 and body["current"]["display_name"] == "second"
    assert "password" not in r.text
    row = await db_user(connection, "etagged")
    assert row is not None and row["display_name"] == "second" and row["version"] == 2

    r = await client.patch(url, headers={**bearer(admin_token), "If-Match": "not-an-etag"},
                           json={"display_name": "garbage"})
    assert_problem(r, 412, "precondition_failed")

    r = await client.patch(url, headers=if_match(admin_token, 2), json={"display_name": "third"})
    assert r.status_code == 200, r.text
    assert r.json()["version"] == 3 and r.headers["etag"] == '"3"'
    r = await client.get(url, headers=bearer(admin_token))
    assert r.headers["etag"] == '"3"' and r.json()["display_name"] == "third"
    row = await db_user(connection, "etagged")
    assert row is not None and row["display_name"] == "third" and row["version"] == 3
    updates = (await connection.execute(text(
        "SELECT count(*) FROM audit_event WHERE action = 'user.update' AND entity_id = :i"),
        {"i": target["id"]})).scalar_one()
    assert updates == 2  # the refused edits left no trace


async def test_deactivated_user_loses_access_at_once(client, admin_token, connection):
    target = await create_user(client, admin_token, username="leaving", region_code="000000", roles=["inspector"])
    tokens = await login(client, "leaving", PASSWORD)
    assert (await client.get("/api/v1/me", headers=bearer(tokens["access_token"]))).status_code == 200

    r = await client.patch(f"/api/v1/users/{target['id']}", headers=if_match(admin_token, 1), json={"active": False})
    assert r.status_code == 200, r.text
    assert r.json()["active"] is False and r.json()["version"] == 2
    row = await db_user(connection, "leaving")
    assert row is not None and row["active"] is False

    assert_problem(await client.get("/api/v1/me", headers=bearer(tokens["access_token"])), 401, "invalid_token")
    r = await client.post("/api/v1/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
    assert_problem(r, 401, "invalid_token")


async def test_deactivated_user_cannot_log_in(client, admin_token):
    target = await create_user(client, admin_token, username="leaving", region_code="000000", roles=["inspector"])
    r = await client.patch(f"/api/v1/users/{target['id']}", headers=if_match(admin_token, 1), json={"active": False})
    assert r.status_code == 200, r.text
    r = await client.post("/api/v1/auth/token", data={"grant_type": "password", "username": "leaving",
                                                      "password": PASSWORD})
    assert_problem(r, 401, "invalid_credentials")


# --- audit --------------------------------------------------------------------------------------


async def test_user_writes_are_audited_without_secrets(client, admin_token, connection):
    admin_me = (await client.get("/api/v1/me", headers=bearer(admin_token))).json()
    created = await create_user(client, admin_token, username="audited", region_code="330106", roles=["inspector"])
    params = {"entity_type": "user", "entity_id": created["id"]}

    r = await client.get("/api/v1/audit-events", headers=bearer(admin_token), params=params)
    assert r.status_code == 200, r.text
    items = r.json()["items"]
    assert [e["action"] for e in items] == ["user.create"]
    ev = items[0]
    assert ev["actor_type"] == "user" and ev["actor_id"] == admin_me["id"]
    assert ev["actor_name"] == "admin" and ev["actor_region"] == "000000"
    assert ev["entity_type"] == "user" and ev["entity_id"] == created["id"] and ev["region_code"] == "330106"
    assert ev["before"] is None
    after = ev["after"]
    assert after["id"] == created["id"] and after["username"] == "audited" and after["display_name"] == "audited"
    assert after["region_code"] == "330106" and after["roles"] == ["inspector"]
    assert after["active"] is True and after["version"] == 1

    new_password = "another-long-passphrase"
    r = await client.patch(f"/api/v1/users/{created['id']}", headers=if_match(admin_token, 1),
                           json={"password": new_password, "display_name": "Audited user"})
    assert r.status_code == 200, r.text

    r = await client.get("/api/v1/audit-events", headers=bearer(admin_token), params=params)
    items = r.json()["items"]
    assert [e["action"] for e in items] == ["user.update", "user.create"]  # newest first
    update = items[0]
    assert update["before"]["display_name"] == "audited" and update["before"]["version"] == 1
    assert update["after"]["display_name"] == "Audited user" and update["after"]["version"] == 2
    assert update["after"]["password_changed"] is True

    for secret in ("password_hash", "$argon2", PASSWORD, new_password):
        assert secret not in r.text
    stored = (await connection.execute(text(
        "SELECT coalesce(before::text, '') || after::text FROM audit_event WHERE entity_id = :i"),
        {"i": created["id"]})).scalars().all()
    assert len(stored) == 2
    assert not any(s in row for row in stored for s in ("password_hash", "$argon2", PASSWORD, new_password))
