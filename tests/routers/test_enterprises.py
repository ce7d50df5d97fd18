"""Enterprises: GB 32100 codes, jurisdiction, filters and search, optimistic concurrency, audit."""

import uuid
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from app.scope import Scope
from app.services import uscc
from app.services.enterprise import EnterpriseListQuery, list_statement
from app.services.focus import facts_parameters
from tests.conftest import assert_problem, bearer, user_token

VALID = uscc.make("91330106MA2B0XK79")  # check character computed: C
WRONG_CHECK = VALID[:17] + ("0" if VALID[17] != "0" else "1")


def body(code: str = VALID, **kw: Any) -> dict[str, Any]:
    b: dict[str, Any] = {"uscc": code, "name": "杭州西湖电线电缆有限公司", "region_code": "330106",
                         "size": "medium", "category_codes": ["05", "0501"], "legal_representative": "张伟"}
    b.update(kw)
    return b


async def create(client: httpx.AsyncClient, token: str, **kw: Any) -> dict[str, Any]:
    r = await client.post("/api/v1/enterprises", headers=bearer(token), json=body(**kw))
    assert r.status_code == 201, r.text
    out: dict[str, Any] = r.json()
    return out


async def count(connection, where: str = "true") -> int:
    return int((await connection.execute(text(f"SELECT count(*) FROM enterprise WHERE {where}"))).scalar())


async def test_create_returns_the_enterprise_unlicensed_and_flagged(client, admin_token, connection):
    e = await create(client, admin_token)
    assert e["uscc"] == VALID and e["licensed"] is False and e["version"] == 1
    assert e["key_flags"] == [{"criterion": "unlicensed", "reason": "no valid production licence", "source": "auto"}]
    audit = (await connection.execute(text(
        "SELECT action, actor_name FROM audit_event WHERE entity_id = :id"), {"id": e["id"]})).all()
    assert [tuple(a) for a in audit] == [("enterprise.create", "admin")]


async def test_wrong_check_character_is_422_saying_so(client, admin_token, connection):
    r = await client.post("/api/v1/enterprises", headers=bearer(admin_token), json=body(WRONG_CHECK))
    assert r.status_code == 422 and r.json()["code"] == "invalid_uscc"
    assert f"GB 32100 gives '{VALID[17]}'" in r.json()["detail"]
    assert await count(connection) == 0


@pytest.mark.parametrize("code", ["91330106MA2B0XK7", "91330106MA2B0XKI9C", "9133O106MA2B0XK79C", "913301O6MA2B0XK79C"])
async def test_malformed_codes_are_422(client, admin_token, code):
    r = await client.post("/api/v1/enterprises", headers=bearer(admin_token), json=body(code))
    assert r.status_code == 422


async def test_provincial_admin_accepts_a_pilot_code_with_a_recorded_reason(client, admin_token, connection):
    prov = await user_token(client, admin_token, username="zj.admin", region_code="330000",
                            roles=["admin", "inspector"])
    reason = "2015 年试点地区早期代码，经核实有效"
    e = await create(client, prov, code=WRONG_CHECK, uscc_check_override=reason)
    stored = (await connection.execute(text("SELECT uscc_check_override FROM enterprise WHERE id = :id"),
                                       {"id": e["id"]})).scalar()
    assert stored == reason
    after = (await connection.execute(text(
        "SELECT after FROM audit_event WHERE entity_id = :id"), {"id": e["id"]})).scalar()
    assert after["uscc_check_override"] == reason


async def test_county_admin_cannot_accept_a_pilot_code(client, admin_token, connection):
    county = await user_token(client, admin_token, username="xh.admin", region_code="330106",
                              roles=["admin", "inspector"])
    r = await client.post("/api/v1/enterprises", headers=bearer(county),
                          json=body(WRONG_CHECK, uscc_check_override="looks fine to me"))
    assert r.status_code == 403 and r.json()["code"] == "uscc_override_not_permitted"
    assert await count(connection) == 0


async def test_override_is_refused_for_codes_that_verify(client, admin_token):
    r = await client.post("/api/v1/enterprises", headers=bearer(admin_token),
                          json=body(uscc_check_override="not needed at all"))
    assert r.status_code == 422 and r.json()["code"] == "override_not_needed"


async def test_uscc_is_unique(client, admin_token, connection):
    await create(client, admin_token)
    r = await client.post("/api/v1/enterprises", headers=bearer(admin_token), json=body(name="另一家公司"))
    assert r.status_code == 409 and r.json()["code"] == "uscc_taken"
    assert await count(connection) == 1


