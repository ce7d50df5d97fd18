"""Every error is an RFC 9457 problem (application/problem+json) with a stable code, never a 500."""

from __future__ import annotations

import asyncio
import base64
import uuid
from datetime import date
from typing import Any, ClassVar

import pytest
from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, StrictBool
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from app.concurrency import IfMatchDep
from app.config import get_settings
from app.main import _require_app_routes, create_app
from app.models.common import Day, JsonInt, unrequire_replay_omits
from app.routers import secured_router
from tests.conftest import ADMIN_PASSWORD, assert_problem, bearer, login, user_token

PROBLEM_FIELDS = ("type", "title", "status", "detail", "code")





def user_body(username: str, **kw: Any) -> dict[str, Any]:
    body = {"username": username, "password": "correct-horse-battery", "display_name": username,
            "region_code": "330106", "roles": ["inspector"]}
    body.update(kw)
    return body


async def test_unknown_route_is_a_404_problem(client):
    r = await client.get("/api/v1/no-such-thing")
    body = assert_problem(r, 404, "not_found")
    assert body["instance"] == "/api/v1/no-such-thing"


async def test_wrong_method_is_a_405_problem(client, admin_token):
    r = await client.delete("/api/v1/regions", headers=bearer(admin_token))
    assert_problem(r, 405, "method_not_allowed")
    assert r.headers["allow"] == "GET, HEAD"


@pytest.mark.parametrize(("path", "allow"), [
    ("/api/v1/enterprises", "GET, HEAD, POST"),
    (f"/api/v1/enterprises/{uuid.uuid4()}", "GET, HEAD, PATCH"),
    (f"/api/v1/inspections/{uuid.uuid4()}/attachments", "GET, HEAD, POST"),
    ("/api/v1/inspections/batch", "POST"),  # not an inspection id of GET/PATCH /inspections/{inspection_id}
    ("/api/v1/reports/oversight", "GET, HEAD"),
    (f"/api/v1/supervisions/{uuid.uuid4()}/actions/close", "POST"),  # .../actions/{action}, one literal less
])
async def test_a_405_allows_every_method_of_the_resource(client, admin_token, path, allow):
    # each method is a route of its own: Starlette's 405 named only the first route that matched
    for method in ("OPTIONS", "PUT", "DELETE"):
        r = await client.request(method, path, headers=bearer(admin_token))
        assert_problem(r, 405, "method_not_allowed")
        assert r.headers["allow"] == allow, (method, path)


@pytest.mark.parametrize("method", ["GET", "HEAD", "PATCH"])
async def test_a_literal_path_is_not_read_as_an_id_of_its_sibling(client, admin_token, method):
    # GET and PATCH /inspections/{inspection_id} match /inspections/batch too; its "batch" is no id
    r = await client.request(method, "/api/v1/inspections/batch", headers=bearer(admin_token), json={"version": 1})
    assert r.status_code == 405
    assert r.headers["allow"] == "POST"
    if method != "HEAD":
        assert_problem(r, 405, "method_not_allowed")
    # an id that is no uuid, on a path with no literal sibling, is still invalid input
    r = await client.request(method, "/api/v1/inspections/not-an-id", headers=bearer(admin_token),
                             json={"version": 1})
    assert r.status_code == 422
    if method != "HEAD":
        assert_problem(r, 422, "validation_error")


async def test_invalid_body_is_a_422_problem_listing_each_error(client, admin_token):
    r = await client.post("/api/v1/users", headers=bearer(admin_token),
                          json={"username": "x", "password": "short", "region_code": "33", "roles": [],
                                "is_superuser": True})
    body = assert_problem(r, 422, "validation_error")
    errors = body["errors"]
    assert isinstance(errors, list) and errors
    for e in errors:
        assert isinstance(e["loc"], list) and e["loc"]
        assert isinstance(e["msg"], str) and e["msg"]
    locs = {tuple(e["loc"]) for e in errors}
    assert ("body", "username") in locs
    assert ("body", "password") in locs
    assert ("body", "display_name") in locs  # missing
    assert ("body", "is_superuser") in locs  # mass assignment is refused


async def test_malformed_json_is_a_422_problem(client, admin_token):
    r = await client.post("/api/v1/users", headers={**bearer(admin_token), "content-type": "application/json"},
                          content=b"{not json")
    body = assert_problem(r, 422, "validation_error")
    assert body["errors"]


