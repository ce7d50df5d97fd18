"""The principal cache (app/principals.py): a token's caller is served from memory, and every change
that could alter the answer empties it, whether made through the API, by another process or by hand."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import asyncpg
import httpx
import pytest

from app.config import get_settings
from app.principals import PrincipalCache
from tests.conftest import ADMIN_PASSWORD, assert_problem, bearer, login, user_token
from tests.test_migrations import libpq


@pytest.fixture
async def listening(live_app: Any) -> PrincipalCache:
    """The live app's cache with its LISTEN connection up, as the lifespan starts it in a worker (the
    live_app fixture starts it)."""
    cache: PrincipalCache = live_app.state.principal_cache
    await until(lambda: cache.active)
    return cache


async def until(condition: Any, seconds: float = 5.0) -> None:
    for _ in range(int(seconds / 0.01)):
        if condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("condition not met in time")


async def me(client: httpx.AsyncClient, token: str) -> httpx.Response:
    return await client.get("/api/v1/me", headers=bearer(token))


async def test_a_token_is_resolved_once_then_served_from_memory(live_client, listening):
    admin = (await login(live_client, "admin", ADMIN_PASSWORD))["access_token"]
    token = await user_token(live_client, admin, username="cached.one", region_code="330106", roles=["inspector"])
    assert (await me(live_client, token)).status_code == 200
    hits = listening.hits
    r = await me(live_client, token)
    assert r.status_code == 200 and r.json()["username"] == "cached.one"
    assert listening.hits == hits + 1


async def test_a_change_committed_by_another_process_reaches_the_cache(live_client, listening, database_url):
    admin = (await login(live_client, "admin", ADMIN_PASSWORD))["access_token"]
    token = await user_token(live_client, admin, username="cached.two", region_code="330106", roles=["inspector"])
    assert (await me(live_client, token)).json()["region_code"] == "330106"
    assert (await me(live_client, token)).status_code == 200  # now cached
    clears = listening.clears
    conn = await asyncpg.connect(libpq(database_url))
    try:  # an administrator moves the officer to another county by hand, outside the service
        await conn.execute("UPDATE app_user SET region_code = '330108' WHERE username = 'cached.two'")
    finally:
        await conn.close()
    await until(lambda: listening.clears > clears)
    assert (await me(live_client, token)).json()["region_code"] == "330108"
    conn = await asyncpg.connect(libpq(database_url))
    try:
        await conn.execute("UPDATE app_user SET active = false WHERE username = 'cached.two'")
    finally:
        await conn.close()
    await until(lambda: listening.clears > clears + 1)
    assert_problem(await me(live_client, token), 401, "invalid_token")


async def test_a_change_through_the_api_applies_to_the_very_next_request(live_client, listening):
    """The in-process hook empties the cache at commit, before the response is sent: no notification
    delay for the caller who made the change."""
    admin = (await login(live_client, "admin", ADMIN_PASSWORD))["access_token"]
    token = await user_token(live_client, admin, username="cached.three", region_code="330106", roles=["inspector"])
    uid = (await me(live_client, token)).json()["id"]
    await me(live_client, token)
    r = await live_client.get(f"/api/v1/users/{uid}", headers=bearer(admin))
    r = await live_client.patch(f"/api/v1/users/{uid}", headers={**bearer(admin), "If-Match": r.headers["ETag"]},
                                json={"active": False})
    assert r.status_code == 200, r.text
    assert_problem(await me(live_client, token), 401, "invalid_token")


async def test_without_its_listen_connection_the_cache_serves_nothing(live_client, listening, database_url):
    admin = (await login(live_client, "admin", ADMIN_PASSWORD))["access_token"]
    token = await user_token(live_client, admin, username="cached.four", region_code="330106", roles=["inspector"])
    await me(live_client, token)
    conn = await asyncpg.connect(libpq(database_url))
    try:
        await conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                           " WHERE application_name = 'pqs-regulator-listen'")
        await until(lambda: not listening.active)
        assert len(listening) == 0
        hits = listening.hits
        assert (await me(live_client, token)).status_code == 200  # resolved from the database
        assert listening.hits == hits and len(listening) == 0
        # the listener comes back by itself, and the cache with it
        await until(lambda: listening.active)
        await me(live_client, token)
        assert (await me(live_client, token)).status_code == 200
        assert listening.hits == hits + 1
    finally:
        await conn.close()


async def test_a_retired_signing_key_stops_a_cached_token(live_app, live_client, listening):
    admin = (await login(live_client, "admin", ADMIN_PASSWORD))["access_token"]
    assert (await me(live_client, admin)).status_code == 200
    assert (await me(live_client, admin)).status_code == 200  # cached
    settings = get_settings()
    retired = settings.model_copy(update={"jwt_keys": '{"dev-2": "another-secret-of-at-least-32-bytes-xx"}',
                                          "jwt_active_kid": "dev-2"})
    live_app.state.settings = retired
    try:
        assert_problem(await me(live_client, admin), 401, "invalid_token")
    finally:
        live_app.state.settings = settings


async def test_a_silently_dropped_listen_connection_turns_the_cache_off():
    """No termination is reported when a network drops packets: the listener asks its connection
    something now and then, and a failure turns the cache off."""
    class Silent:
        answers = True

        def add_termination_listener(self, _cb: Any) -> None: ...
        async def add_listener(self, _channel: str, _cb: Any) -> None: ...
        def is_closed(self) -> bool:
            return False

        async def close(self, **_kw: Any) -> None: ...
        async def fetchval(self, _sql: str, **_kw: Any) -> int:
            if not self.answers:
                raise ConnectionResetError("no answer")
            return 1

    conn = Silent()

    async def connect() -> Silent:
        return conn

    cache = PrincipalCache()
    task = asyncio.create_task(cache.listen(connect, retry_seconds=60, check_seconds=0.02))
    try:
        await until(lambda: cache.active)
        await asyncio.sleep(0.1)
        assert cache.active  # the checks are answered
        conn.answers = False
        await until(lambda: not cache.active)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def test_a_lookup_overtaken_by_a_change_is_not_kept(live_client, listening, monkeypatch):
    """A request reads the caller, a change commits and empties the cache, then the request finishes:
    what it read is already stale and must not go back into the cache."""
    from app.services import auth as auth_service

    admin = (await login(live_client, "admin", ADMIN_PASSWORD))["access_token"]
    token = await user_token(live_client, admin, username="cached.five", region_code="330106", roles=["inspector"])
    real = auth_service.load_principal

    async def overtaken(session: Any, claims: Any) -> Any:
        scope = await real(session, claims)
        listening.clear()  # the change's notification arrives while this request is still running
        return scope

    monkeypatch.setattr(auth_service, "load_principal", overtaken)
    assert (await me(live_client, token)).status_code == 200
    monkeypatch.setattr(auth_service, "load_principal", real)
    assert len(listening) == 0
    hits = listening.hits
    await me(live_client, token)  # a lookup nobody overtook is kept
    assert len(listening) == 1 and listening.hits == hits
    await me(live_client, token)
    assert listening.hits == hits + 1


async def test_a_statement_that_changes_no_principal_announces_nothing(live_client, listening, database_url):
    """The jobs delete expired revocations every few seconds, mostly none: that must not empty the cache."""
    conn = await asyncpg.connect(libpq(database_url))
    try:
        clears = listening.clears
        await conn.execute("DELETE FROM revoked_access_token WHERE expires_at < now() - interval '100 years'")
        await conn.execute("UPDATE app_user SET display_name = display_name WHERE false")
        await asyncio.sleep(0.3)
        assert listening.clears == clears
        await conn.execute("UPDATE app_user SET display_name = display_name WHERE username = 'admin'")
        await until(lambda: listening.clears > clears)
    finally:
        await conn.close()
