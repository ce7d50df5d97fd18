"""/api/v1/inspections over HTTP: who records, the rules of the five checks and samples, client-id
replays, the case an inspection opens, reads and lists inside the jurisdiction, and If-Match edits.

The builders here (enterprises, users, bodies) are shared with test_inspection_batch.py and
test_attachments.py."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from app.services import uscc
from tests.conftest import ADMIN_PASSWORD, assert_problem, bearer, login, user_token

PROBLEM_JSON = "application/problem+json"
URL = "/api/v1/inspections"
XIHU, SHANGCHENG, HANGZHOU, ZHEJIANG, NANJING = "330106", "330102", "330100", "330000", "320102"
CHECKS = ("licensed", "conditions_met", "standard_production", "no_safety_hazard", "no_fraud")
_serial = iter(range(1, 10_000_000))




def if_match(token: str, version: int | str) -> dict[str, str]:
    return {**bearer(token), "If-Match": f'"{version}"'}


async def create_enterprise(client: httpx.AsyncClient, admin: str, region_code: str, **kw: Any) -> dict[str, Any]:
    code = uscc.make(f"91{region_code}MA{next(_serial):07d}")
    r = await client.post("/api/v1/enterprises", headers=bearer(admin), json={
        "uscc": code, "name": f"测试电线电缆厂{code[-6:]}", "region_code": region_code, "size": "small", **kw})
    assert r.status_code == 201, r.text
    body: dict[str, Any] = r.json()
    return body


def checks(*failed: str) -> dict[str, Any]:
    return {name: {"ok": name not in failed, **({"note": "不符合"} if name in failed else {})} for name in CHECKS}


def sample(passed: bool = True, **kw: Any) -> dict[str, Any]:
    return {"product": "BV 2.5mm² 电线", "batch": "20261101", "standard": "GB/T 5023.3-2008",
            "lab": "浙江省质检院", "passed": passed, "failed_items": [] if passed else ["导体电阻"], **kw}


def body(enterprise_id: str, *failed: str, **kw: Any) -> dict[str, Any]:
    """A create body: a sweep, compliant unless checks are named as failed."""
    b: dict[str, Any] = {
        "id": str(uuid.uuid4()), "enterprise_id": enterprise_id, "kind": "sweep",
        "inspected_at": "2026-11-20T09:30:00+08:00", "officers": ["王芳", "李强"],
        "location": {"lat": 30.27, "lng": 120.13}, "checks": checks(*failed), "samples": [],
        "conclusion": "issues_found" if failed else "compliant", "notes": "现场检查"}
    b.update(kw)
    return b


@dataclass
class World:
    admin: str
    xihu: str  # inspector, Xihu county
    shangcheng: str  # inspector, Shangcheng county (a sibling)
    ent_xihu: dict[str, Any]
    ent_shangcheng: dict[str, Any]


async def make_world(client: httpx.AsyncClient, admin: str) -> World:
    """Two sibling counties, an inspector and an enterprise in each."""
    return World(
        admin=admin,
        xihu=await user_token(client, admin, username="xihu.insp", region_code=XIHU, roles=["inspector"]),
        shangcheng=await user_token(client, admin, username="sc.insp", region_code=SHANGCHENG, roles=["inspector"]),
        ent_xihu=await create_enterprise(client, admin, XIHU),
        ent_shangcheng=await create_enterprise(client, admin, SHANGCHENG),
    )


@pytest.fixture
async def world(client: httpx.AsyncClient, admin_token: str) -> World:
    return await make_world(client, admin_token)


async def count(conn: AsyncConnection, sql: str, **params: Any) -> int:
    return int((await conn.execute(text(sql), params)).scalar_one())


async def row(conn: AsyncConnection, table: str, id_: str) -> dict[str, Any] | None:
    got = (await conn.execute(text(f"SELECT * FROM {table} WHERE id = :id"), {"id": id_})).mappings().first()
    return dict(got) if got else None


# --- creating ------------------------------------------------------------------------------------


async def test_inspector_records_inspection_of_enterprise_in_its_county(client, world, connection):
    b = body(world.ent_xihu["id"], "standard_production", "no_safety_hazard")
    r = await client.post(URL, headers=bearer(world.xihu), json=b)
    assert r.status_code == 201, r.text
    got = r.json()
    assert got["id"] == b["id"] and got["enterprise_id"] == world.ent_xihu["id"]
    assert got["region_code"] == XIHU  # copied from the enterprise
    assert got["kind"] == "sweep" and got["conclusion"] == "issues_found" and got["version"] == 1
    assert got["checks"]["standard_production"] == {"ok": False, "note": "不符合"}
    assert got["officers"] == ["王芳", "李强"] and got["location"] == {"lat": 30.27, "lng": 120.13}
    assert got["case_id"] is None and "body_hash" not in got
    assert r.headers["etag"] == '"1"' and r.headers["location"] == f"{URL}/{b['id']}"
    assert "idempotent-replayed" not in r.headers

    stored = await row(connection, "inspection", b["id"])
    assert stored is not None and stored["region_code"] == XIHU and len(stored["body_hash"]) == 64
    assert await count(connection, "SELECT count(*) FROM audit_event WHERE action = 'inspection.create'"
                       " AND entity_id = :id AND region_code = :rc", id=b["id"], rc=XIHU) == 1


async def test_officer_records_inspections_too(client, world):
    officer = await user_token(client, world.admin, username="xihu.officer", region_code=XIHU, roles=["officer"])
    r = await client.post(URL, headers=bearer(officer), json=body(world.ent_xihu["id"]))
    assert r.status_code == 201, r.text


@pytest.mark.parametrize("roles", [["leader"], ["admin"]])
async def test_leaders_and_admins_without_inspector_role_cannot_record(client, world, connection, roles):
    token = await user_token(client, world.admin, username="xihu.other", region_code=XIHU, roles=roles)
    b = body(world.ent_xihu["id"])
    assert_problem(await client.post(URL, headers=bearer(token), json=b), 403, "forbidden")
    assert await row(connection, "inspection", b["id"]) is None


async def test_county_inspector_cannot_record_inspection_of_other_county_enterprise(client, world, connection):
    """API.md: an enterprise outside the jurisdiction does not exist for the caller (404, not 403)."""
    b = body(world.ent_shangcheng["id"])
    r = await client.post(URL, headers=bearer(world.xihu), json=b)
    assert_problem(r, 404, "enterprise_not_found")
    assert await row(connection, "inspection", b["id"]) is None
    # the same answer as for an enterprise that does not exist at all
    r = await client.post(URL, headers=bearer(world.xihu), json=body(str(uuid.uuid4())))
    assert_problem(r, 404, "enterprise_not_found")


async def test_county_inspector_sees_nothing_of_another_countys_enterprise(client, world):
    other = world.ent_shangcheng["id"]
    await created(client, world.shangcheng, body(other))
    r = await client.get(f"/api/v1/enterprises/{other}", headers=bearer(world.xihu))
    assert_problem(r, 404, "enterprise_not_found")
    listed = (await client.get("/api/v1/enterprises", headers=bearer(world.xihu))).json()["items"]
    assert other not in [e["id"] for e in listed]
    r = await client.get(URL, headers=bearer(world.xihu), params={"enterprise_id": other})
    assert r.status_code == 200 and r.json()["items"] == []


async def test_city_inspector_records_inspections_in_its_counties(client, world):
    city = await user_token(client, world.admin, username="hz.insp", region_code=HANGZHOU, roles=["inspector"])
    for ent in (world.ent_xihu, world.ent_shangcheng):
        r = await client.post(URL, headers=bearer(city), json=body(ent["id"]))
        assert r.status_code == 201, r.text
        assert r.json()["region_code"] == ent["region_code"]


@pytest.mark.parametrize(("change", "code"), [
    ({"officers": ["王芳"]}, "validation_error"),
    ({"officers": ["王芳", " 王芳 "]}, "validation_error"),  # two distinct officers
    ({"officers": ["王芳", ""]}, "validation_error"),
    ({"checks": {k: {"ok": True} for k in CHECKS if k != "no_fraud"}}, "validation_error"),  # all five
    ({"checks": {**checks(), "extra_check": {"ok": True}}}, "validation_error"),
    ({"kind": "inspection"}, "validation_error"),
    ({"inspected_at": "2026-11-20T09:30:00"}, "validation_error"),  # no offset
    ({"inspected_at": 1795000000}, "validation_error"),  # a number is not read as seconds since 1970
    ({"inspected_at": "1795000000"}, "validation_error"),
    ({"open_case": 0}, "validation_error"),  # JSON types as documented: not read as false
    ({"checks": {**checks(), "no_fraud": {"ok": "true"}}}, "validation_error"),
    ({"location": {"lat": "30.2", "lng": 120.1}}, "validation_error"),
    ({"location": {"lat": 91, "lng": 120}}, "validation_error"),
    ({"conclusion": "fine"}, "validation_error"),
    ({"case_id": str(uuid.uuid4())}, "validation_error"),  # not writable
    ({"region_code": "330106"}, "validation_error"),  # follows the enterprise
    ({"kind": "spot_check"}, "samples_required"),
    ({"samples": [sample()]}, "samples_not_allowed"),
    ({"kind": "spot_check", "samples": [sample(passed=True, failed_items=["标志"])]}, "sample_inconsistent"),
    ({"checks": checks("licensed")}, "conclusion_inconsistent"),
    ({"kind": "spot_check", "samples": [sample(), sample(passed=False)]}, "conclusion_inconsistent"),
    ({"inspected_at": "2099-01-01T00:00:00+08:00"}, "inspected_in_future"),
    ({"open_case": True}, "no_issues_for_case"),
    ({"case_kind": "counterfeit"}, "case_kind_without_case"),
])
async def test_invalid_inspection_is_422(client, world, connection, change, code):
    b = {**body(world.ent_xihu["id"]), **change}  # a compliant sweep, then the change
    r = await client.post(URL, headers=bearer(world.xihu), json=b)
    problem = assert_problem(r, 422, code)
    assert problem["errors"] and all(e["loc"][0] == "body" for e in problem["errors"])
    assert await row(connection, "inspection", b["id"]) is None


async def test_issues_found_with_every_check_passed_is_allowed(client, world):
    """Findings outside the five checks (e.g. records refused) may still be issues."""
    r = await client.post(URL, headers=bearer(world.xihu), json=body(world.ent_xihu["id"], conclusion="issues_found"))
    assert r.status_code == 201, r.text


async def test_spot_check_with_samples_is_recorded(client, world):
    b = body(world.ent_xihu["id"], kind="spot_check", samples=[sample(), sample(passed=False)],
             conclusion="issues_found")
    r = await client.post(URL, headers=bearer(world.xihu), json=b)
    assert r.status_code == 201, r.text
    assert [s["passed"] for s in r.json()["samples"]] == [True, False]
    assert r.json()["samples"][1]["failed_items"] == ["导体电阻"]


async def test_failed_licence_check_changes_nothing_on_the_enterprise(client, world, connection):
    before = await row(connection, "enterprise", world.ent_xihu["id"])
    r = await client.post(URL, headers=bearer(world.xihu), json=body(world.ent_xihu["id"], "licensed"))
    assert r.status_code == 201, r.text
    assert await row(connection, "enterprise", world.ent_xihu["id"]) == before


# --- client-made ids -----------------------------------------------------------------------------


async def test_same_id_and_body_replays_the_stored_inspection(client, world, connection):
    b = body(world.ent_xihu["id"], "no_fraud", open_case=True)
    first = await client.post(URL, headers=bearer(world.xihu), json=b)
    assert first.status_code == 201, first.text
    # the same body, keys reordered and the same instant written in UTC
    same = dict(reversed(list({**b, "inspected_at": "2026-11-20T01:30:00Z"}.items())))
    again = await client.post(URL, headers=bearer(world.xihu), json=same)
    assert again.status_code == 201, again.text
    assert again.headers["idempotent-replayed"] == "true"
    assert again.json() == first.json() and again.headers["etag"] == first.headers["etag"]
    assert await count(connection, "SELECT count(*) FROM inspection WHERE id = :id", id=b["id"]) == 1
    assert await count(connection, "SELECT count(*) FROM penalty_case WHERE inspection_id = :id", id=b["id"]) == 1
    assert await count(connection, "SELECT count(*) FROM audit_event WHERE entity_id = :id", id=b["id"]) == 1


async def test_same_id_with_another_body_is_409_id_conflict(client, world, connection):
    b = body(world.ent_xihu["id"])
    assert (await client.post(URL, headers=bearer(world.xihu), json=b)).status_code == 201
    r = await client.post(URL, headers=bearer(world.xihu), json={**b, "notes": "另一份记录"})
    assert_problem(r, 409, "id_conflict")
    stored = await row(connection, "inspection", b["id"])
    assert stored is not None and stored["notes"] == "现场检查"


async def test_an_id_taken_in_another_county_is_a_conflict_not_a_second_row(client, world, connection):
    b = body(world.ent_shangcheng["id"])
    assert (await client.post(URL, headers=bearer(world.shangcheng), json=b)).status_code == 201
    r = await client.post(URL, headers=bearer(world.xihu), json={**b, "enterprise_id": world.ent_xihu["id"]})
    assert_problem(r, 409, "id_conflict")
    # even the very same body does not replay another county's record to this caller
    assert_problem(await client.post(URL, headers=bearer(world.xihu), json=b), 409, "id_conflict")
    assert await count(connection, "SELECT count(*) FROM inspection WHERE id = :id", id=b["id"]) == 1


async def test_idempotency_key_replays_a_create_without_client_id(client, world, connection):
    b = body(world.ent_xihu["id"])
    del b["id"]
    headers = {**bearer(world.xihu), "Idempotency-Key": "phone-1-0001"}
    first = await client.post(URL, headers=headers, json=b)
    again = await client.post(URL, headers=headers, json=b)
    assert first.status_code == again.status_code == 201, again.text
    assert again.headers["idempotent-replayed"] == "true" and again.json()["id"] == first.json()["id"]
    assert await count(connection, "SELECT count(*) FROM inspection") == 1


async def test_concurrent_creates_with_one_client_id_store_one_inspection(live_client):
    """A phone that retries while its first request is still running: the second INSERT waits for
    the first to commit, hits the primary key, and is answered as a replay."""
    live_admin = str((await login(live_client, "admin", ADMIN_PASSWORD))["access_token"])
    inspector = await user_token(live_client, live_admin, username="live.insp", region_code=XIHU,
                                 roles=["inspector"])
    ent = await create_enterprise(live_client, live_admin, XIHU)
    b = body(ent["id"], "licensed", open_case=True)
    # open the pool's connections first, so the creates really overlap
    await asyncio.gather(*(live_client.get(URL, headers=bearer(inspector)) for _ in range(4)))
    answers = await asyncio.gather(*(live_client.post(URL, headers=bearer(inspector), json=b) for _ in range(4)))
    assert [a.status_code for a in answers] == [201] * 4, [a.text for a in answers]
    assert sum(a.headers.get("idempotent-replayed") == "true" for a in answers) == 3
    assert len({a.json()["case_id"] for a in answers}) == 1
    listed = await live_client.get(URL, headers=bearer(inspector))
    assert [i["id"] for i in listed.json()["items"]] == [b["id"]]


# --- open_case -----------------------------------------------------------------------------------


async def test_open_case_files_a_registered_case_linked_both_ways_with_its_audit_row(client, world, connection):
    b = body(world.ent_xihu["id"], "standard_production", "no_safety_hazard", open_case=True)
    r = await client.post(URL, headers=bearer(world.xihu), json=b)
    assert r.status_code == 201, r.text
    case_id = r.json()["case_id"]
    assert case_id is not None
    case = await row(connection, "penalty_case", case_id)
    assert case is not None
    assert case["status"] == "registered" and case["kind"] == "nonconforming_products"
    assert str(case["inspection_id"]) == b["id"] and str(case["enterprise_id"]) == world.ent_xihu["id"]
    assert case["region_code"] == XIHU and case["possibly_criminal"] is False
    stored = await row(connection, "inspection", b["id"])
    assert stored is not None and str(stored["case_id"]) == case_id
    audit = (await connection.execute(text(
        "SELECT actor_name, action, region_code, after FROM audit_event WHERE entity_type = 'penalty_case'"
        " AND entity_id = :id"), {"id": case_id})).mappings().all()
    assert len(audit) == 1
    assert audit[0]["action"] == "penalty_case.create" and audit[0]["actor_name"] == "xihu.insp"
    assert audit[0]["after"]["inspection_id"] == b["id"] and audit[0]["after"]["status"] == "registered"
    insp_audit = (await connection.execute(text(
        "SELECT after FROM audit_event WHERE entity_type = 'inspection' AND entity_id = :id"),
        {"id": b["id"]})).scalar_one()
    assert insp_audit["case_id"] == case_id


@pytest.mark.parametrize(("failed", "extra", "kind"), [
    (("licensed", "no_fraud"), {}, "unlicensed_production"),
    (("no_fraud", "conditions_met"), {}, "counterfeit"),
    (("conditions_met", "no_safety_hazard"), {}, "lowered_conditions"),
    (("no_safety_hazard",), {}, "nonconforming_products"),
    ((), {"kind": "spot_check", "samples": [sample(passed=False)], "conclusion": "issues_found"},
     "nonconforming_products"),
    (("standard_production",), {}, "irregular_production"),
    ((), {"conclusion": "issues_found"}, "other"),
    (("licensed",), {"case_kind": "other"}, "other"),  # an explicit kind wins
])
async def test_case_kind_is_derived_from_the_findings(client, world, connection, failed, extra, kind):
    b = body(world.ent_xihu["id"], *failed, open_case=True, **extra)
    r = await client.post(URL, headers=bearer(world.xihu), json=b)
    assert r.status_code == 201, r.text
    case = await row(connection, "penalty_case", r.json()["case_id"])
    assert case is not None and case["kind"] == kind


async def test_no_case_without_open_case(client, world, connection):
    r = await client.post(URL, headers=bearer(world.xihu), json=body(world.ent_xihu["id"], "licensed"))
    assert r.status_code == 201 and r.json()["case_id"] is None
    assert await count(connection, "SELECT count(*) FROM penalty_case") == 0


# --- reading and listing -------------------------------------------------------------------------


async def test_read_one_with_etag_and_not_from_another_county(client, world):
    b = body(world.ent_xihu["id"])
    await client.post(URL, headers=bearer(world.xihu), json=b)
    r = await client.get(f"{URL}/{b['id']}", headers=bearer(world.xihu))
    assert r.status_code == 200 and r.json()["id"] == b["id"] and r.headers["etag"] == '"1"'
    assert_problem(await client.get(f"{URL}/{b['id']}", headers=bearer(world.shangcheng)), 404, "inspection_not_found")
    assert_problem(await client.get(f"{URL}/{uuid.uuid4()}", headers=bearer(world.xihu)), 404, "inspection_not_found")
    province = await user_token(client, world.admin, username="zj.leader", region_code=ZHEJIANG, roles=["leader"])
    assert (await client.get(f"{URL}/{b['id']}", headers=bearer(province))).status_code == 200
    jiangsu = await user_token(client, world.admin, username="js.leader", region_code="320000", roles=["leader"])
    assert_problem(await client.get(f"{URL}/{b['id']}", headers=bearer(jiangsu)), 404, "inspection_not_found")


async def test_list_is_newest_first_and_only_inside_the_jurisdiction(client, world):
    ids = {}
    for day, (token, ent) in enumerate([(world.xihu, world.ent_xihu), (world.shangcheng, world.ent_shangcheng),
                                        (world.xihu, world.ent_xihu)], start=10):
        b = body(ent["id"], inspected_at=f"2026-11-{day}T09:00:00+08:00")
        assert (await client.post(URL, headers=bearer(token), json=b)).status_code == 201
        ids[day] = b["id"]
    mine = (await client.get(URL, headers=bearer(world.xihu))).json()
    assert [i["id"] for i in mine["items"]] == [ids[12], ids[10]] and mine["next_cursor"] is None
    theirs = (await client.get(URL, headers=bearer(world.shangcheng))).json()
    assert [i["id"] for i in theirs["items"]] == [ids[11]]
    everything = (await client.get(URL, headers=bearer(world.admin))).json()
    assert [i["id"] for i in everything["items"]] == [ids[12], ids[11], ids[10]]
    # pages follow the same order
    first = (await client.get(URL, headers=bearer(world.admin), params={"limit": 2})).json()
    second = (await client.get(URL, headers=bearer(world.admin),
                               params={"limit": 2, "cursor": first["next_cursor"]})).json()
    assert [i["id"] for i in first["items"] + second["items"]] == [ids[12], ids[11], ids[10]]
    assert second["next_cursor"] is None


async def test_list_filters(client, world):
    e2 = await create_enterprise(client, world.admin, XIHU)
    made = {}
    for name, ent, extra in [
        ("a", world.ent_xihu, {"inspected_at": "2026-11-01T10:00:00+08:00"}),
        ("b", e2, {"inspected_at": "2026-11-05T10:00:00+08:00", "kind": "routine"}),
        ("c", world.ent_xihu, {"inspected_at": "2026-11-09T10:00:00+08:00", "kind": "spot_check",
                               "samples": [sample(passed=False)], "conclusion": "issues_found"}),
    ]:
        b = body(ent["id"], **extra)
        assert (await client.post(URL, headers=bearer(world.xihu), json=b)).status_code == 201
        made[b["id"]] = name

    async def names(**params: Any) -> list[str]:
        r = await client.get(URL, headers=bearer(world.xihu), params=params)
        assert r.status_code == 200, r.text
        return [made[i["id"]] for i in r.json()["items"]]

    assert await names(enterprise_id=world.ent_xihu["id"]) == ["c", "a"]
    assert await names(kind="routine") == ["b"]
    assert await names(conclusion="issues_found") == ["c"]
    assert await names(conclusion="compliant", enterprise_id=world.ent_xihu["id"]) == ["a"]
    assert await names(**{"from": "2026-11-05T10:00:00+08:00"}) == ["c", "b"]  # from is inclusive
    assert await names(**{"to": "2026-11-05T10:00:00+08:00"}) == ["a"]  # to is exclusive
    assert await names(**{"from": "2026-11-02T00:00:00+08:00", "to": "2026-11-06T00:00:00+08:00"}) == ["b"]
    assert await names(region=XIHU) == ["c", "b", "a"]
    assert await names(enterprise_id=world.ent_shangcheng["id"]) == []


@pytest.mark.parametrize("params", [
    {"region": SHANGCHENG}, {"region": HANGZHOU}, {"region": ZHEJIANG}, {"region": "000000"},
])
async def test_region_filter_outside_the_jurisdiction_is_403(client, world, params):
    assert_problem(await client.get(URL, headers=bearer(world.xihu), params=params), 403, "not_in_jurisdiction")


@pytest.mark.parametrize(("params", "code"), [
    ({"from": "2026-11-05T10:00:00"}, "validation_error"),  # no offset
    ({"from": "2026-11-05T10:00:00+08:00", "to": "2026-11-01T00:00:00+08:00"}, "invalid_period"),
    ({"region": "33"}, "validation_error"),
    ({"kind": "visit"}, "validation_error"),
    ({"limit": 500}, "validation_error"),
])
async def test_bad_list_parameters_are_422(client, world, params, code):
    assert_problem(await client.get(URL, headers=bearer(world.xihu), params=params), 422, code)


# --- changing ------------------------------------------------------------------------------------


async def created(client: httpx.AsyncClient, token: str, b: dict[str, Any]) -> dict[str, Any]:
    r = await client.post(URL, headers=bearer(token), json=b)
    assert r.status_code == 201, r.text
    got: dict[str, Any] = r.json()
    return got


async def test_patch_with_if_match_changes_and_audits_before_and_after(client, world, connection):
    ins = await created(client, world.xihu, body(world.ent_xihu["id"]))
    r = await client.patch(f"{URL}/{ins['id']}", headers=if_match(world.xihu, 1),
                           json={"notes": "企业已签字确认", "officers": ["王芳", "李强", "赵敏"]})
    assert r.status_code == 200, r.text
    assert r.json()["notes"] == "企业已签字确认" and r.json()["version"] == 2 and r.headers["etag"] == '"2"'
    assert r.json()["officers"] == ["王芳", "李强", "赵敏"]
    audit = (await connection.execute(text(
        "SELECT before, after FROM audit_event WHERE action = 'inspection.update' AND entity_id = :id"),
        {"id": ins["id"]})).mappings().one()
    assert audit["before"]["notes"] == "现场检查" and audit["before"]["version"] == 1
    assert audit["after"]["notes"] == "企业已签字确认" and audit["after"]["version"] == 2


async def test_patch_without_if_match_is_428(client, world):
    ins = await created(client, world.xihu, body(world.ent_xihu["id"]))
    r = await client.patch(f"{URL}/{ins['id']}", headers=bearer(world.xihu), json={"notes": "x"})
    assert_problem(r, 428, "precondition_required")


async def test_stale_edit_is_412_showing_the_servers_copy_and_the_clients_changes(client, world, connection):
    ins = await created(client, world.xihu, body(world.ent_xihu["id"]))
    # another phone edits first
    r = await client.patch(f"{URL}/{ins['id']}", headers=if_match(world.xihu, 1), json={"notes": "手机A的修改"})
    assert r.status_code == 200
    # this phone started from version 1 too
    mine = {"notes": "手机B的修改", "checks": checks("no_safety_hazard"), "conclusion": "issues_found"}
    r = await client.patch(f"{URL}/{ins['id']}", headers=if_match(world.xihu, 1), json=mine)
    problem = assert_problem(r, 412, "precondition_failed")
    assert problem["current_version"] == 2
    assert problem["current"]["notes"] == "手机A的修改" and problem["current"]["version"] == 2
    assert problem["current"]["id"] == ins["id"] and problem["current"]["conclusion"] == "compliant"
    assert problem["yours"] == mine
    stored = await row(connection, "inspection", ins["id"])
    assert stored is not None and stored["notes"] == "手机A的修改" and stored["version"] == 2  # nothing overwritten
    # merging onto the current version goes through
    r = await client.patch(f"{URL}/{ins['id']}", headers=if_match(world.xihu, 2), json=mine)
    assert r.status_code == 200 and r.json()["version"] == 3


async def test_county_inspector_cannot_update_other_county_inspection(client, world, connection):
    ins = await created(client, world.shangcheng, body(world.ent_shangcheng["id"]))
    r = await client.patch(f"{URL}/{ins['id']}", headers=if_match(world.xihu, 1), json={"notes": "越权"})
    assert_problem(r, 404, "inspection_not_found")
    stored = await row(connection, "inspection", ins["id"])
    assert stored is not None and stored["version"] == 1 and stored["notes"] == "现场检查"


async def test_leader_cannot_update(client, world):
    ins = await created(client, world.xihu, body(world.ent_xihu["id"]))
    leader = await user_token(client, world.admin, username="xihu.leader", region_code=XIHU, roles=["leader"])
    r = await client.patch(f"{URL}/{ins['id']}", headers=if_match(leader, 1), json={"notes": "x"})
    assert_problem(r, 403, "forbidden")


@pytest.mark.parametrize(("change", "status", "code"), [
    ({"checks": checks("licensed")}, 422, "conclusion_inconsistent"),  # still "compliant"
    ({"kind": "spot_check"}, 422, "samples_required"),
    ({"notes": None}, 422, "validation_error"),
    ({"enterprise_id": str(uuid.uuid4())}, 422, "validation_error"),
    ({"officers": ["王芳"]}, 422, "validation_error"),
])
async def test_patch_keeps_the_rules(client, world, connection, change, status, code):
    ins = await created(client, world.xihu, body(world.ent_xihu["id"]))
    r = await client.patch(f"{URL}/{ins['id']}", headers=if_match(world.xihu, 1), json=change)
    assert_problem(r, status, code)
    stored = await row(connection, "inspection", ins["id"])
    assert stored is not None and stored["version"] == 1


async def test_inspection_that_opened_a_case_keeps_issues_found(client, world):
    ins = await created(client, world.xihu, body(world.ent_xihu["id"], "no_fraud", open_case=True))
    r = await client.patch(f"{URL}/{ins['id']}", headers=if_match(world.xihu, 1),
                           json={"checks": checks(), "conclusion": "compliant"})
    assert_problem(r, 409, "case_opened")


async def test_a_replay_after_an_edit_answers_the_edited_inspection(client, world):
    """body_hash is the create body's: a device retrying its original create still replays."""
    b = body(world.ent_xihu["id"])
    await created(client, world.xihu, b)
    await client.patch(f"{URL}/{b['id']}", headers=if_match(world.xihu, 1), json={"notes": "改"})
    r = await client.post(URL, headers=bearer(world.xihu), json=b)
    assert r.status_code == 201 and r.headers["idempotent-replayed"] == "true"
    assert r.json()["notes"] == "改" and r.json()["version"] == 2


async def test_openapi_documents_every_inspection_operation(client):
    spec = (await client.get("/openapi.json")).json()
    ops = {(m.upper(), p): op for p, item in spec["paths"].items() if p.startswith(URL) for m, op in item.items()}
    assert set(ops) == {("POST", URL), ("GET", URL), ("POST", f"{URL}/batch"), ("GET", f"{URL}/{{inspection_id}}"),
                        ("PATCH", f"{URL}/{{inspection_id}}"), ("POST", f"{URL}/{{inspection_id}}/attachments"),
                        ("GET", f"{URL}/{{inspection_id}}/attachments"),
                        ("GET", f"{URL}/{{inspection_id}}/attachments/{{attachment_id}}")}
    for op in ops.values():
        assert op["summary"] and len(op["description"]) > 40 and "401" in op["responses"]
    assert "multipart/form-data" in ops[("POST", f"{URL}/{{inspection_id}}/attachments")]["requestBody"]["content"]
    batch_schema = spec["components"]["schemas"]["InspectionBatch"]["properties"]["items"]
    assert batch_schema["items"] == {"$ref": "#/components/schemas/InspectionCreate"}
