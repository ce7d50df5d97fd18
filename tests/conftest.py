"""Test harness: a real PostgreSQL (embedded under var/pgdata-test, or TEST_DATABASE_URL), schema
built by Alembic once per run, each test inside an outer transaction that is rolled back."""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

os.environ.setdefault("APP_ENV", "test")
os.environ["APP_RUN_BACKGROUND_JOBS"] = "false"
os.environ["APP_LOGIN_SLOWDOWN_BASE_SECONDS"] = "0"  # slowdown tests set their own delays
os.environ["APP_LOGIN_SLOWDOWN_MAX_SECONDS"] = "0"
os.environ["APP_LOG_JSON"] = "false"
os.environ["APP_BOOTSTRAP_ADMIN_USERNAME"] = "admin"
os.environ["APP_BOOTSTRAP_ADMIN_PASSWORD"] = "admin-test-password"

import httpx
import pytest
from argon2 import PasswordHasher
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession, async_sessionmaker
from sqlalchemy.pool import NullPool

from app import security
from app.config import PROJECT_ROOT, get_settings
from app.db import asyncpg_url, create_database_if_missing, drop_database, make_engine, start_embedded_postgres
from app.main import create_app, listen_connector
from app.migrations import upgrade
from app.services import reference
from app.services import user as user_service

# argon2's production cost (64 MiB, 3 passes) makes each hash ~0.1-0.8 s on 2 cores; the tests
# check behaviour, not hash strength, so they use the cheapest valid parameters.
security._hasher = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)

ADMIN_PASSWORD = "admin-test-password"
# Tables whose rows tests create; reference data and the migration stamp stay.
WORK_TABLES = ("audit_event", "audit_chain_head", "idempotency_record", "login_throttle", "refresh_token",
               "revoked_access_token", "service_account", "app_user", "attachment", "recall_progress", "recall",
               "campaign_delta", "campaign_dirty", "campaign_enterprise", "report", "rectification_plan", "supervision",
               "acceptance",
               "case_event", "case_measure",
               "case_escalation", "webhook_delivery", "webhook_subscription", "notification", "bad_record",
               "penalty_case",
               "inspection", "license", "enterprise_key_flag", "key_region", "enterprise")


def _test_database_url() -> str:
    explicit = os.environ.get("TEST_DATABASE_URL")
    if explicit:
        return explicit
    uri = start_embedded_postgres(Path(os.environ.get("TEST_PGDATA", PROJECT_ROOT / "var" / "pgdata-test")))
    # One database per test run, so parallel runs on one machine never drop each other's data.
    return asyncpg_url(uri, f"regulator_test_{os.getpid()}")


@pytest.fixture(scope="session")
def database_url() -> str:
    return _test_database_url()


@pytest.fixture(scope="session")
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    await drop_database(database_url)
    await create_database_if_missing(database_url)
    await asyncio.to_thread(upgrade, database_url)
    eng = make_engine(database_url, get_settings(), poolclass=NullPool)
    async with eng.begin() as conn:
        await reference.load_reference_data(AsyncSession(bind=conn))
    yield eng
    await eng.dispose()
    if not os.environ.get("TEST_DATABASE_URL"):
        await drop_database(database_url)