@pytest.mark.parametrize("content", [b"\xff\xfe7", b'{"username": "\xe9t\xe9"}'])
async def test_a_body_that_cannot_be_decoded_is_a_422_problem_like_malformed_json(client, admin_token, content):
    r = await client.post("/api/v1/users", headers={**bearer(admin_token), "content-type": "application/json"},
                          content=content)
    body = assert_problem(r, 422, "validation_error")  # FastAPI's own answer was a bare 400
    assert body["errors"] == [{"loc": ["body"], "msg": "the body cannot be decoded: send JSON in UTF-8",
                               "type": "json_invalid"}]


async def test_invalid_query_parameter_is_a_422_problem(client, admin_token):
    r = await client.get("/api/v1/regions", params={"parent": "33"}, headers=bearer(admin_token))
    body = assert_problem(r, 422, "validation_error")
    assert ["query", "parent"] in [e["loc"] for e in body["errors"]]


@pytest.mark.parametrize(("path", "name", "value", "read"), [
    ("/api/v1/inspections", "to", "0.5", False),
    ("/api/v1/inspections", "from", "1795000000", False),
    ("/api/v1/licenses", "expiring_before", "0", False),
    ("/api/v1/key-regions", "since", "0", False),
    ("/api/v1/reports", "period_end", "20261130", False),
    ("/api/v1/inspections", "to", "2026-11-30T00:00:00+08:00", True),
    ("/api/v1/licenses", "expiring_before", "2026-11-30", True),
    ("/api/v1/key-regions", "since", "2025-11-30", True),
    ("/api/v1/reports", "period_end", "2026-11-30", True),
])
async def test_a_date_in_a_query_is_iso_text_not_seconds_since_1970(client, admin_token, path, name, value, read):
    r = await client.get(path, params={name: value}, headers=bearer(admin_token))
    if read:
        assert r.status_code == 200, r.text
    else:
        body = assert_problem(r, 422, "validation_error")
        assert [e["msg"] for e in body["errors"] if e["loc"] == ["query", name]] == [
            "Value error, expected ISO 8601 text (a date as YYYY-MM-DD), not a number"], body["errors"]


async def test_missing_token_is_a_401_problem(client):
    r = await client.get("/api/v1/me")
    assert_problem(r, 401, "unauthenticated")
    assert r.headers["www-authenticate"].lower().startswith("bearer")


async def test_garbage_token_is_a_401_problem(client):
    r = await client.get("/api/v1/me", headers=bearer("not.a.jwt"))
    assert_problem(r, 401, "invalid_token")
    assert r.headers["www-authenticate"].lower().startswith("bearer")


async def test_non_admin_listing_users_is_a_403_problem(client, admin_token):
    token = await user_token(client, admin_token, username="prob.inspector", region_code="330106",
                             roles=["inspector"])
    r = await client.get("/api/v1/users", headers=bearer(token))
    assert_problem(r, 403, "forbidden")


async def test_granting_a_region_outside_jurisdiction_is_a_403_problem(client, admin_token):
    token = await user_token(client, admin_token, username="prob.zj.admin", region_code="330000",
                             roles=["admin", "inspector"])
    r = await client.post("/api/v1/users", headers=bearer(token), json=user_body("prob.js", region_code="320100"))
    assert_problem(r, 403, "not_in_jurisdiction")


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


@pytest.mark.parametrize("cursor", [
    "!!!not-base64!!!",
    "a",                                  # impossible base64 length
    _b64(b"\xff\xfe\xfd"),                # not UTF-8
    _b64(b"<s:330100"),                   # a backwards bookmark: not one we issue
    _b64(b">garbage"),
    _b64(b">s:330100~s:330200"),          # wrong number of columns
    _b64(b">i:notanumber"),
    _b64(b">uuid:zz"),
], ids=["not-base64", "bad-length", "not-utf8", "backwards", "garbage", "two-columns", "bad-int", "bad-uuid"])
async def test_bad_cursor_is_422_invalid_cursor(client, admin_token, cursor):
    r = await client.get("/api/v1/regions", params={"parent": "330000", "cursor": cursor},
                         headers=bearer(admin_token))
    assert_problem(r, 422, "invalid_cursor")




@pytest.mark.parametrize(("path", "params", "raw"), [
    ("/api/v1/regions", {"parent": "330000"}, b">x"),                 # null key
    ("/api/v1/regions", {"parent": "330000"}, b">x:330100"),          # unknown type tag
    ("/api/v1/regions", {"parent": "330000"}, b">i:5"),               # int for a varchar key
    ("/api/v1/regions", {"parent": "330000"}, b">dt:2020-01-01"),     # datetime for a varchar key
    ("/api/v1/users", {}, b">s:yesterday~s:nobody"),                  # strings for timestamptz/uuid keys
    ("/api/v1/users", {}, b">x~x"),
    ("/api/v1/audit-events", {}, b">s:abc"),                          # string for a bigint key
    ("/api/v1/audit-events", {}, b">i:99999999999999999999999"),      # out of bigint range
], ids=["region-null", "region-unknown-tag", "region-int", "region-datetime", "users-strings", "users-nulls",
        "audit-string", "audit-overflow"])
