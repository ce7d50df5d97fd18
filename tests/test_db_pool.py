"""The connection pool keeps its connections under load instead of opening one per request."""

from __future__ import annotations

import asyncio

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from app.config import Settings
from app.db import make_engine


async def test_load_above_the_pool_waits_for_its_connections_instead_of_opening_new_ones(
        engine: AsyncEngine, database_url: str) -> None:  # engine: the test database exists
    # with an overflow, every request beyond the pool size opened a PostgreSQL connection and closed it
    # again on return: a new backend per request for as long as the load lasted
    default_overflow = Settings.model_fields["db_max_overflow"].default  # whatever the environment says
    assert default_overflow == 0
    settings = Settings(db_pool_size=2, db_max_overflow=default_overflow)
    eng = make_engine(database_url, settings)
    busy = 0
    most = 0

    async def request() -> int:
        nonlocal busy, most
        async with eng.connect() as conn:
            busy += 1
            most = max(most, busy)
            pid = (await conn.execute(text("SELECT pg_backend_pid()"))).scalar_one()
            await asyncio.sleep(0.02)
            busy -= 1
            return int(pid)

    try:
        pids = await asyncio.gather(*(request() for _ in range(12)))
        again = await asyncio.gather(*(request() for _ in range(12)))
    finally:
        await eng.dispose()
    assert len(pids) == len(again) == 12  # every request was served
    assert most == 2
    assert len(set(pids) | set(again)) == 2  # by the same two backends throughout


async def test_a_batch_of_savepoints_leaves_the_prepared_statements_in_place(
        engine: AsyncEngine, database_url: str) -> None:
    # a batch of 100 inspections runs each item in a savepoint: 100 SAVEPOINT and 100 RELEASE statements,
    # each of its own text. With SQLAlchemy's default cache of 100 they pushed every other statement out,
    # and the next batch prepared each of its INSERTs again.
    eng = make_engine(database_url, Settings())
    probe = text("SELECT count(*) FROM region WHERE code = :c")
    names = text("SELECT name FROM pg_prepared_statements"
                 " WHERE statement = 'SELECT count(*) FROM region WHERE code = $1'")
    try:
        async with eng.connect() as conn, conn.begin():
            await conn.execute(probe, {"c": "330106"})
            before = (await conn.execute(names)).scalars().all()
            for _ in range(100):
                async with conn.begin_nested():
                    await conn.execute(text("SELECT 1"))
            await conn.execute(probe, {"c": "330106"})
            after = (await conn.execute(names)).scalars().all()
    finally:
        await eng.dispose()
    assert len(before) == 1
    assert after == before  # the same prepared statement, not prepared again
