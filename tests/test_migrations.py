"""Alembic on a fresh database: upgrade to head, downgrade to base, upgrade again."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest
from sqlalchemy import text

import app.models  # noqa: F401,E402 - every table on the metadata
from app.db import (
    create_database_if_missing,
    drop_database,
    metadata,  # noqa: E402
)
from app.migrations import downgrade, head_revision, upgrade

# Every table the models declare, and nothing else, is what the migrations make.
EXPECTED_TABLES = {"alembic_version", *metadata.tables}
TRIGGERS = {"audit_event_append_only", "audit_event_no_truncate", "audit_chain_head_forward_only",
            "audit_chain_head_no_truncate",
            # the campaign counters (migration 0009)
            "pqs_inspection_stats", "pqs_enterprise_stats", "pqs_case_stats", "pqs_recall_stats",
            # the principal cache's notifications (migration 0017)
            "pqs_principal_changed", "pqs_principal_truncated",
            # campaign contributions at commit (migration 0018)
            "pqs_campaign_flush",
            # the kept key-flag facts (migration 0020)
            "pqs_license_key_facts", "pqs_case_key_facts", "pqs_key_flag_key_facts", "pqs_inspection_key_facts",
            # a TRUNCATE of their sources rebuilds the facts and the counters (migration 0023)
            "pqs_license_truncated", "pqs_inspection_truncated", "pqs_penalty_case_truncated",
            "pqs_enterprise_key_flag_truncated", "pqs_recall_truncated"}
FUNCTIONS = {"audit_event_guard", "audit_event_no_truncate", "audit_chain_head_forward_only", "name_bigrams",
             "pqs_bulk_loading", "pqs_in_campaign", "pqs_refresh_enterprise", "pqs_inspection_changed",
             "pqs_enterprise_changed", "pqs_case_changed", "pqs_recall_changed", "pqs_rebuild_campaign",
             "pqs_compact_campaign_deltas", "pqs_principal_changed",
             "pqs_campaign_flush", "pqs_refresh_key_facts", "pqs_rebuild_key_facts", "pqs_key_facts_mark",
             "pqs_sources_truncated"}


def with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{name}"))


def libpq(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://", 1)


@pytest.fixture
async def scratch_url(database_url: str) -> AsyncIterator[str]:
    url = with_database(database_url, f"migration_test_{uuid.uuid4().hex[:8]}")
    await create_database_if_missing(url)
    try:
        yield url
    finally:
        await drop_database(url)


async def schema(url: str) -> tuple[set[str], set[str], set[str], str | None]:
    """Tables, triggers and functions of the public schema, and the stamped revision."""
    conn = await asyncpg.connect(libpq(url))
    try:
        tables = {r["tablename"] for r in await conn.fetch(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public'")}
        triggers = {r["tgname"] for r in await conn.fetch("SELECT tgname FROM pg_trigger WHERE NOT tgisinternal")}
        functions = {r["proname"] for r in await conn.fetch(
            "SELECT proname FROM pg_proc p WHERE pronamespace = 'public'::regnamespace AND NOT EXISTS"
            " (SELECT 1 FROM pg_depend d WHERE d.objid = p.oid AND d.deptype = 'e')")}  # not extensions''' own
        version = None
        if "alembic_version" in tables:
            version = await conn.fetchval("SELECT version_num FROM alembic_version")
        return tables, triggers, functions, version
    finally:
        await conn.close()


async def test_upgrade_downgrade_upgrade_on_a_fresh_database(scratch_url: str):
    head = head_revision()
    assert head is not None
    assert await schema(scratch_url) == (set(), set(), set(), None)

    await asyncio.to_thread(upgrade, scratch_url)
    tables, triggers, functions, version = await schema(scratch_url)
    assert tables == EXPECTED_TABLES
    assert "audit_event_append_only" in triggers
    assert "audit_event_guard" in functions
    assert version == head

    await asyncio.to_thread(downgrade, scratch_url, "base")
    tables, triggers, functions, version = await schema(scratch_url)
    assert tables == {"alembic_version"}
    assert triggers == set() and functions == set()
    assert version is None

    await asyncio.to_thread(upgrade, scratch_url)
    assert await schema(scratch_url) == (EXPECTED_TABLES, TRIGGERS, FUNCTIONS, head)


async def test_upgrade_at_head_is_a_no_op(scratch_url: str):
    await asyncio.to_thread(upgrade, scratch_url)
    before = await schema(scratch_url)
    await asyncio.to_thread(upgrade, scratch_url)
    assert await schema(scratch_url) == before


async def test_migrated_schema_matches_the_models(scratch_url: str):
    """No drift: autogenerate against the migrated database finds nothing to change, except the indexes
    that migrations declare by hand (pattern-ops, partial and composite indexes the models do not name)."""
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext
    from sqlalchemy.ext.asyncio import create_async_engine
    from sqlalchemy.pool import NullPool

    from app.db import metadata

    await asyncio.to_thread(upgrade, scratch_url)
    engine = create_async_engine(scratch_url, poolclass=NullPool)
    try:
        async with engine.connect() as conn:
            diff = await conn.run_sync(lambda sync: compare_metadata(
                MigrationContext.configure(sync, opts={"compare_type": True}), metadata))
    finally:
        await engine.dispose()
    drift = [d for d in diff if not (isinstance(d, tuple) and d[0] == "remove_index")]
    assert drift == []


async def test_a_database_sealed_before_the_head_anchor_keeps_sealing_after_the_upgrade(scratch_url: str):
    """Rows sealed before revision 0005 made the head table: the upgrade anchors the head at the newest
    sealed row, so the sealer continues the chain instead of failing on seq 1 for ever."""
    from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine
    from sqlalchemy.pool import NullPool

    from app.services import audit

    await asyncio.to_thread(upgrade, scratch_url, "0004")
    conn = await asyncpg.connect(libpq(scratch_url))
    try:
        await conn.execute(
            "INSERT INTO audit_event (occurred_at, actor_type, action, entity_type, entity_id, region_code, row_hash,"
            " seq, chain_hash) VALUES (now(), 'system', 'user.bootstrap', 'user', 'x', '000000', $1, 1, $2)",
            "a" * 64, "b" * 64)
    finally:
        await conn.close()
    await asyncio.to_thread(upgrade, scratch_url)
    engine = create_async_engine(scratch_url, poolclass=NullPool)
    try:
        async with AsyncSession(engine) as session:
            head = (await session.execute(text("SELECT seq, chain_hash FROM audit_chain_head"))).one()
            assert tuple(head) == (1, "b" * 64)
            await session.execute(text(
                "INSERT INTO audit_event (occurred_at, actor_type, action, entity_type, entity_id, region_code,"
                " row_hash) VALUES (now(), 'system', 'demo.load', 'demo', 'x', '000000', :h)"), {"h": "c" * 64})
            await session.commit()
            assert await audit.seal(session) == 1
            await session.commit()
            assert (await session.execute(text("SELECT max(seq) FROM audit_event"))).scalar() == 2
    finally:
        await engine.dispose()


async def test_licence_numbers_in_other_digits_are_rewritten_with_0_to_9(scratch_url: str):
    """Before 0024 the parser took any Unicode digit: such a number is rewritten (and found again with
    ?number=), unless its rewriting is a number already recorded, which is left for the bureau."""
    await asyncio.to_thread(upgrade, scratch_url, "0023")
    conn = await asyncpg.connect(libpq(scratch_url))
    try:
        await conn.execute("SET session_replication_role = replica")  # no reference data in a scratch database
        enterprise = await conn.fetchval(
            "INSERT INTO enterprise (id, uscc, name, region_code, size, category_codes, licensed, version, created_at,"
            " updated_at) VALUES (gen_random_uuid(), '91330106MA2B0XK79M', '杭州西湖电线电缆有限公司', '330106',"
            " 'small', '{}', true, 1, now(), now()) RETURNING id")
        numbers = {"fullwidth": "XK１２-００１-０００１８", "arabic_indic": "（浙）XK٠٥-٠٠١-٠٠٠١٩",
                   "taken": "XK05-001-00020", "twin": "XK０５-００１-０００２０", "ascii": "（浙）XK05-001-00021"}
        ids = {}
        for key, number in numbers.items():
            ids[key] = await conn.fetchval(
                "INSERT INTO license (id, number, enterprise_id, region_code, category_code, issued_on, expires_on,"
                " issuer_level, status, version, created_at, updated_at) VALUES (gen_random_uuid(), $1, $2,"
                " '330106', '05', '2025-01-01', '2030-01-01', 'national', 'valid', 1, now(), now()) RETURNING id",
                number, enterprise)
    finally:
        await conn.close()
    await asyncio.to_thread(upgrade, scratch_url)
    conn = await asyncpg.connect(libpq(scratch_url))
    try:
        after = {r["id"]: r["number"] for r in await conn.fetch("SELECT id, number FROM license")}
    finally:
        await conn.close()
    assert {key: after[i] for key, i in ids.items()} == {
        "fullwidth": "XK12-001-00018", "arabic_indic": "（浙）XK05-001-00019", "taken": "XK05-001-00020",
        "twin": "XK０５-００１-０００２０",  # the same number as "taken": not merged, not dropped
        "ascii": "（浙）XK05-001-00021"}