async def test_well_formed_cursor_with_wrongly_typed_values_is_422(client, admin_token, path, params, raw):
    r = await client.get(path, params={**params, "cursor": _b64(raw)}, headers=bearer(admin_token))
    assert_problem(r, 422, "invalid_cursor")


async def test_lists_read_without_a_transaction_and_still_refuse_bad_cursors(live_client, engine):
    """GET lists run in autocommit (no BEGIN/COMMIT round trips); a cursor the database rejects is
    still a 422 there, and the pooled connections stay usable and outside any transaction."""
    token = (await login(live_client, "admin", ADMIN_PASSWORD))["access_token"]
    for raw in (b">i:5", b">dt:2020-01-01", b">x:330100"):
        r = await live_client.get("/api/v1/regions", params={"parent": "330000", "cursor": _b64(raw)},
                                  headers=bearer(token))
        assert_problem(r, 422, "invalid_cursor")
    r = await live_client.get("/api/v1/users", params={"cursor": _b64(b">s:yesterday~s:nobody")},
                              headers=bearer(token))
    assert_problem(r, 422, "invalid_cursor")
    seen: list[str] = []
    cursor = None
    for _ in range(3):  # a cursor the service issued goes on reading, page after page
        r = await live_client.get("/api/v1/regions", params={"parent": "330000", "limit": 2,
                                                             **({"cursor": cursor} if cursor else {})},
                                  headers=bearer(token))
        assert r.status_code == 200, r.text
        seen += [item["code"] for item in r.json()["items"]]
        cursor = r.json()["next_cursor"]
    assert len(seen) == 6 and len(set(seen)) == 6 and seen == sorted(seen)
    async with engine.connect() as conn:  # no session of the service is left idle in a transaction
        stuck = (await conn.execute(text(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'pqs-regulator'"
            " AND state LIKE 'idle in transaction%' AND datname = current_database()"))).scalar_one()
    assert stuck == 0


@pytest.mark.parametrize("limit", ["0", "201", "-1", "ten"])
async def test_limit_outside_1_to_200_is_422(client, admin_token, limit):
    r = await client.get("/api/v1/regions", params={"limit": limit}, headers=bearer(admin_token))
    body = assert_problem(r, 422, "validation_error")
    assert ["query", "limit"] in [e["loc"] for e in body["errors"]]


@pytest.mark.parametrize("limit", ["1", "200"])
async def test_limit_bounds_are_accepted(client, admin_token, limit):
    r = await client.get("/api/v1/regions", params={"limit": limit}, headers=bearer(admin_token))
    assert r.status_code == 200
    assert len(r.json()["items"]) == int(limit)


async def test_client_supplied_request_id_is_echoed_in_problem(client):
    rid = uuid.uuid4().hex
    r = await client.get("/api/v1/me", headers={"X-Request-ID": rid})
    body = assert_problem(r, 401)
    assert r.headers["x-request-id"] == rid
    assert body["request_id"] == rid


async def test_successful_responses_carry_a_request_id_too(client, admin_token):
    r = await client.get("/api/v1/me", headers=bearer(admin_token))
    assert r.status_code == 200
    assert r.headers.get("x-request-id")




async def _add_failing_route(app: Any) -> None:
    async def boom() -> None:
        raise RuntimeError("secret internals: password=hunter2")

    app.add_api_route("/api/v1/test-boom", boom, methods=["GET"])


async def test_unexpected_error_is_a_500_problem_without_internals(app, client):
    await _add_failing_route(app)
    r = await client.get("/api/v1/test-boom")
    assert r.status_code == 500
    assert r.headers["content-type"].startswith("application/problem+json")
    body = r.json()
    assert body["code"] == "internal_error"
    assert body["request_id"]
    assert "secret" not in r.text and "Traceback" not in r.text


async def test_unexpected_error_carries_the_request_id_header(app, client):
    await _add_failing_route(app)
    r = await client.get("/api/v1/test-boom")
    assert_problem(r, 500, "internal_error")


