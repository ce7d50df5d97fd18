"""Idempotency-Key on creates (IETF httpapi draft): replay, reuse with another body, per-caller keys,
in-progress conflicts, failures not stored, and a 30-day retention."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from app.config import get_settings
from app.security import decode_token
from app.services import idempotency
from tests.conftest import ADMIN_PASSWORD, bearer, login, user_token


def user_body(username: str, **kw: Any) -> dict[str, Any]:
    body = {"username": username, "password": "correct-horse-battery", "display_name": username,
            "region_code": "330106", "roles": ["inspector"]}
    body.update(kw)
    return body


def keyed(token: str, key: str) -> dict[str, str]:
    return {**bearer(token), "Idempotency-Key": key}


async def count_users(conn: Any, username: str) -> int:
    return int((await conn.execute(text("SELECT count(*) FROM app_user WHERE username = :u"),
                                   {"u": username})).scalar())


def advisory_lock_key(token: str, key: str) -> int:
    """The lock app/services/idempotency.py takes for (caller, key): its owner from the same token."""
    claims = decode_token(get_settings(), token, expected_typ="access")
    return idempotency.lock_key(f"{claims.ptype}:{claims.sub}", key)


async def test_repeat_with_same_key_and_body_replays_the_first_response(client, admin_token, connection):
    body = user_body("idem.replay")
    first = await client.post("/api/v1/users", headers=keyed(admin_token, "k-replay"), json=body)
    assert first.status_code == 201, first.text
    assert "idempotent-replayed" not in first.headers

    again = await client.post("/api/v1/users", headers=keyed(admin_token, "k-replay"), json=body)
    assert again.status_code == 201
    assert again.headers["idempotent-replayed"] == "true"
    assert again.content == first.content
    assert again.json() == first.json()
    for header in ("location", "etag", "content-type"):
        assert again.headers[header] == first.headers[header]

    assert await count_users(connection, "idem.replay") == 1
    audit = (await connection.execute(text(
        "SELECT count(*) FROM audit_event WHERE action = 'user.create' AND after->>'username' = 'idem.replay'"
    ))).scalar()
    assert audit == 1


async def test_without_a_key_a_repeat_is_a_new_request(client, admin_token):
    first = await client.post("/api/v1/users", headers=bearer(admin_token), json=user_body("idem.nokey"))
    assert first.status_code == 201
    again = await client.post("/api/v1/users", headers=bearer(admin_token), json=user_body("idem.nokey"))
    assert again.status_code == 409
    assert again.json()["code"] == "username_taken"


async def test_same_key_with_another_body_is_422_idempotency_key_reused(client, admin_token, connection):
    first = await client.post("/api/v1/users", headers=keyed(admin_token, "k-reuse"), json=user_body("idem.one"))
    assert first.status_code == 201
    r = await client.post("/api/v1/users", headers=keyed(admin_token, "k-reuse"), json=user_body("idem.two"))
    assert r.status_code == 422
    assert r.headers["content-type"].startswith("application/problem+json")
    assert r.json()["code"] == "idempotency_key_reused"
    assert await count_users(connection, "idem.two") == 0


async def test_same_key_on_another_create_endpoint_is_422_idempotency_key_reused(client, admin_token):
    first = await client.post("/api/v1/users", headers=keyed(admin_token, "k-path"), json=user_body("idem.path"))
    assert first.status_code == 201
    r = await client.post("/api/v1/service-accounts", headers=keyed(admin_token, "k-path"),
                          json={"name": "idem", "region_code": "330000", "scopes": ["enterprises:read"]})
    assert r.status_code == 422, r.text
    assert r.json()["code"] == "idempotency_key_reused"


async def test_a_replayed_create_leaves_out_the_secret_it_showed_once_and_the_docs_say_so(client, admin_token,
                                                                                         connection):
    body = {"name": "idem", "region_code": "330000", "scopes": ["enterprises:read"]}
    first = await client.post("/api/v1/service-accounts", headers=keyed(admin_token, "k-secret"), json=body)
    assert first.status_code == 201 and first.json()["client_secret"]
    again = await client.post("/api/v1/service-accounts", headers=keyed(admin_token, "k-secret"), json=body)
    assert again.status_code == 201 and again.headers["idempotent-replayed"] == "true"
    assert again.json() == {k: v for k, v in first.json().items() if k != "client_secret"}
    stored = await connection.execute(text(
        "SELECT convert_from(response_body, 'UTF8') FROM idempotency_record WHERE key = 'k-secret'"))
    assert first.json()["client_secret"] not in stored.scalar_one()
    spec = (await client.get("/openapi.json")).json()
    for model, field in (("ServiceAccountCreated", "client_secret"), ("WebhookCreated", "secret")):
        schema = spec["components"]["schemas"][model]
        assert field in schema["properties"] and field not in schema["required"] and "id" in schema["required"]
    op = spec["paths"]["/api/v1/service-accounts"]["post"]
    assert op["x-replay-omits"] == ["client_secret"]


async def test_a_key_belongs_to_its_caller(client, admin_token, connection):
    other = await user_token(client, admin_token, username="idem.admin2", region_code="000000",
                             roles=["admin", "inspector"])
    first = await client.post("/api/v1/users", headers=keyed(admin_token, "k-shared"), json=user_body("idem.a"))
    assert first.status_code == 201

    # The other admin's first use of the key: a fresh create, not a replay and not "reused".
    mine = await client.post("/api/v1/users", headers=keyed(other, "k-shared"), json=user_body("idem.b"))
    assert mine.status_code == 201, mine.text
    assert "idempotent-replayed" not in mine.headers
    assert mine.json()["username"] == "idem.b"

    # Even with the first caller's very body, the other admin never sees that replay.
    theirs = await client.post("/api/v1/users", headers=keyed(other, "k-shared-2"), json=user_body("idem.c"))
    assert theirs.status_code == 201
    copy = await client.post("/api/v1/users", headers=keyed(admin_token, "k-shared-2"), json=user_body("idem.c"))
    assert copy.status_code == 409
    assert "idempotent-replayed" not in copy.headers
    assert copy.json()["code"] == "username_taken"

    owners = (await connection.execute(text(
        "SELECT count(DISTINCT owner) FROM idempotency_record WHERE key = 'k-shared'"))).scalar()
    assert owners == 2


async def test_record_is_kept_for_30_days(client, admin_token, connection):
    r = await client.post("/api/v1/users", headers=keyed(admin_token, "k-ttl"), json=user_body("idem.ttl"))
    assert r.status_code == 201
    row = (await connection.execute(text(
        "SELECT owner, method, path, response_status, expires_at - created_at AS kept,"
        " expires_at - now() AS left FROM idempotency_record WHERE key = 'k-ttl'"))).one()
    me = (await client.get("/api/v1/me", headers=bearer(admin_token))).json()
    assert row.owner == f"user:{me['id']}"
    assert (row.method, row.path, row.response_status) == ("POST", "/api/v1/users", 201)
    assert row.kept == timedelta(days=30)
    assert timedelta(days=30) - timedelta(minutes=5) < row.left <= timedelta(days=30) + timedelta(minutes=5)


async def test_an_expired_record_no_longer_replays(client, admin_token, connection):
    r = await client.post("/api/v1/users", headers=keyed(admin_token, "k-old"), json=user_body("idem.old"))
    assert r.status_code == 201
    await connection.execute(text(
        "UPDATE idempotency_record SET expires_at = now() - interval '1 second' WHERE key = 'k-old'"))
    # Past its expiry the key is free again: the same key with a new body simply proceeds.
    r = await client.post("/api/v1/users", headers=keyed(admin_token, "k-old"), json=user_body("idem.new"))
    assert r.status_code == 201, r.text
    assert "idempotent-replayed" not in r.headers


@pytest.mark.parametrize(("caller_region", "body", "status", "code"), [
    ("000000", user_body("idem.bad", region_code="999999"), 422, "unknown_region"),   # refused by the service
    ("330000", user_body("idem.bad", region_code="320100"), 403, "not_in_jurisdiction"),
    ("000000", user_body("idem.bad", password="short"), 422, "validation_error"),     # refused by the schema
], ids=["unknown-region", "outside-jurisdiction", "invalid-body"])
async def test_a_failed_create_is_not_stored_and_the_key_stays_usable(client, admin_token, connection,
                                                                      caller_region, body, status, code):
    token = admin_token
    if caller_region != "000000":
        token = await user_token(client, admin_token, username="idem.prov", region_code=caller_region,
                                 roles=["admin", "inspector"])
    failed = await client.post("/api/v1/users", headers=keyed(token, "k-fail"), json=body)
    assert failed.status_code == status, failed.text
    assert failed.json()["code"] == code
    stored = (await connection.execute(text("SELECT count(*) FROM idempotency_record WHERE key = 'k-fail'"))).scalar()
    assert stored == 0

    fixed = await client.post("/api/v1/users", headers=keyed(token, "k-fail"), json=user_body("idem.fixed"))
    assert fixed.status_code == 201, fixed.text
    assert "idempotent-replayed" not in fixed.headers
    replay = await client.post("/api/v1/users", headers=keyed(token, "k-fail"), json=user_body("idem.fixed"))
    assert replay.headers.get("idempotent-replayed") == "true"
    assert replay.json() == fixed.json()


@pytest.mark.parametrize("key", ["", "   ", "k" * 256])
async def test_an_empty_or_overlong_key_is_422(client, admin_token, key):
    r = await client.post("/api/v1/users", headers=keyed(admin_token, key), json=user_body("idem.key"))
    assert r.status_code == 422
    assert r.json()["code"] == "invalid_idempotency_key"


async def test_unauthenticated_create_with_a_key_is_401(client):
    r = await client.post("/api/v1/users", headers={"Idempotency-Key": "k-anon"}, json=user_body("idem.anon"))
    assert r.status_code == 401
    assert r.json()["code"] == "unauthenticated"


async def test_a_key_whose_first_request_is_still_running_is_409_in_progress(live_client, engine):
    token = (await login(live_client, "admin", ADMIN_PASSWORD))["access_token"]
    lock = advisory_lock_key(token, "k-running")
    async with engine.connect() as first_request:  # stands in for the request still holding the key
        await first_request.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": lock})
        r = await live_client.post("/api/v1/users", headers=keyed(token, "k-running"),
                                   json=user_body("idem.running"))
        assert r.status_code == 409, r.text
        assert r.headers["content-type"].startswith("application/problem+json")
        assert r.json()["code"] == "idempotency_in_progress"
        assert r.headers["retry-after"] == "1"
        # Another key of the same caller is not held up.
        other = await live_client.post("/api/v1/users", headers=keyed(token, "k-other"),
                                       json=user_body("idem.other"))
        assert other.status_code == 201, other.text
        await first_request.rollback()

    r = await live_client.post("/api/v1/users", headers=keyed(token, "k-running"), json=user_body("idem.running"))
    assert r.status_code == 201, r.text
    async with engine.connect() as conn:
        assert await count_users(conn, "idem.running") == 1


async def test_concurrent_repeats_create_once(live_client, engine):
    import asyncio

    token = (await login(live_client, "admin", ADMIN_PASSWORD))["access_token"]
    responses: list[httpx.Response] = await asyncio.gather(*[
        live_client.post("/api/v1/users", headers=keyed(token, "k-burst"), json=user_body("idem.burst"))
        for _ in range(4)
    ])
    statuses = [r.status_code for r in responses]
    assert 500 not in statuses
    assert statuses.count(201) >= 1
    assert set(statuses) <= {201, 409}
    for r in responses:
        if r.status_code == 409:
            assert r.json()["code"] == "idempotency_in_progress"
    created = {r.json()["id"] for r in responses if r.status_code == 201}
    assert len(created) == 1  # every 201 is the one create, replayed
    async with engine.connect() as conn:
        assert await count_users(conn, "idem.burst") == 1


async def test_a_fresh_token_of_the_same_caller_still_replays(client, admin_token):
    first = await client.post("/api/v1/users", headers=keyed(admin_token, "k-token"), json=user_body("idem.tok"))
    assert first.status_code == 201
    newer = (await login(client, "admin", ADMIN_PASSWORD))["access_token"]
    assert newer != admin_token
    again = await client.post("/api/v1/users", headers=keyed(newer, "k-token"), json=user_body("idem.tok"))
    assert again.status_code == 201
    assert again.headers["idempotent-replayed"] == "true"
    assert again.json() == first.json()



async def test_a_deactivated_user_gets_401_not_a_replay(client, admin_token):
    admin2 = await user_token(client, admin_token, username="idem.gone", region_code="000000",
                              roles=["admin", "inspector"])
    first = await client.post("/api/v1/users", headers=keyed(admin2, "k-gone"), json=user_body("idem.made"))
    assert first.status_code == 201
    gone = (await client.get("/api/v1/users", params={"q": "idem.gone"}, headers=bearer(admin_token))).json()
    user = gone["items"][0]
    r = await client.patch(f"/api/v1/users/{user['id']}", json={"active": False},
                           headers={**bearer(admin_token), "If-Match": f'"{user["version"]}"'})
    assert r.status_code == 200, r.text
    assert (await client.get("/api/v1/me", headers=bearer(admin2))).status_code == 401

    again = await client.post("/api/v1/users", headers=keyed(admin2, "k-gone"), json=user_body("idem.made"))
    assert again.status_code == 401
