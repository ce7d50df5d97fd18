"""The audit log is append-only (a trigger) and tamper-evident (a SHA-256 chain): verify names the
first broken link after a superuser edits, deletes or forges a row."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection

from app.services import audit
from tests.conftest import bearer, create_user, user_token


async def make_writes(client, token: str, n: int = 3) -> None:
    for i in range(n):
        await create_user(client, token, username=f"audit.u{i}", region_code="330106", roles=["inspector"])


async def verify(client, token: str) -> dict[str, Any]:
    r = await client.get("/api/v1/audit-events/verify", headers=bearer(token))
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


async def chain(conn: AsyncConnection) -> list[Any]:
    return list((await conn.execute(text(
        "SELECT id, seq, row_hash, chain_hash FROM audit_event ORDER BY seq NULLS LAST, id"))).all())


async def as_superuser(conn: AsyncConnection, sql: str, params: dict[str, Any] | None = None) -> None:
    """What someone with superuser rights could do: run the change with triggers switched off."""
    await conn.execute(text("SET LOCAL session_replication_role = replica"))
    await conn.execute(text(sql), params or {})
    await conn.execute(text("SET LOCAL session_replication_role = DEFAULT"))


async def test_verify_after_writes_is_ok(client, admin_token, connection):
    await make_writes(client, admin_token, 3)
    body = await verify(client, admin_token)
    rows = await chain(connection)
    assert body == {"ok": True, "checked": len(rows), "first_broken": None,
                    "head": {"seq": rows[-1].seq, "chain_hash": rows[-1].chain_hash}}
    assert body["checked"] == len(rows) >= 4  # bootstrap + 3 creates
    # Verification sealed every row: seq 1..n without gaps, each link following from the one before.
    assert [r.seq for r in rows] == list(range(1, len(rows) + 1))
    prev = audit.GENESIS
    for r in rows:
        assert r.chain_hash == audit.link(prev, r.row_hash)
        prev = r.chain_hash


async def test_verify_is_idempotent_and_seals_later_rows(client, admin_token, connection):
    await make_writes(client, admin_token, 1)
    first = await verify(client, admin_token)
    await create_user(client, admin_token, username="audit.late", region_code="330106", roles=["inspector"])
    second = await verify(client, admin_token)
    assert first["ok"] and second["ok"]
    assert second["checked"] == first["checked"] + 1
    assert (await verify(client, admin_token))["checked"] == second["checked"]


async def test_update_and_delete_of_audit_rows_are_refused(client, admin_token, connection):
    await make_writes(client, admin_token, 1)
    await verify(client, admin_token)  # seal
    target = (await chain(connection))[-1].id
    for sql in (
        "UPDATE audit_event SET after = '{\"username\": \"forged\"}' WHERE id = :id",
        "UPDATE audit_event SET seq = NULL, chain_hash = NULL WHERE id = :id",  # no re-sealing
        "DELETE FROM audit_event WHERE id = :id",
    ):
        with pytest.raises(DBAPIError, match="audit_event") as info:
            async with connection.begin_nested():
                await connection.execute(text(sql), {"id": target})
        assert getattr(info.value.orig, "sqlstate", None) == "42501"  # insufficient_privilege
    assert (await verify(client, admin_token))["ok"] is True


async def test_unsealed_row_cannot_be_edited_either(client, admin_token, connection):
    await make_writes(client, admin_token, 1)
    target = (await connection.execute(text("SELECT max(id) FROM audit_event WHERE seq IS NULL"))).scalar()
    assert target is not None
    with pytest.raises(DBAPIError, match="cannot be changed"):
        async with connection.begin_nested():
            await connection.execute(text(
                "UPDATE audit_event SET after = '{}', seq = 99, chain_hash = 'x' WHERE id = :id"), {"id": target})


async def test_edited_row_is_named(client, admin_token, connection):
    await make_writes(client, admin_token, 3)
    assert (await verify(client, admin_token))["ok"]
    rows = await chain(connection)
    victim = rows[2]
    await as_superuser(connection, "UPDATE audit_event SET after = jsonb_set(after, '{roles}', '[\"admin\"]')"
                                   " WHERE id = :id", {"id": victim.id})
    body = await verify(client, admin_token)
    assert body["ok"] is False
    assert body["first_broken"]["id"] == victim.id
    assert "edited" in body["first_broken"]["reason"]
    assert body["checked"] == 2  # the rows before it still hold


async def test_edited_and_rehashed_row_breaks_the_next_link(client, admin_token, connection):
    """A forger who also recomputes row_hash is caught by chain_hash."""
    await make_writes(client, admin_token, 2)
    assert (await verify(client, admin_token))["ok"]
    victim = (await chain(connection))[1]
    await as_superuser(connection, "UPDATE audit_event SET after = jsonb_set(after, '{display_name}', '\"x\"')"
                                   " WHERE id = :id", {"id": victim.id})
    values = dict((await connection.execute(text(
        f"SELECT {', '.join(audit.HASHED_FIELDS)} FROM audit_event WHERE id = :id"), {"id": victim.id})).one()._mapping)
    await as_superuser(connection, "UPDATE audit_event SET row_hash = :h WHERE id = :id",
                       {"h": audit.row_hash(values), "id": victim.id})
    body = await verify(client, admin_token)
    assert body["ok"] is False
    assert body["first_broken"]["id"] == victim.id
    assert "chain_hash" in body["first_broken"]["reason"]


async def test_deleted_row_is_named_by_the_missing_link(client, admin_token, connection):
    await make_writes(client, admin_token, 3)
    assert (await verify(client, admin_token))["ok"]
    rows = await chain(connection)
    await connection.execute(text("ALTER TABLE audit_event DISABLE TRIGGER audit_event_append_only"))
    await connection.execute(text("DELETE FROM audit_event WHERE id = :id"), {"id": rows[1].id})
    await connection.execute(text("ALTER TABLE audit_event ENABLE TRIGGER audit_event_append_only"))
    body = await verify(client, admin_token)
    assert body["ok"] is False
    assert body["first_broken"]["id"] == rows[2].id  # the row after the gap
    assert "deleted" in body["first_broken"]["reason"]
    assert body["checked"] == 1


async def test_deleted_row_with_renumbered_seqs_is_caught(client, admin_token, connection):
    """Deleting a middle row and shifting later seqs down closes the gap, but not the chain."""
    await make_writes(client, admin_token, 3)
    assert (await verify(client, admin_token))["ok"]
    rows = await chain(connection)
    await as_superuser(connection, "DELETE FROM audit_event WHERE id = :id", {"id": rows[1].id})
    await as_superuser(connection, "UPDATE audit_event SET seq = seq - 1 WHERE seq > :s",
                       {"s": rows[1].seq})
    body = await verify(client, admin_token)
    assert body["ok"] is False
    assert body["first_broken"]["id"] == rows[2].id
    assert "chain_hash" in body["first_broken"]["reason"]


async def test_forged_row_with_fake_seq_and_chain_hash_is_named(client, admin_token, connection):
    await make_writes(client, admin_token, 2)
    assert (await verify(client, admin_token))["ok"]
    last = (await chain(connection))[-1]
    values: dict[str, Any] = {
        "occurred_at": datetime(2026, 1, 1, tzinfo=UTC), "actor_type": "user", "actor_id": None,
        "actor_name": "admin", "actor_region": "000000", "action": "user.create", "entity_type": "user",
        "entity_id": "forged", "region_code": "330106",
        "before": None, "after": {"username": "ghost"}, "request_id": None,
    }
    forged_id = (await connection.execute(text(
        "INSERT INTO audit_event (occurred_at, actor_type, actor_name, actor_region, action, entity_type, entity_id,"
        " region_code, after, row_hash, seq, chain_hash) VALUES (:at, 'user', 'admin', '000000', 'user.create',"
        " 'user', 'forged', '330106', '{\"username\": \"ghost\"}', :rh, :seq, :ch) RETURNING id"),
        {"at": values["occurred_at"], "rh": audit.row_hash(values), "seq": last.seq + 1, "ch": "f" * 64})).scalar()
    body = await verify(client, admin_token)
    assert body["ok"] is False
    assert body["first_broken"]["id"] == forged_id
    assert "chain_hash" in body["first_broken"]["reason"]  # its own content hash is consistent
    assert body["checked"] == last.seq


async def test_forged_row_in_the_middle_of_the_chain_is_named(client, admin_token, connection):
    """Shift the real rows up by one and slot a forged row in: the forged link does not follow."""
    await make_writes(client, admin_token, 2)
    assert (await verify(client, admin_token))["ok"]
    rows = await chain(connection)
    await as_superuser(connection, "UPDATE audit_event SET seq = seq + 1000 WHERE seq >= 2")
    await as_superuser(connection, "UPDATE audit_event SET seq = seq - 999 WHERE seq >= 1000")
    forged_id = (await connection.execute(text(
        "INSERT INTO audit_event (occurred_at, actor_type, action, entity_type, entity_id, region_code,"
        " row_hash, seq, chain_hash) VALUES (now(), 'system', 'user.delete', 'user', 'x', '000000',"
        " :rh, 2, :ch) RETURNING id"), {"rh": "0" * 64, "ch": audit.link(rows[0].chain_hash, "0" * 64)})).scalar()
    body = await verify(client, admin_token)
    assert body["ok"] is False
    assert body["first_broken"]["id"] == forged_id
    assert body["checked"] == 1


async def test_only_national_admins_verify_the_chain(client, admin_token):
    provincial_admin = await user_token(client, admin_token, username="audit.zj.admin", region_code="330000",
                                        roles=["admin", "leader"])
    r = await client.get("/api/v1/audit-events/verify", headers=bearer(provincial_admin))
    assert r.status_code == 403
    assert r.headers["content-type"].startswith("application/problem+json")
    assert r.json()["code"] == "forbidden"

    national_leader = await user_token(client, admin_token, username="audit.cn.leader", region_code="000000",
                                       roles=["leader"])
    r = await client.get("/api/v1/audit-events/verify", headers=bearer(national_leader))
    assert r.status_code == 403

    r = await client.get("/api/v1/audit-events/verify")
    assert r.status_code == 401


async def test_audit_row_records_who_what_before_and_after(client, admin_token):
    created = await create_user(client, admin_token, username="audit.who", region_code="330106", roles=["inspector"])
    r = await client.get("/api/v1/audit-events", params={"entity_type": "user", "entity_id": created["id"]},
                         headers=bearer(admin_token))
    assert r.status_code == 200
    (event,) = r.json()["items"]
    assert event["action"] == "user.create"
    assert event["actor_name"] == "admin" and event["actor_type"] == "user"
    assert event["before"] is None
    assert event["after"]["username"] == "audit.who"
    assert "password" not in event["after"] and "password_hash" not in event["after"]
    assert event["region_code"] == "330106"
    assert event["request_id"]


async def test_deleting_the_newest_rows_is_caught_by_the_head_anchor(client, admin_token, connection):
    await make_writes(client, admin_token, 3)
    assert (await verify(client, admin_token))["ok"]
    rows = await chain(connection)
    await as_superuser(connection, "DELETE FROM audit_event WHERE id = :id", {"id": rows[-1].id})
    body = await verify(client, admin_token)
    assert body["ok"] is False and "newest links were removed" in body["first_broken"]["reason"]


async def test_new_rows_after_a_tail_deletion_do_not_hide_the_gap(client, admin_token, connection):
    await make_writes(client, admin_token, 2)
    assert (await verify(client, admin_token))["ok"]
    rows = await chain(connection)
    await as_superuser(connection, "DELETE FROM audit_event WHERE id = :id", {"id": rows[-1].id})
    await create_user(client, admin_token, username="audit.after", region_code="330106", roles=["inspector"])
    body = await verify(client, admin_token)
    assert body["ok"] is False and "deleted" in body["first_broken"]["reason"]


async def test_truncate_and_rewinding_the_head_are_refused(client, admin_token, connection):
    await make_writes(client, admin_token, 1)
    assert (await verify(client, admin_token))["ok"]
    for sql in ("TRUNCATE audit_event", "UPDATE audit_chain_head SET seq = 0", "DELETE FROM audit_chain_head"):
        await connection.execute(text("SAVEPOINT t"))
        with pytest.raises(DBAPIError, match="append-only|only moves forward"):
            await connection.execute(text(sql))
        await connection.execute(text("ROLLBACK TO SAVEPOINT t"))
