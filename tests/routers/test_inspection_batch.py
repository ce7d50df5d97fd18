"""POST /api/v1/inspections/batch: offline devices sync up to 100 inspections; each item is created,
replayed or rejected on its own, nothing is lost and nothing doubled when the device retries."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from app.models.case import CaseKind, PenaltyCase
from app.services import inspection as inspection_service
from tests.conftest import ADMIN_PASSWORD, bearer, login, user_token
from tests.routers.test_archive import count_queries
from tests.routers.test_inspections import (
    URL,
    XIHU,
    World,
    assert_problem,
    body,
    count,
    create_enterprise,
    make_world,
    sample,
)


@pytest.fixture
async def world(client: httpx.AsyncClient, admin_token: str) -> World:
    return await make_world(client, admin_token)


BATCH = f"{URL}/batch"


async def totals(conn: AsyncConnection) -> tuple[int, int, int]:
    """(inspections, cases, audit rows about either)."""
    return (await count(conn, "SELECT count(*) FROM inspection"),
            await count(conn, "SELECT count(*) FROM penalty_case"),
            await count(conn, "SELECT count(*) FROM audit_event WHERE entity_type IN ('inspection', 'penalty_case')"))


async def sync(client: httpx.AsyncClient, token: str, items: list[Any]) -> list[dict[str, Any]]:
    r = await client.post(BATCH, headers=bearer(token), json={"items": items})
    assert r.status_code == 200, r.text
    results: list[dict[str, Any]] = r.json()["results"]
    assert len(results) == len(items)
    return results


def statuses(results: list[dict[str, Any]]) -> list[str]:
    return [r["status"] for r in results]


async def test_batch_creates_every_valid_item_in_order(client, world: World, connection):
    items = [body(world.ent_xihu["id"], inspected_at=f"2026-11-{d}T09:00:00+08:00") for d in (10, 11, 12)]
    items[1] = body(world.ent_xihu["id"], "no_fraud", open_case=True)
    results = await sync(client, world.xihu, items)
    assert statuses(results) == ["created"] * 3
    assert [r["id"] for r in results] == [i["id"] for i in items]
    assert all(r["problem"] is None for r in results)
    assert await totals(connection) == (3, 1, 4)
    listed = (await client.get(URL, headers=bearer(world.xihu))).json()["items"]
    assert {i["id"] for i in listed} == {i["id"] for i in items}
    assert next(i for i in listed if i["id"] == items[1]["id"])["case_id"] is not None


async def test_batch_with_one_invalid_item_creates_the_rest(client, world: World, connection):
    items = [body(world.ent_xihu["id"]) for _ in range(4)]
    items[1]["officers"] = ["王芳"]  # schema error
    items[2]["kind"] = "spot_check"  # rule error: no samples
    results = await sync(client, world.xihu, items)
    assert statuses(results) == ["created", "rejected", "rejected", "created"]
    bad = results[1]
    assert bad["id"] == items[1]["id"]
    assert bad["problem"]["status"] == 422 and bad["problem"]["code"] == "validation_error"
    assert bad["problem"]["errors"][0]["loc"] == ["body", "items", 1, "officers"]
    assert results[2]["problem"]["code"] == "samples_required"
    assert await count(connection, "SELECT count(*) FROM inspection") == 2
    for i in (0, 3):
        assert await count(connection, "SELECT count(*) FROM inspection WHERE id = :id", id=items[i]["id"]) == 1


# An item that opens a case makes the batch go item by item, each in a savepoint; without one, the
# items are written together (inspection.create_batch). The tests of replays and conflicts run both ways.
PATHS = pytest.mark.parametrize("open_case", [True, False], ids=["item-by-item", "together"])


@PATHS
async def test_same_batch_sent_twice_creates_nothing_new(client, world: World, connection, open_case):
    items = [body(world.ent_xihu["id"]), body(world.ent_xihu["id"], "licensed", open_case=open_case),
             body(world.ent_xihu["id"], kind="spot_check", samples=[sample()])]
    assert statuses(await sync(client, world.xihu, items)) == ["created"] * 3
    after_first = await totals(connection)
    assert after_first == ((3, 1, 4) if open_case else (3, 0, 3))
    again = await sync(client, world.xihu, items)
    assert statuses(again) == ["replayed"] * 3
    assert [r["id"] for r in again] == [i["id"] for i in items]
    assert await totals(connection) == after_first


@PATHS
async def test_retry_after_a_dropped_connection_doubles_nothing(client, world: World, connection, open_case):
    """The device sent its queue, the answer never arrived; it resends the queue with what it
    recorded meanwhile (and one item it has since corrected locally: a conflict, not an overwrite)."""
    queue = [body(world.ent_xihu["id"], "conditions_met", open_case=open_case), body(world.ent_xihu["id"])]
    await client.post(BATCH, headers=bearer(world.xihu), json={"items": queue})  # answer lost
    stored = await totals(connection)
    corrected = {**queue[1], "notes": "离线时修改"}
    newer = body(world.ent_xihu["id"])
    results = await sync(client, world.xihu, [queue[0], corrected, newer])
    assert statuses(results) == ["replayed", "rejected", "created"]
    assert results[1]["problem"]["status"] == 409 and results[1]["problem"]["code"] == "id_conflict"
    assert await totals(connection) == (stored[0] + 1, stored[1], stored[2] + 1)


async def test_item_for_an_enterprise_outside_the_jurisdiction_is_rejected_alone(client, world: World, connection):
    items = [body(world.ent_shangcheng["id"]), body(world.ent_xihu["id"]), body(str(uuid.uuid4()))]
    results = await sync(client, world.xihu, items)
    assert statuses(results) == ["rejected", "created", "rejected"]
    for r in (results[0], results[2]):
        assert r["problem"]["status"] == 404 and r["problem"]["code"] == "enterprise_not_found"
    assert await count(connection, "SELECT count(*) FROM inspection WHERE region_code = '330102'") == 0


@PATHS
async def test_the_same_id_twice_in_one_batch(client, world: World, connection, open_case):
    first = body(world.ent_xihu["id"])
    last = body(world.ent_xihu["id"], "licensed", open_case=open_case)
    results = await sync(client, world.xihu, [first, dict(first), {**first, "notes": "另一份"}, last])
    assert statuses(results) == ["created", "replayed", "rejected", "created"]
    assert results[2]["problem"]["code"] == "id_conflict"
    assert await count(connection, "SELECT count(*) FROM inspection") == 2


async def test_items_without_id_get_server_ids(client, world: World, connection):
    items = [body(world.ent_xihu["id"]) for _ in range(2)]
    for i in items:
        del i["id"]
    results = await sync(client, world.xihu, items)
    assert statuses(results) == ["created"] * 2
    ids = [uuid.UUID(r["id"]) for r in results]
    assert len(set(ids)) == 2
    assert await count(connection, "SELECT count(*) FROM inspection") == 2


@pytest.mark.parametrize("item", [None, 5, "text", [], {"id": "not-a-uuid"}])
async def test_an_item_that_is_not_an_inspection_is_rejected(client, world: World, connection, item):
    results = await sync(client, world.xihu, [item, body(world.ent_xihu["id"])])
    assert statuses(results) == ["rejected", "created"]
    assert results[0]["id"] is None and results[0]["problem"]["status"] == 422
    assert results[0]["problem"]["errors"][0]["loc"][:3] == ["body", "items", 0]


@pytest.mark.parametrize("open_case", [True, False])
@pytest.mark.parametrize(("when", "code"), [("statement", "missing_value"), ("flush", "reference_not_found")])
async def test_a_database_error_in_one_item_is_rolled_back_to_its_savepoint(client, world: World, connection,
                                                                             monkeypatch, when, code, open_case):
    """A database error hits the second item: a failing statement, or a row that fails when it is
    flushed. Without a case to open, the batch was being written all at once: that is rolled back
    and the items are written one by one. Each in its own savepoint, which takes everything of the
    faulty item back (its inspection row is already flushed when it opens a case); the other items
    and their audit rows stay."""
    real = inspection_service.audit.record

    async def failing_record(session: Any, **kw: Any) -> None:
        if kw.get("after", {}).get("notes") == "boom":
            if when == "statement":
                await session.execute(text("INSERT INTO enterprise (id) VALUES (gen_random_uuid())"))  # NOT NULL
            else:
                session.add(PenaltyCase(enterprise_id=uuid.uuid4(), region_code=XIHU, bureau_code=XIHU,
                                        kind=CaseKind.other))  # FK
        await real(session, **kw)

    monkeypatch.setattr(inspection_service.audit, "record", failing_record)
    items = [body(world.ent_xihu["id"]), body(world.ent_xihu["id"], "licensed", open_case=open_case, notes="boom"),
             body(world.ent_xihu["id"])]
    results = await sync(client, world.xihu, items)
    assert statuses(results) == ["created", "rejected", "created"]
    assert results[1]["problem"]["status"] == 422 and results[1]["problem"]["code"] == code
    assert await count(connection, "SELECT count(*) FROM inspection WHERE id = :id", id=items[1]["id"]) == 0
    assert await totals(connection) == (2, 0, 2)  # the failed item's case went with it
    # the same item sent again (without the fault) is created, not "replayed" from a phantom
    monkeypatch.setattr(inspection_service.audit, "record", real)
    assert statuses(await sync(client, world.xihu, [items[1]])) == ["created"]


@pytest.mark.parametrize("n", [0, 101])
async def test_batch_size_is_1_to_100(client, world: World, connection, n):
    items = [body(world.ent_xihu["id"]) for _ in range(n)]
    r = await client.post(BATCH, headers=bearer(world.xihu), json={"items": items})
    assert_problem(r, 422, "validation_error")
    assert await count(connection, "SELECT count(*) FROM inspection") == 0


async def test_a_full_batch_of_100(client, world: World, connection):
    items = [body(world.ent_xihu["id"]) for _ in range(100)]
    await sync(client, world.xihu, [body(world.ent_xihu["id"])])  # asyncpg looks up new types once
    async with count_queries(connection) as statements:
        assert statuses(await sync(client, world.xihu, items)) == ["created"] * 100
    assert await count(connection, "SELECT count(*) FROM inspection") == 101
    assert await count(connection, "SELECT count(*) FROM audit_event WHERE entity_type = 'inspection'") == 101
    # written together: a savepoint, two lookups, the inspections, the audit rows; not a savepoint,
    # an INSERT and an audit INSERT per item
    assert len(statements) < 15, statements


async def test_a_caller_who_may_not_record_gets_403_for_the_whole_batch(client, world: World, connection):
    leader = await user_token(client, world.admin, username="xihu.leader", region_code=XIHU, roles=["leader"])
    r = await client.post(BATCH, headers=bearer(leader), json={"items": [body(world.ent_xihu["id"])]})
    assert_problem(r, 403, "forbidden")
    assert await count(connection, "SELECT count(*) FROM inspection") == 0


@PATHS
async def test_concurrent_retries_of_one_batch_store_each_inspection_once(live_client, open_case):
    """Two copies of one batch in flight at once (a retry before the first answer): every item is
    created by exactly one of them and replayed by the other. Written together, the second copy's
    INSERT meets the first's ids: it falls back to item by item, which replays them."""
    admin = str((await login(live_client, "admin", ADMIN_PASSWORD))["access_token"])
    inspector = await user_token(live_client, admin, username="live.batch", region_code=XIHU, roles=["inspector"])
    ent = await create_enterprise(live_client, admin, XIHU)
    items = [body(ent["id"]) for _ in range(10)] + [body(ent["id"], "no_fraud", open_case=open_case)]
    await asyncio.gather(*(live_client.get(URL, headers=bearer(inspector)) for _ in range(3)))
    answers = await asyncio.gather(*(live_client.post(BATCH, headers=bearer(inspector), json={"items": items})
                                     for _ in range(2)))
    assert [a.status_code for a in answers] == [200, 200], [a.text for a in answers]
    for i in range(len(items)):
        assert sorted(a.json()["results"][i]["status"] for a in answers) == ["created", "replayed"]
    listed = (await live_client.get(URL, headers=bearer(inspector), params={"limit": 200})).json()["items"]
    assert sorted(i["id"] for i in listed) == sorted(i["id"] for i in items)
    assert sum(i["case_id"] is not None for i in listed) == (1 if open_case else 0)