async def test_client_supplied_id_replays_and_conflicts(client, admin_token, connection):
    eid = "0b7e1c8a-9d55-4f0e-8d44-3f3f0f5e2a10"
    first = await create(client, admin_token, id=eid)
    again = await create(client, admin_token, id=eid)
    assert again["id"] == first["id"] == eid and await count(connection) == 1
    r = await client.post("/api/v1/enterprises", headers=bearer(admin_token), json=body(id=eid, name="别的名字公司"))
    assert r.status_code == 409 and r.json()["code"] == "id_conflict"


async def test_read_only_fields_and_unknown_fields_are_422(client, admin_token):
    for extra in ({"licensed": True}, {"key_flags": []}, {"version": 3}):
        r = await client.post("/api/v1/enterprises", headers=bearer(admin_token), json=body(**extra))
        assert r.status_code == 422, extra


async def test_unknown_category_and_region_are_422(client, admin_token):
    r = await client.post("/api/v1/enterprises", headers=bearer(admin_token), json=body(category_codes=["99"]))
    assert r.status_code == 422 and r.json()["code"] == "unknown_category"
    r = await client.post("/api/v1/enterprises", headers=bearer(admin_token),
                          json=body(uscc.make("91339999MA2B0XK79"), region_code="339999"))
    assert r.status_code == 422 and r.json()["code"] == "unknown_region"


async def test_county_inspector_is_confined_to_its_county(client, admin_token, connection):
    other = await create(client, admin_token, code=uscc.make("91330102MA2B0XK71"), region_code="330102",
                         name="上城区某电器厂")
    mine = await create(client, admin_token)
    inspector = await user_token(client, admin_token, username="xh.insp", region_code="330106", roles=["inspector"])
    h = bearer(inspector)

    assert (await client.get(f"/api/v1/enterprises/{other['id']}", headers=h)).status_code == 404
    assert (await client.get(f"/api/v1/enterprises/{mine['id']}", headers=h)).status_code == 200
    listed = (await client.get("/api/v1/enterprises", headers=h)).json()["items"]
    assert [e["id"] for e in listed] == [mine["id"]]
    r = await client.get("/api/v1/enterprises", headers=h, params={"region": "330102"})
    assert r.status_code == 403 and r.json()["code"] == "not_in_jurisdiction"
    r = await client.patch(f"/api/v1/enterprises/{other['id']}", headers=h | {"If-Match": '"1"'},
                           json={"name": "改名"})
    assert r.status_code == 404
    r = await client.post("/api/v1/enterprises", headers=h,
                          json=body(uscc.make("91330102MA2B0XK72"), region_code="330102"))
    assert r.status_code == 403 and r.json()["code"] == "not_in_jurisdiction"
    assert await count(connection, "region_code = '330102'") == 1


async def test_head_answers_as_get_without_the_body_within_the_jurisdiction(client, admin_token):
    # an ETag before a PATCH without the record, or whether a record exists (RFC 9110: HEAD with GET)
    other = await create(client, admin_token, code=uscc.make("91330102MA2B0XK71"), region_code="330102",
                         name="上城区某电器厂")
    mine = await create(client, admin_token)
    h = bearer(await user_token(client, admin_token, username="xh.insp", region_code="330106", roles=["inspector"]))
    for path in (f"/api/v1/enterprises/{mine['id']}", "/api/v1/enterprises?limit=5"):
        got, head = await client.get(path, headers=h), await client.head(path, headers=h)
        assert (head.status_code, head.content) == (200, b""), path
        assert head.headers["content-length"] == str(len(got.content)) and got.content, path
        assert head.headers.get("etag") == got.headers.get("etag"), path
    assert (await client.head(f"/api/v1/enterprises/{mine['id']}", headers=h)).headers["etag"] == '"1"'
    assert (await client.head(f"/api/v1/enterprises/{other['id']}", headers=h)).status_code == 404
    assert (await client.head(f"/api/v1/enterprises/{mine['id']}")).status_code == 401
    r = await client.head("/api/v1/auth/token")  # a POST-only resource
    assert (r.status_code, r.headers["allow"], r.content) == (405, "POST", b"")


async def test_leaders_read_but_do_not_write_archives(client, admin_token):
    leader = await user_token(client, admin_token, username="xh.leader", region_code="330106", roles=["leader"])
    r = await client.post("/api/v1/enterprises", headers=bearer(leader), json=body())
    assert r.status_code == 403
    assert (await client.get("/api/v1/enterprises", headers=bearer(leader))).status_code == 200