async def test_username_taken_is_a_409_problem(client, admin_token):
    r = await client.post("/api/v1/users", headers=bearer(admin_token), json=user_body("prob.dup"))
    assert r.status_code == 201, r.text
    r = await client.post("/api/v1/users", headers=bearer(admin_token), json=user_body("prob.dup"))
    assert_problem(r, 409, "username_taken")


# --- constraint failures that only the database catches ---------------------------------------

async def test_concurrent_creates_of_one_username_give_201_and_409_never_500(live_client):
    token = (await login(live_client, "admin", ADMIN_PASSWORD))["access_token"]
    responses = await asyncio.gather(*[
        live_client.post("/api/v1/users", headers=bearer(token), json=user_body("prob.race", display_name=f"n{i}"))
        for i in range(2)
    ])
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [201, 409], [r.text for r in responses]
    loser = next(r for r in responses if r.status_code == 409)
    assert assert_problem(loser, 409)["code"] in ("username_taken", "unique_violation")
    listed = await live_client.get("/api/v1/users", params={"q": "prob.race"}, headers=bearer(token))
    assert [u["username"] for u in listed.json()["items"]] == ["prob.race"]


async def _wait_for_lock_wait(engine: AsyncEngine) -> None:
    """Until some backend of the app waits on a row/transaction lock (10 s at most)."""
    async with engine.connect() as conn:
        for _ in range(500):
            waiting = (await conn.execute(text(
                "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
                " AND application_name = 'pqs-regulator' AND datname = current_database()"
                " AND pid <> pg_backend_pid()"))).scalar()
            if waiting:
                return
            await asyncio.sleep(0.02)
    raise AssertionError("the request never blocked on the competing insert")


async def test_unique_violation_caught_only_by_the_database_is_a_409_problem(live_client, engine):
    """An uncommitted competing insert is invisible to the service's "username taken?" check; the
    unique index makes the app's INSERT wait and then fail when the competitor commits. That
    IntegrityError must become a 409 problem, and nothing of the losing request may persist."""
    token = (await login(live_client, "admin", ADMIN_PASSWORD))["access_token"]
    async with engine.connect() as rival:
        await rival.execute(text(
            "INSERT INTO app_user (id, username, password_hash, display_name, region_code, roles, active,"
            " version, created_at, updated_at) VALUES (:id, 'prob.dbonly', 'x', 'rival', '330106',"
            " '{inspector}', true, 1, now(), now())"), {"id": uuid.uuid4()})
        request = asyncio.create_task(live_client.post(
            "/api/v1/users", headers={**bearer(token), "Idempotency-Key": "prob-dbonly"},
            json=user_body("prob.dbonly")))
        await _wait_for_lock_wait(engine)
        await rival.commit()
        r = await asyncio.wait_for(request, 10)
    body = assert_problem(r, 409, "unique_violation")
    assert "uq_app_user_username" in body["detail"]
    async with engine.connect() as conn:
        names = (await conn.execute(text(
            "SELECT display_name FROM app_user WHERE username = 'prob.dbonly'"))).scalars().all()
        audit_rows = (await conn.execute(text(
            "SELECT count(*) FROM audit_event WHERE action = 'user.create'"
            " AND after->>'username' = 'prob.dbonly'"))).scalar()
        stored_keys = (await conn.execute(text(
            "SELECT count(*) FROM idempotency_record WHERE key = 'prob-dbonly'"))).scalar()
    assert names == ["rival"]
    assert audit_rows == 0
    assert stored_keys == 0


def test_a_patch_or_action_route_without_if_match_cannot_be_declared():
    """Optimistic concurrency is not left to each new route: the route class refuses one without it."""
    router = secured_router(machine_scope=None)

    async def careless(thing_id: str) -> dict[str, str]:
        return {}

    async def careful(thing_id: str, if_match: IfMatchDep) -> dict[str, str]:
        return {}

    for path, method in (("/things/{thing_id}", "PATCH"), ("/things/{thing_id}/actions/close", "POST")):
        with pytest.raises(TypeError, match="IfMatchDep"):
            router.add_api_route(path, careless, methods=[method])
        router.add_api_route(path, careful, methods=[method])  # accepted


