"""Jurisdiction (gate 1, app/scope.py) over HTTP, as a table: levels x roles x targets.

DOMAIN.md §1: a caller sees records whose region lies inside its own (prefix rule); nobody sees a
sibling's; national sees all. Outside means 404 for a record (never 403: its existence is not
revealed) and 403 `not_in_jurisdiction` for a ``region=`` filter."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from tests.conftest import bearer, create_user, login

PROBLEM_JSON = "application/problem+json"
PASSWORD = "correct-horse-battery"


LEVELS = {"national": "000000", "provincial": "330000", "city": "330100", "county": "330106"}
ROLES = ["admin", "inspector", "officer", "leader"]

# The users every test of this module starts with, by username: the bootstrap admin and four
# targets spread over Zhejiang (Hangzhou's Xihu and Shangcheng districts, Ningbo's Jiangbei) and Jiangsu.
TARGETS = {"t330106": "330106", "t330102": "330102", "t330205": "330205", "t320102": "320102"}

# Which of them an admin at each level may read (and PATCH); any other is 404 to it.
INSIDE = {
    "national": {"admin", "t330106", "t330102", "t330205", "t320102"},
    "provincial": {"t330106", "t330102", "t330205"},
    "city": {"t330106", "t330102"},
    "county": {"t330106"},
}

# GET /users?region=... as an admin at each level ("caller" is that admin itself): the usernames
# listed, or the 403 for a filter outside the jurisdiction. None = no filter.
EVERYONE = {"admin", "caller", "t330106", "t330102", "t330205", "t320102"}
LISTS: dict[str, dict[str | None, set[str] | int]] = {
    "national": {
        None: EVERYONE, "000000": EVERYONE,
        "330000": {"t330106", "t330102", "t330205"},
        "330100": {"t330106", "t330102"}, "330106": {"t330106"}, "320000": {"t320102"}, "110000": set(),
    },
    "provincial": {
        None: {"caller", "t330106", "t330102", "t330205"}, "330000": {"caller", "t330106", "t330102", "t330205"},
        "330100": {"t330106", "t330102"}, "330200": {"t330205"}, "330102": {"t330102"},
        "320000": 403, "320102": 403, "000000": 403,
    },
    "city": {
        None: {"caller", "t330106", "t330102"}, "330100": {"caller", "t330106", "t330102"},
        "330106": {"t330106"}, "330102": {"t330102"},
        "330000": 403, "330200": 403, "330205": 403, "320102": 403, "000000": 403,
    },
    "county": {
        None: {"caller", "t330106"}, "330106": {"caller", "t330106"},
        "330102": 403, "330100": 403, "330000": 403, "320102": 403, "000000": 403,
    },
}



@pytest.fixture
async def world(client: httpx.AsyncClient, admin_token: str) -> dict[str, str]:
    """username -> id of the bootstrap admin and the four targets (all inspectors)."""
    ids = {"admin": (await client.get("/api/v1/me", headers=bearer(admin_token))).json()["id"]}
    for username, region_code in TARGETS.items():
        ids[username] = (await create_user(client, admin_token, username=username, region_code=region_code,
                                           roles=["inspector"]))["id"]
    return ids


async def caller(client: httpx.AsyncClient, admin_token: str, region_code: str, roles: list[str],
                 username: str = "caller") -> tuple[str, str]:
    """(id, access token) of a new user."""
    body = await create_user(client, admin_token, username=username, region_code=region_code, roles=roles)
    return body["id"], str((await login(client, username, PASSWORD))["access_token"])


def problem(r: httpx.Response) -> tuple[int, str, str]:
    assert r.headers["content-type"].startswith(PROBLEM_JSON), (r.status_code, r.text)
    body = r.json()
    return body["status"], body["code"], body["title"]


async def usernames(client: httpx.AsyncClient, token: str, **params: Any) -> set[str] | int:
    r = await client.get("/api/v1/users", headers=bearer(token), params={"limit": 200, **params})
    if r.status_code != 200:
        assert problem(r)[:2] == (r.status_code, "not_in_jurisdiction"), r.text
        return r.status_code
    assert r.json()["next_cursor"] is None
    return {u["username"] for u in r.json()["items"]}


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("level", LEVELS)
async def test_reading_a_user_record_follows_jurisdiction(client, admin_token, world, level, role):
    me, token = await caller(client, admin_token, LEVELS[level], [role])

    r = await client.get(f"/api/v1/users/{me}", headers=bearer(token))
    assert r.status_code == 200, r.text  # everyone reads themselves
    assert r.json()["username"] == "caller"

    got = {name: (await client.get(f"/api/v1/users/{uid}", headers=bearer(token))).status_code
           for name, uid in world.items()}
    if role == "admin":
        expected = {name: 200 if name in INSIDE[level] else 404 for name in world}
    else:  # non-admins read only themselves, inside or outside alike
        expected = {name: 403 for name in world}
    assert got == expected

    # A refused record looks exactly like one that does not exist.
    missing = await client.get(f"/api/v1/users/{uuid.uuid4()}", headers=bearer(token))
    assert missing.status_code == (404 if role == "admin" else 403)
    refused = [name for name, status in got.items() if status != 200]
    for name in refused:
        r = await client.get(f"/api/v1/users/{world[name]}", headers=bearer(token))
        assert problem(r) == problem(missing)
        assert r.json().keys() == missing.json().keys() and f"\"{name}\"" not in r.text


@pytest.mark.parametrize("level", LEVELS)
async def test_admin_user_lists_follow_jurisdiction(client, admin_token, world, level):
    _, token = await caller(client, admin_token, LEVELS[level], ["admin"])
    got = {region: await usernames(client, token, **({"region": region} if region else {}))
           for region in LISTS[level]}
    assert got == LISTS[level]

    # Paging through the unfiltered list a row at a time reaches the same users and no others.
    seen: list[str] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 1, **({"cursor": cursor} if cursor else {})}
        r = await client.get("/api/v1/users", headers=bearer(token), params=params)
        assert r.status_code == 200, r.text
        seen += [u["username"] for u in r.json()["items"]]
        cursor = r.json()["next_cursor"]
        if cursor is None:
            break
    assert sorted(seen) == sorted(LISTS[level][None])  # type: ignore[arg-type]


@pytest.mark.parametrize("level", LEVELS)
async def test_admin_patches_only_users_inside(client, admin_token, connection: AsyncConnection, world, level):
    _, token = await caller(client, admin_token, LEVELS[level], ["admin", "inspector"])
    got = {}
    for name in TARGETS:
        r = await client.patch(f"/api/v1/users/{world[name]}", headers={**bearer(token), "If-Match": '"1"'},
                               json={"display_name": f"renamed by {level}"})
        got[name] = r.status_code
        if r.status_code == 404:
            assert problem(r)[:2] == (404, "user_not_found")
    assert got == {name: 200 if name in INSIDE[level] else 404 for name in TARGETS}

    rows = dict((await connection.execute(text(
        "SELECT username, display_name FROM app_user WHERE username LIKE 't%'"))).all())
    assert rows == {name: f"renamed by {level}" if name in INSIDE[level] else name for name in TARGETS}


async def test_county_admin_cannot_see_sibling_county_but_city_admin_sees_both(client, admin_token):
    xihu_user = await create_user(client, admin_token, username="xihu.inspector", region_code="330106",
                                  roles=["inspector"])
    shangcheng_user = await create_user(client, admin_token, username="shangcheng.inspector", region_code="330102",
                                        roles=["inspector"])
    _, xihu_admin = await caller(client, admin_token, "330106", ["admin"], username="xihu.admin")
    _, city_admin = await caller(client, admin_token, "330100", ["admin"], username="hz.admin")

    r = await client.get(f"/api/v1/users/{shangcheng_user['id']}", headers=bearer(xihu_admin))
    assert problem(r)[:2] == (404, "user_not_found")
    assert await usernames(client, xihu_admin) == {"xihu.admin", "xihu.inspector"}
    assert await usernames(client, xihu_admin, region="330102") == 403

    for user in (xihu_user, shangcheng_user):
        r = await client.get(f"/api/v1/users/{user['id']}", headers=bearer(city_admin))
        assert r.status_code == 200, r.text
    assert await usernames(client, city_admin) == {"hz.admin", "xihu.admin", "xihu.inspector",
                                                   "shangcheng.inspector"}
    assert await usernames(client, city_admin, region="330102") == {"shangcheng.inspector"}


async def test_reads_follow_a_transfer_at_once(client, admin_token, world):
    """Region and roles are reloaded per request: a token issued before a transfer follows it."""
    me, token = await caller(client, admin_token, "330106", ["admin"])
    assert (await client.get(f"/api/v1/users/{world['t330205']}", headers=bearer(token))).status_code == 404
    r = await client.patch(f"/api/v1/users/{me}", headers={**bearer(admin_token), "If-Match": '"1"'},
                           json={"region_code": "330200"})
    assert r.status_code == 200, r.text
    assert (await client.get(f"/api/v1/users/{world['t330205']}", headers=bearer(token))).status_code == 200
    assert (await client.get(f"/api/v1/users/{world['t330106']}", headers=bearer(token))).status_code == 404


async def test_scope_filters_counts_subqueries_exists_unions_and_ctes(sessionmaker):
    """The filter follows a region-owned table wherever it appears in a statement."""
    import uuid

    from sqlalchemy import exists, func, select

    from app import scope as scope_mod
    from app.models.reference import Region
    from app.models.user import User
    from app.scope import Scope

    async with sessionmaker() as s:
        for rc in ("330106", "320102"):
            s.add(User(username=f"shape.{rc}", password_hash="x", display_name="d", region_code=rc,
                       roles=["inspector"]))
        await s.commit()
    async with sessionmaker() as s:
        scope_mod.attach(s.sync_session, Scope(principal_id=uuid.uuid4(), principal_type="user", username="x",
                                               region_code="330106"))
        mine = User.username.like("shape.%")  # type: ignore[attr-defined]
        assert (await s.execute(select(func.count()).select_from(User).where(mine))).scalar() == 1
        outside = select(Region.code).where(Region.code == "320102",
                                            exists(select(User.id).where(User.region_code == Region.code)))
        assert (await s.execute(outside)).all() == []
        in_sub = select(Region.code).where(Region.code.in_(select(User.region_code).where(mine)))
        assert [r[0] for r in (await s.execute(in_sub)).all()] == ["330106"]
        union = select(User.username).where(mine).union_all(select(User.username).where(mine))
        assert sorted(r[0] for r in (await s.execute(union)).all()) == ["shape.330106", "shape.330106"]
        cte = select(User.username).where(mine).cte()
        assert [r[0] for r in (await s.execute(select(cte.c.username))).all()] == ["shape.330106"]


async def test_a_region_owned_query_without_a_scope_fails_closed(sessionmaker):
    from sqlalchemy import exists, select

    from app.models.reference import Region
    from app.models.user import User
    from app.scope import ScopeMissing

    async with sessionmaker() as s:
        with pytest.raises(ScopeMissing):
            await s.execute(select(Region.code).where(exists(select(User.id).where(User.region_code == Region.code))))
        assert (await s.execute(select(Region.code).where(Region.code == "330106"))).scalar() == "330106"


@pytest.mark.parametrize(("region", "expected"), [
    ("330106", "e.region_code = $1"), ("330100", "e.region_code LIKE $1"), ("330000", "e.region_code LIKE $1"),
    ("000000", None)])
def test_raw_sql_matches_a_region_as_the_session_filter_does(region, expected):
    from app.db import SqlParams
    from app.scope import region_sql

    params = SqlParams()
    assert region_sql("e.region_code", region, params.add) == expected
    assert params.values == ({"330106": ["330106"], "330100": ["3301%"], "330000": ["33%"]}.get(region, []))


async def test_a_raw_query_on_a_session_without_scope_is_refused(sessionmaker):
    from app.db import raw_fetch
    from app.scope import ScopeMissing

    async with sessionmaker() as session:
        with pytest.raises(ScopeMissing):
            await raw_fetch(session, "SELECT id FROM enterprise LIMIT 1")
        assert await raw_fetch(session, "SELECT 1 AS one", unscoped=True) == [(1,)]


async def test_a_raw_query_must_state_the_callers_jurisdiction(sessionmaker):
    """The scope's session filter sees ORM statements only: a raw statement states the jurisdiction
    itself, through the SqlParams it is built with, or it is refused."""
    import uuid

    from app.db import SqlParams, raw_fetch
    from app.scope import Scope, ScopeMissing, attach

    county = Scope(principal_id=uuid.uuid4(), principal_type="user", username="x", region_code="330106")
    other = Scope(principal_id=uuid.uuid4(), principal_type="user", username="y", region_code="330102")
    async with sessionmaker() as session:
        attach(session.sync_session, county)
        with pytest.raises(ScopeMissing):  # no parameters, so no jurisdiction
            await raw_fetch(session, "SELECT id FROM enterprise LIMIT 1")
        forgot = SqlParams(county)
        with pytest.raises(ScopeMissing):  # parameters that state none
            await raw_fetch(session, f"SELECT id FROM enterprise WHERE region_code <> {forgot.add('x')}", forgot)
        dropped = SqlParams(county)
        dropped.inside("region_code")
        with pytest.raises(ScopeMissing):  # the jurisdiction's condition asked for, and left out
            await raw_fetch(session, f"SELECT id FROM enterprise WHERE id = {dropped.add(uuid.uuid4())}", dropped)
        theirs = SqlParams(other)
        sql = f"SELECT id FROM enterprise WHERE {' AND '.join(theirs.inside('region_code'))}"
        with pytest.raises(ScopeMissing):  # built for another caller
            await raw_fetch(session, sql, theirs)
        mine = SqlParams(county)
        assert await raw_fetch(session, f"SELECT count(*) AS n FROM enterprise WHERE {mine.inside('region_code')[0]}",
                               mine) == [(0,)]
        assert mine.values == ["330106"]