async def test_filters_and_search(client, admin_token):
    cable = await create(client, admin_token)
    helmet = await create(client, admin_token, code=uscc.make("91330106MA2B0XK75"), name="西湖安全帽制造厂",
                          size="large", category_codes=["0102"])
    h = bearer(admin_token)

    async def ids(**params: Any) -> set[str]:
        r = await client.get("/api/v1/enterprises", headers=h, params=params)
        assert r.status_code == 200, r.text
        return {e["id"] for e in r.json()["items"]}

    assert await ids(category="05") == {cable["id"]}
    assert await ids(category="01") == {helmet["id"]}  # sub-product 0102 is under 01
    assert await ids(size="large") == {helmet["id"]}
    assert await ids(q="安全帽") == {helmet["id"]}
    assert await ids(q=cable["uscc"][:17]) == {cable["id"]}
    assert await ids(q=cable["uscc"][:10]) == {cable["id"], helmet["id"]}
    assert await ids(q="100%_") == set()
    assert await ids(q="帽制") == {helmet["id"]}  # two characters: the bigram index, not pg_trgm
    assert await ids(q="电缆") == {cable["id"]}
    assert await ids(q="%_") == set()
    # Latin letters match whatever their case (ILIKE); Chinese-only fragments use LIKE, to the same effect
    latin = await create(client, admin_token, code=uscc.make("91330106MA2B0XK76"), name="杭州HikSafe安防器材厂")
    assert await ids(q="hiksafe") == await ids(q="HIKSAFE安防") == await ids(q="安防器材") == {latin["id"]}
    assert await ids(q=cable["uscc"][:10].lower()) == {cable["id"], helmet["id"], latin["id"]}
    r = await client.get("/api/v1/enterprises", headers=h, params={"q": "帽"})
    assert r.status_code == 422
    assert await ids(licensed=False, key=True) == {cable["id"], helmet["id"], latin["id"]}
    assert await ids(key=False) == set()
    assert await ids(region="330100") == {cable["id"], helmet["id"], latin["id"]}


async def test_patch_needs_if_match_and_refuses_stale_versions(client, admin_token, connection):
    e = await create(client, admin_token)
    url, h = f"/api/v1/enterprises/{e['id']}", bearer(admin_token)
    assert (await client.patch(url, headers=h, json={"size": "large"})).status_code == 428
    ok = await client.patch(url, headers=h | {"If-Match": '"1"'}, json={"size": "large"})
    assert ok.status_code == 200 and ok.json()["version"] == 2 and ok.headers["etag"] == '"2"'
    stale = await client.patch(url, headers=h | {"If-Match": '"1"'}, json={"size": "small"})
    assert stale.status_code == 412 and stale.json()["current"]["size"] == "large"
    assert await count(connection, "size = 'large'") == 1
    for forbidden in ({"uscc": VALID}, {"region_code": "330102"}, {"licensed": True}, {"name": None}):
        r = await client.patch(url, headers=h | {"If-Match": '"2"'}, json=forbidden)
        assert r.status_code == 422, forbidden


async def test_a_missing_or_malformed_if_match_is_answered_after_the_path_and_the_body(client, admin_token,
                                                                                       connection):
    # FastAPI runs dependencies before it validates the path and the body: the If-Match dependency's 428
    # hid the 422 of a bad id or body, and the 405 of PATCH /inspections/batch; app.routing.AppRoute now
    # answers the header only once the request is otherwise valid
    e = await create(client, admin_token)
    url, h = f"/api/v1/enterprises/{e['id']}", bearer(admin_token)
    for headers in (h, h | {"If-Match": "v1"}):
        assert_problem(await client.patch("/api/v1/inspections/not-an-id", headers=headers, json={}),
                       422, "validation_error")
        assert_problem(await client.patch("/api/v1/inspections/batch", headers=headers, json={}),
                       405, "method_not_allowed")
        assert_problem(await client.patch(url, headers=headers, json={"size": "huge"}), 422, "validation_error")
        assert_problem(await client.post(f"/api/v1/cases/{uuid.uuid4()}/actions/no_such_action", headers=headers),
                       404, "not_found")
    assert_problem(await client.patch(url, headers=h, json={"size": "large"}), 428, "precondition_required")
    assert_problem(await client.patch(url, headers=h | {"If-Match": "v1"}, json={"size": "large"}),
                   412, "precondition_failed")
    assert_problem(await client.patch(f"/api/v1/enterprises/{uuid.uuid4()}", headers=h, json={"size": "large"}),
                   428, "precondition_required")  # the header is still answered before the record is read
    assert await count(connection, "size = 'large'") == 0


def _b64(bookmark: str) -> str:
    from app.pagination import encode_cursor

    return encode_cursor(bookmark)


def _cursor(place: Any, backwards: bool = False) -> str:
    from sqlakeyset import serialize_bookmark
    from sqlakeyset.types import Marker

    from app.pagination import encode_cursor

    return encode_cursor(serialize_bookmark(Marker(place, backwards)))