@pytest.fixture
async def connection(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    """One connection per test with an outer transaction that is always rolled back."""
    async with engine.connect() as conn:
        trans = await conn.begin()
        # this transaction never commits: deferred triggers (the campaign contributions, migration 0018)
        # run at the end of each statement instead
        await conn.execute(text("SET CONSTRAINTS ALL IMMEDIATE"))
        try:
            yield conn
        finally:
            await trans.rollback()


@pytest.fixture
def sessionmaker(connection: AsyncConnection) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(bind=connection, expire_on_commit=False, join_transaction_mode="create_savepoint")


@pytest.fixture(scope="session")
async def shared_app(engine: AsyncEngine) -> AsyncIterator[Any]:
    """One app for the whole run: FastAPI analyses every route's dependencies on an app's first request
    (over half a second with this many routes), so building an app per test would pay that each time.
    Its principal cache runs as in production (LISTEN included), so every test that changes a user,
    a service account or a revoked token also checks that the change empties it."""
    app = create_app(get_settings())
    async with principal_cache_listening(app, async_sessionmaker(engine)):
        yield app


@contextlib.asynccontextmanager
async def principal_cache_listening(app: Any, maker: async_sessionmaker[AsyncSession], *,
                                    retry_seconds: float = 1.0) -> AsyncIterator[None]:
    """The app's principal cache on, as the lifespan turns it on in production."""
    listener = asyncio.create_task(app.state.principal_cache.listen(listen_connector(maker),
                                                                    retry_seconds=retry_seconds))
    for _ in range(500):
        if app.state.principal_cache.active:
            break
        await asyncio.sleep(0.01)
    assert app.state.principal_cache.active, "the principal cache's LISTEN connection did not come up"
    try:
        yield
    finally:
        listener.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await listener


@pytest.fixture
async def app(sessionmaker: async_sessionmaker[AsyncSession], shared_app: Any) -> AsyncIterator[Any]:
    """The shared app on this test's rolled-back connection; overrides and settings a test sets are undone
    after it."""
    async with sessionmaker() as session:
        await user_service.ensure_bootstrap_admin(session, get_settings())
        await session.commit()
    shared_app.state.sessionmaker = sessionmaker
    shared_app.state.read_sessionmaker = sessionmaker
    shared_app.state.principal_cache.clear()
    try:
        yield shared_app
    finally:
        shared_app.dependency_overrides.clear()
        shared_app.state.settings = get_settings()  # a test may run the app on other settings (key rotation)
        shared_app.state.sessionmaker = shared_app.state.read_sessionmaker = None


@pytest.fixture
async def client(app: Any) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
        yield c


@pytest.fixture
async def live_app(engine: AsyncEngine, database_url: str) -> AsyncIterator[Any]:
    """An app on a pooled engine whose transactions really commit, for tests of concurrent requests,
    with its principal cache on: it serves as in production (a read-only GET whose caller is cached
    runs its raw statements on connections borrowed for each, app.db.raw_fetch). The rows it leaves are
    truncated afterwards."""
    eng = make_engine(database_url, get_settings(), pool_size=5, max_overflow=5)
    from app.db import make_sessionmaker

    maker = make_sessionmaker(eng)
    async with maker() as session:
        await user_service.ensure_bootstrap_admin(session, get_settings())
        await session.commit()
    try:
        live = create_app(get_settings(), sessionmaker=maker)
        # (a LISTEN connection lost in a test comes back at once)
        async with principal_cache_listening(live, maker, retry_seconds=0.05):
            yield live
    finally:
        async with eng.begin() as conn:
            # the audit tables refuse TRUNCATE by trigger; the test database's superuser skips triggers
            await conn.execute(text("SET LOCAL session_replication_role = replica"))
            await conn.execute(text(f"TRUNCATE {', '.join(WORK_TABLES)} CASCADE"))
        await eng.dispose()


@pytest.fixture
async def live_client(live_app: Any) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=live_app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
        yield c


async def login(client: httpx.AsyncClient, username: str, password: str) -> dict[str, Any]:
    """Password grant; returns the token response body (asserts success)."""
    r = await client.post("/api/v1/auth/token", data={"grant_type": "password", "username": username,
                                                      "password": password})
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def assert_problem(r: httpx.Response, status: int, code: str | None = None) -> dict[str, Any]:
    """The response is an RFC 9457 problem with this status (and code), traceable by its request id."""
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/problem+json"), r.headers["content-type"]
    body: dict[str, Any] = r.json()
    for field in ("type", "title", "status", "detail", "code"):
        assert field in body, f"{field} missing from {body}"
    assert body["status"] == status
    assert isinstance(body["detail"], str) and body["detail"]
    assert body["type"].endswith("/" + body["code"])
    if code is not None:
        assert body["code"] == code, body
    assert body.get("request_id") == r.headers.get("x-request-id")
    return body


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
async def admin_token(client: httpx.AsyncClient) -> str:
    return str((await login(client, "admin", ADMIN_PASSWORD))["access_token"])


async def create_user(client: httpx.AsyncClient, token: str, *, username: str, region_code: str,
                      roles: list[str], password: str = "correct-horse-battery") -> dict[str, Any]:
    r = await client.post("/api/v1/users", headers=bearer(token), json={
        "username": username, "password": password, "display_name": username,
        "region_code": region_code, "roles": roles})
    assert r.status_code == 201, r.text
    body: dict[str, Any] = r.json()
    return body


async def user_token(client: httpx.AsyncClient, admin: str, *, username: str, region_code: str,
                     roles: list[str]) -> str:
    """Create a user as ``admin`` and log in as it."""
    await create_user(client, admin, username=username, region_code=region_code, roles=roles)
    return str((await login(client, username, "correct-horse-battery"))["access_token"])