async def test_a_request_that_meets_a_lost_database_connection_is_503_and_the_next_one_is_served(
        live_client, live_app, engine):
    """The pool does not ping a connection before lending it (a round trip per request): a connection
    the server has dropped fails the one statement that meets it, as a 503 the client may retry, and
    the pool replaces it. Raw statements (the list) and ORM ones (one enterprise) alike."""
    from tests.routers.archive_data import create_enterprise

    token = str((await login(live_client, "admin", ADMIN_PASSWORD))["access_token"])
    e = await create_enterprise(live_client, token)
    pool = live_app.state.sessionmaker.kw["bind"]
    for path in ("/api/v1/enterprises?region=330106", f"/api/v1/enterprises/{e['id']}"):
        assert (await live_client.get(path, headers=bearer(token))).status_code == 200
        assert pool.sync_engine.pool.checkedin() == 1  # requests one after another share one connection
        async with pool.connect() as conn:
            pid = (await conn.execute(text("SELECT pg_backend_pid()"))).scalar_one()
        async with engine.connect() as other:
            await other.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
        await asyncio.sleep(0.2)
        r = await live_client.get(path, headers=bearer(token))
        assert_problem(r, 503, "database_unavailable")
        assert r.headers["retry-after"] == "1"
        r = await live_client.get(path, headers=bearer(token))
        assert r.status_code == 200, r.text


def test_a_create_whose_replay_leaves_out_a_field_its_docs_require_cannot_be_declared():
    """A client validating a replayed create against the docs would reject it (schemathesis did)."""
    class Shown(BaseModel):
        id: str
        secret: str
        replay_omits: ClassVar[tuple[str, ...]] = ("secret",)

    class Documented(Shown):
        model_config = ConfigDict(json_schema_extra=unrequire_replay_omits)  # type: ignore[typeddict-item]

    router = secured_router(machine_scope=None)

    async def create() -> dict[str, str]:
        return {}

    with pytest.raises(TypeError, match="unrequire_replay_omits"):
        router.add_api_route("/things", create, methods=["POST"], status_code=201, response_model=Shown)
    router.add_api_route("/things", create, methods=["POST"], status_code=201, response_model=Documented)
    assert router.routes[-1].replay_redact == ("secret",)  # type: ignore[attr-defined]


class _Flag(BaseModel):
    on: bool


class _LooseBody(BaseModel):
    day: date
    flags: list[_Flag]


class _TypedBody(BaseModel):
    day: Day
    on: StrictBool
    count: JsonInt


async def _loose_create(body: _LooseBody) -> dict[str, str]:
    return {}


async def _typed_create(body: _TypedBody) -> dict[str, str]:
    return {}


async def _loose_list(since: date | None = None) -> dict[str, str]:
    return {}


async def _typed_list(since: Day | None = None, active: bool | None = None) -> dict[str, str]:
    return {}


async def _loose_path(day: date) -> dict[str, str]:
    return {}


def test_a_request_value_read_more_loosely_than_its_docs_type_it_cannot_be_declared():
    """A new field cannot skip the request types (app.models.common): a number read as a date, 0 as false."""
    router = secured_router(machine_scope=None)
    loose = r"reads body\.day \(date\), body\.flags\.on \(bool\) more loosely than its docs"
    with pytest.raises(TypeError, match=loose):
        router.add_api_route("/things", _loose_create, methods=["POST"], status_code=201)
    with pytest.raises(TypeError, match=r"reads since \(date\) more loosely than its docs"):
        router.add_api_route("/things", _loose_list)
    with pytest.raises(TypeError, match=r"reads day \(date\) more loosely than its docs"):
        router.add_api_route("/things/{day}", _loose_path)
    router.add_api_route("/things", _typed_create, methods=["POST"], status_code=201)
    router.add_api_route("/things", _typed_list)  # a query string is text: its booleans read as always
    assert len(router.routes) == 2


def test_a_route_outside_the_route_class_or_a_synchronous_change_cannot_be_declared():
    """A plain APIRouter's routes would skip the transaction, idempotency and If-Match handling; a
    synchronous change would skip the If-Match check the route class runs before the endpoint."""
    async def things() -> dict[str, str]:
        return {}

    app = create_app(get_settings())  # every route of the service is one: accepted
    plain = APIRouter()
    plain.add_api_route("/things", things)
    app.include_router(plain)
    with pytest.raises(TypeError, match=r"\['GET'\] /things is no AppRoute"):
        _require_app_routes(app)

    app = create_app(get_settings())
    app.add_api_route("/on-the-app", things)  # declared on the app itself: an AppRoute too
    secured = secured_router(machine_scope=None)
    secured.add_api_route("/things", things)
    app.include_router(secured)
    _require_app_routes(app)  # a router of app.routers: accepted

    def careful_but_sync(thing_id: str, if_match: IfMatchDep) -> dict[str, str]:
        return {}

    with pytest.raises(TypeError, match="async def"):
        secured_router(machine_scope=None).add_api_route("/things/{thing_id}", careful_but_sync, methods=["PATCH"])
