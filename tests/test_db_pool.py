"""The connection pool keeps its connections under load instead of opening one per request."""

from __future__ import annotations

import asyncio
import uuid

import asyncpg
import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.util import greenlet_spawn

from app.config import Settings
from app.db import (
    ConnectionLost,
    FairQueuePool,
    SqlParams,
    _fetch_alone,
    _HandOff,
    make_engine,
    make_sessionmaker,
    raw_fetch,
    read_sessionmaker,
)
from app.scope import Scope, attach


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


async def test_raw_reads_of_an_autocommit_session_borrow_a_connection_each_and_give_it_back(
        engine: AsyncEngine, database_url: str) -> None:
    # a read-only GET's raw statements run on a connection borrowed for each statement, without the
    # session's transaction machinery; once the session has begun they run on its connection, so a
    # request never holds two
    eng = make_engine(database_url, Settings(db_pool_size=1))
    maker = read_sessionmaker(make_sessionmaker(eng))
    caller = Scope(principal_id=uuid.uuid4(), principal_type="user", username="x", region_code="330106")

    def params() -> SqlParams:
        p = SqlParams(caller)
        p.inside("region_code")
        return p

    pid = "SELECT pg_backend_pid() AS pid, count(*) AS n FROM region WHERE code = $1"
    try:
        async with maker() as session:
            attach(session.sync_session, caller)
            first = (await raw_fetch(session, pid, params()))[0]
            assert first["n"] == 1
            assert not session.in_transaction()  # the session did not begin
            assert eng.sync_engine.pool.checkedout() == 0  # the connection is back in the pool
            # a statement the database refuses gives its connection back too, and the next one runs
            with pytest.raises(asyncpg.exceptions.UndefinedTableError):
                await raw_fetch(session, "SELECT x FROM no_such_table WHERE $1 = $1", params())
            assert eng.sync_engine.pool.checkedout() == 0
            # a statement the driver refuses (a bug: too many arguments) is that, not a lost connection
            extra = params()
            extra.add("spare")
            with pytest.raises(asyncpg.InterfaceError) as bug:
                await raw_fetch(session, pid, extra)
            assert not isinstance(bug.value, ConnectionLost)
            assert eng.sync_engine.pool.checkedout() == 0
            first = (await raw_fetch(session, pid, params()))[0]  # (the pool replaced that connection)
            # a connection lost while in the pool fails the statement that meets it, and is replaced, not
            # handed to the next statement; the driver's error depends on whether it has read the
            # server's goodbye yet (a shutdown, a closed connection, a protocol in disorder)
            current = first["pid"]
            for wait in (0, 0.3):
                async with engine.connect() as other:  # (another pool)
                    await other.execute(text(f"SELECT pg_terminate_backend({current})"))
                await asyncio.sleep(wait)
                with pytest.raises(ConnectionLost):  # app.routing answers it with a 503
                    await raw_fetch(session, pid, params())
                assert eng.sync_engine.pool.checkedout() == 0
                again = (await raw_fetch(session, pid, params()))[0]
                assert again["pid"] != current and again["n"] == 1
                current = again["pid"]
            # once an ORM statement has begun the session, raw statements share its connection
            session_pid = (await session.execute(text("SELECT pg_backend_pid()"))).scalar_one()
            assert eng.sync_engine.pool.checkedout() == 1
            assert (await raw_fetch(session, pid, params()))[0]["pid"] == session_pid
    finally:
        await eng.dispose()


async def test_no_database_at_all_is_connection_lost_for_orm_and_raw_statements(
        engine: AsyncEngine, database_url: str) -> None:  # engine: the test database exists
    """A refused connection (the server down) is ConnectionLost, which app.routing answers with a 503,
    for an ORM statement as for a raw one; SQLAlchemy passes the driver's OSError on unwrapped."""
    nowhere = make_url(database_url).set(host="127.0.0.1", port=1, query={})  # nothing listens on port 1
    eng = make_engine(nowhere.render_as_string(hide_password=False), Settings())
    county = Scope(principal_id=uuid.uuid4(), principal_type="user", username="x", region_code="330106")
    try:
        async with make_sessionmaker(eng)() as session:
            with pytest.raises(ConnectionLost):
                await session.execute(text("SELECT 1"))
        async with read_sessionmaker(make_sessionmaker(eng))() as session:
            attach(session.sync_session, county)
            params = SqlParams(county)
            with pytest.raises(ConnectionLost):
                await raw_fetch(session, f"SELECT 1 FROM enterprise WHERE {params.inside('region_code')[0]}", params)
    finally:
        await eng.dispose()


