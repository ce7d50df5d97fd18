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