@pytest.mark.parametrize("cursor", [
    "not a cursor!", _cursor(("2026-11-01", "x")), _cursor((datetime(2026, 11, 1), uuid.uuid4())),  # naive time
    _cursor((datetime(2026, 11, 1, tzinfo=UTC), uuid.uuid4(), 3)), _cursor((datetime(2026, 11, 1, tzinfo=UTC),)),
    _cursor((datetime(2026, 11, 1, tzinfo=UTC), uuid.uuid4()), backwards=True), _cursor(None),
    _b64(">dt:2020\rX,uuid:1")])  # sqlakeyset reads bookmarks with csv: a stray CR is a csv.Error
async def test_a_cursor_this_list_did_not_issue_is_422(client, admin_token, cursor):
    r = await client.get("/api/v1/enterprises", headers=bearer(admin_token), params={"cursor": cursor})
    assert r.status_code == 422 and r.json()["code"] == "invalid_cursor", r.text


@pytest.mark.parametrize("path", ["/api/v1/enterprises", "/api/v1/inspections", "/api/v1/licenses", "/api/v1/cases"])
async def test_a_cursor_the_bookmark_reader_chokes_on_is_422_on_every_list(client, admin_token, path):
    r = await client.get(path, headers=bearer(admin_token), params={"cursor": _b64(">dt:2020\rX,uuid:1")})
    assert r.status_code == 422 and r.json()["code"] == "invalid_cursor", r.text


async def test_pages_follow_each_other_by_cursor(client, admin_token):
    made = [await create(client, admin_token, code=uscc.make(f"91330106MA2B0XP{i:02d}"), name=f"西湖第{i}厂")
            for i in range(5)]
    h = bearer(admin_token)

    async def page(cursor: str | None) -> dict[str, Any]:
        params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        out: dict[str, Any] = (await client.get("/api/v1/enterprises", headers=h, params=params)).json()
        return out

    first = await page(None)
    second = await page(first["next_cursor"])
    third = await page(second["next_cursor"])
    ids = [e["id"] for page in (first, second, third) for e in page["items"]]
    assert ids == [e["id"] for e in reversed(made)] and third["next_cursor"] is None
    # a well-formed cursor far in the past or the future is simply a place in the list
    past = _cursor((datetime(1, 1, 2, tzinfo=UTC), uuid.uuid4()))
    assert (await client.get("/api/v1/enterprises", headers=h, params={"cursor": past})).json()["items"] == []
    future = _cursor((datetime(9999, 12, 30, tzinfo=UTC), uuid.uuid4()))
    assert len((await client.get("/api/v1/enterprises", headers=h, params={"cursor": future})).json()["items"]) == 5


async def test_names_carry_finer_planner_statistics(connection):
    """Migration 0022: the name search's plan depends on how many names PostgreSQL expects a fragment to
    match, estimated from a sample of 1,000 names (with the default 100, a rare three-character fragment
    walked 54,000 enterprises of the large data set: 240 ms instead of 2-6 ms)."""
    target = (await connection.execute(text("SELECT attstattarget FROM pg_attribute"
                                             " WHERE attrelid = 'enterprise'::regclass AND attname = 'name'"))).scalar()
    assert target == 1000


# a cursor of the list: after 2026-01-01 00:00 UTC and the nil uuid
AFTER_NEW_YEAR = "PmR0OjIwMjYtMDEtMDFUMDA6MDA6MDArMDA6MDB-dXVpZDowMDAwMDAwMC0wMDAwLTAwMDAtMDAwMC0wMDAwMDAwMDAwMDA"


@pytest.mark.parametrize(("caller", "filters", "one_plan"), [
    ("000000", {}, True),  # national
    ("000000", {"region": "330106"}, True),
    ("330106", {"licensed": False, "size": "small"}, True),
    ("330106", {"cursor": AFTER_NEW_YEAR}, True),
    ("000000", {"region": "330100"}, False),  # a city: a prefix
    ("330100", {}, False),
    ("330106", {"q": "西湖电缆"}, False),
    ("330106", {"q": "电缆"}, False),
    ("330106", {"category": "05"}, False),
    ("330106", {"key": True}, False),
])
def test_the_list_keeps_one_plan_only_where_the_best_plan_does_not_depend_on_the_values(caller, filters, one_plan):
    """PostgreSQL reuses a prepared statement's plan when the LIMIT is written out; that plan must serve
    every value. For a rare name fragment a reused plan walked the whole table (6 req/s on the large set),
    so a name, a category, a prefix or `key` keep the LIMIT a parameter and are planned for their values."""
    scope = Scope(principal_id=uuid.uuid4(), principal_type="user", username="x", region_code=caller)
    sql, params = list_statement(scope=scope, query=EnterpriseListQuery(limit=20, **filters), facts=facts_parameters())
    page = sql.split(") p LEFT JOIN", 1)[0]  # the page, before the kept facts are joined
    assert page.endswith("LIMIT 21") is one_plan, page[-60:]
    if not one_plan:
        assert page.endswith(f"LIMIT ${params.values.index(21) + 1}")