async def test_concurrent_batches_on_the_same_enterprises_all_land_and_keep_the_counters_exact(live_client, engine):
    """Three officers' batches touch the same producers in different orders, with real commits. The
    campaign contributions are recomputed at commit in id order (migration 0018): every item is
    created, no batch meets a deadlock, nothing is left marked, and the kept contributions equal a
    rebuild from scratch."""
    admin = str((await login(live_client, "admin", ADMIN_PASSWORD))["access_token"])
    ents = [await create_enterprise(live_client, admin, XIHU, category_codes=["05"]) for _ in range(6)]
    orders = [ents, list(reversed(ents)), ents[3:] + ents[:3]]
    batches = [[body(e["id"], *(("no_fraud",) if n % 2 else ())) for e in order * 4] for n, order in enumerate(orders)]
    answers = await asyncio.gather(*(live_client.post(BATCH, headers=bearer(admin), json={"items": items})
                                     for items in batches))
    assert [a.status_code for a in answers] == [200, 200, 200], [a.text for a in answers]
    assert all(r["status"] == "created" for a in answers for r in a.json()["results"]), \
        [r for a in answers for r in a.json()["results"] if r["status"] != "created"]
    ids = [e["id"] for e in ents]
    kept_sql = text("SELECT * FROM campaign_enterprise WHERE enterprise_id = ANY(CAST(:ids AS uuid[]))"
                    " ORDER BY campaign_id, enterprise_id")
    async with engine.connect() as conn:
        assert (await conn.execute(text("SELECT count(*) FROM campaign_dirty"))).scalar() == 0
        kept = [tuple(r) for r in await conn.execute(kept_sql, {"ids": ids})]
        assert kept and all(r[5] == 1 for r in kept)  # each producer counts as inspected in the campaign
        await conn.execute(text("SELECT pqs_rebuild_campaign(id) FROM campaign"))
        rebuilt = [tuple(r) for r in await conn.execute(kept_sql, {"ids": ids})]
        # and so are the key-flag facts kept for the list (migration 0020)
        facts_sql = "SELECT * FROM {} WHERE enterprise_id = ANY(CAST(:ids AS uuid[])) ORDER BY enterprise_id"
        facts = [tuple(r) for r in await conn.execute(text(facts_sql.format("enterprise_key_facts")), {"ids": ids})]
        now = [tuple(r) for r in await conn.execute(text(facts_sql.format("enterprise_key_facts_now")), {"ids": ids})]
        await conn.rollback()
    assert kept == rebuilt
    assert len(facts) == 6 and facts == now


async def test_a_database_timeout_is_the_whole_batchs_problem(client, world: World, connection, monkeypatch):
    """Written together, a batch that meets a timeout (or a lost connection, a deadlock) is not split
    into items: nothing is stored and the device retries the whole batch (503 with Retry-After)."""
    real = inspection_service.audit.record

    async def slow_record(session: Any, **kw: Any) -> None:
        if kw.get("after", {}).get("notes") == "slow":
            await session.execute(text("SET LOCAL statement_timeout = '1ms'"))
            await session.execute(text("SELECT pg_sleep(0.05)"))
        await real(session, **kw)

    monkeypatch.setattr(inspection_service.audit, "record", slow_record)
    items = [body(world.ent_xihu["id"]), body(world.ent_xihu["id"], notes="slow"), body(world.ent_xihu["id"])]
    r = await client.post(BATCH, headers=bearer(world.xihu), json={"items": items})
    assert_problem(r, 503, "statement_timeout")
    assert r.headers["retry-after"] == "1"
    assert await totals(connection) == (0, 0, 0)