async def test_a_returned_connection_goes_to_the_request_waiting_longest(
        engine: AsyncEngine, database_url: str) -> None:
    # SQLAlchemy's asyncio queue let a request that returned its connection take it straight back
    # for its next statement (a read borrows one per statement) while others waited, and the waiter
    # it had woken queued again at the back: here ['again', 'w1', 'w2', 'w0']. With 4 connections a
    # worker at 32 clients, a few requests lost lap after lap: p99 170-440 ms against 60-110 ms.
    eng = make_engine(database_url, Settings(db_pool_size=1))
    served: list[str] = []

    async def waiter(name: str) -> None:
        async with eng.connect() as conn:
            served.append(name)
            await conn.execute(text("SELECT 1"))

    try:
        # a read's statement on a borrowed connection (app.db._fetch_alone), then its next one at once
        raw = await eng.raw_connection()
        waiting = [asyncio.create_task(waiter(f"w{i}")) for i in range(3)]
        await asyncio.sleep(0.05)  # all three are queued for the one connection
        await greenlet_spawn(raw.close)
        await _fetch_alone(eng, "SELECT 1", [])
        served.append("again")
        await asyncio.gather(*waiting)
    finally:
        await eng.dispose()
    assert served == ["w0", "w1", "w2", "again"], served


async def test_a_waiter_that_times_out_leaves_its_place_and_loses_no_connection(
        engine: AsyncEngine, database_url: str) -> None:
    eng = make_engine(database_url, Settings(db_pool_size=1, db_pool_timeout_seconds=0.05))
    try:
        async with eng.connect():
            with pytest.raises(PoolTimeout):
                async with eng.connect():
                    pass
        async with eng.connect() as conn:  # the connection came back to the pool, and is served
            assert (await conn.execute(text("SELECT 1"))).scalar_one() == 1
        assert eng.pool.checkedout() == 0
    finally:
        await eng.dispose()


async def test_a_connection_handed_to_a_waiter_cancelled_before_it_ran_goes_back_to_the_queue() -> None:
    queue = _HandOff(1)
    task = asyncio.create_task(queue.get())
    await asyncio.sleep(0)  # waiting
    queue.put_nowait("connection")  # handed to the waiter, which has not run yet
    task.cancel()  # as wait_for's timeout does
    with pytest.raises(asyncio.CancelledError):
        await task
    assert queue.get_nowait() == "connection"


async def test_a_connection_handed_to_a_cancelled_waiter_comes_back_even_when_another_filled_the_pool() -> None:
    # with an overflow: connection A is handed to a waiter cancelled before it ran, B comes back
    # meanwhile and fills the queue; putting A back raised QueueFull (a 500), and A was lost for good,
    # its overflow slot with it
    class Connection:
        def rollback(self) -> None: ...
        def close(self) -> None: ...

    pool = FairQueuePool(Connection, pool_size=1, max_overflow=1, timeout=1)
    a = await greenlet_spawn(pool.connect)
    b = await greenlet_spawn(pool.connect)  # the overflow
    waiting = asyncio.create_task(greenlet_spawn(pool.connect))
    await asyncio.sleep(0.01)
    await greenlet_spawn(a.close)  # handed to the waiter
    waiting.cancel()  # before it ran
    await greenlet_spawn(b.close)
    with pytest.raises(asyncio.CancelledError):
        await waiting
    assert pool.checkedout() == 0  # both are back: none is held by nobody
    first, second = await greenlet_spawn(pool.connect), await greenlet_spawn(pool.connect)
    assert pool.checkedout() == 2
    await greenlet_spawn(first.close)
    await greenlet_spawn(second.close)
    assert pool.checkedout() == 0
