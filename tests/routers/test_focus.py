"""Focus lists: the four key-enterprise criteria computed from the records with their reasons, manual
flags, `?key=` matching the flags, and key-region figures per region with designations."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import text

from app.models.case import CaseKind
from app.models.enterprise import EnterprisePublic
from app.pagination import Page
from app.services.focus import two_years_before
from tests.conftest import bearer, user_token
from tests.routers.archive_data import (
    create_enterprise,
    create_license,
    days_ago,
    insert_case,
    insert_inspection,
    sample,
    today,
)
from tests.routers.test_archive import count_queries


def local(days: int) -> str:
    return days_ago(days).date().isoformat()


async def flags(client, token: str, enterprise_id: str) -> list[tuple[str, str, str]]:
    """The enterprise's flags as GET /enterprises/{id} computes them from the records, after checking
    that the list, which reads the facts the database keeps (migration 0020), shows the same, and that
    ``?key=`` (which filters on those kept facts) finds it exactly when it has a flag."""
    r = await client.get(f"/api/v1/enterprises/{enterprise_id}", headers=bearer(token))
    assert r.status_code == 200, r.text
    listed = await client.get("/api/v1/enterprises", headers=bearer(token), params={"limit": 200})
    assert listed.status_code == 200, listed.text
    assert [i["key_flags"] for i in listed.json()["items"] if i["id"] == enterprise_id] == [r.json()["key_flags"]]
    for key in (True, False):
        found = await client.get("/api/v1/enterprises", headers=bearer(token), params={"limit": 200, "key": key})
        assert found.status_code == 200, found.text
        assert (enterprise_id in {i["id"] for i in found.json()["items"]}) == (bool(r.json()["key_flags"]) is key)
    return [(f["criterion"], f["reason"], f["source"]) for f in r.json()["key_flags"]]


async def licensed_enterprise(client, token: str, region_code: str = "330106", **kw: Any) -> dict[str, Any]:
    e = await create_enterprise(client, token, region_code=region_code, **kw)
    await create_license(client, token, e)
    return e


async def test_unlicensed_flag_follows_the_licences(client, admin_token):
    e = await create_enterprise(client, admin_token)
    assert await flags(client, admin_token, e["id"]) == [("unlicensed", "no valid production licence", "auto")]
    await create_license(client, admin_token, e)
    assert await flags(client, admin_token, e["id"]) == []


async def test_lowered_conditions_flag_comes_from_the_latest_inspection(client, admin_token, sessionmaker):
    e = await licensed_enterprise(client, admin_token)
    await insert_inspection(sessionmaker, e, kind="sweep", at=days_ago(30), failed=("conditions_met",))
    await insert_inspection(sessionmaker, e, kind="routine", at=days_ago(10))
    assert await flags(client, admin_token, e["id"]) == []  # an older finding, since put right
    await insert_inspection(sessionmaker, e, kind="routine", at=days_ago(2), failed=("conditions_met",),
                            notes={"conditions_met": "关键检测设备已变卖"})
    assert await flags(client, admin_token, e["id"]) == [(
        "lowered_conditions",
        f"licensing conditions not met at the latest inspection (routine on {local(2)}): 关键检测设备已变卖", "auto")]


async def test_spot_check_problems_count_failed_samples_of_the_last_two_years(client, admin_token, sessionmaker):
    e = await licensed_enterprise(client, admin_token)
    await insert_inspection(sessionmaker, e, kind="spot_check", at=days_ago(20), samples=[sample(False), sample(False)])
    await insert_inspection(sessionmaker, e, kind="spot_check", at=days_ago(400), samples=[sample(True), sample(False)])
    await insert_inspection(sessionmaker, e, kind="spot_check", at=days_ago(5), samples=[sample(True)])
    await insert_inspection(sessionmaker, e, kind="spot_check", at=days_ago(800), samples=[sample(False)])  # too old
    since = two_years_before(today()).isoformat()
    assert await flags(client, admin_token, e["id"]) == [
        ("spot_check_problems", f"3 failed spot-check samples in 2 spot checks since {since}", "auto")]


async def test_past_violations_from_cases_and_complaints(client, admin_token, sessionmaker):
    e = await licensed_enterprise(client, admin_token)
    await insert_inspection(sessionmaker, e, kind="complaint", at=days_ago(50))  # nothing found
    assert await flags(client, admin_token, e["id"]) == []
    await insert_inspection(sessionmaker, e, kind="complaint", at=days_ago(40), failed=("no_fraud",))
    await insert_inspection(sessionmaker, e, kind="complaint", at=days_ago(9), failed=("standard_production",))
    assert await flags(client, admin_token, e["id"]) == [
        ("past_violations", f"2 complaints with issues found (latest {local(9)})", "auto")]
    await insert_case(sessionmaker, e, kind=CaseKind.counterfeit, at=days_ago(7))
    assert await flags(client, admin_token, e["id"]) == [
        ("past_violations", f"1 penalty case (latest {local(7)}); 2 complaints with issues found (latest {local(9)})",
         "auto")]


async def test_manual_flags_are_set_and_cleared_with_audit(client, admin_token, connection):
    e = await licensed_enterprise(client, admin_token)
    officer = await user_token(client, admin_token, username="xh.officer", region_code="330106", roles=["officer"])
    url = f"/api/v1/enterprises/{e['id']}/key-flags"
    body = {"criterion": "past_violations", "reason": "媒体曝光：2026-10 省电视台报道电缆截面不足"}
    r = await client.post(url, headers=bearer(officer), json=body)
    assert r.status_code == 201, r.text
    assert r.json() | {"set_at": None} == {"enterprise_id": e["id"], "criterion": "past_violations",
                                           "reason": body["reason"], "source": "manual",
                                           "set_by": r.json()["set_by"], "set_at": None}
    assert await flags(client, officer, e["id"]) == [("past_violations", body["reason"], "manual")]
    again = await client.post(url, headers=bearer(officer), json=body)
    assert again.status_code == 201 and again.json() == r.json()
    other = await client.post(url, headers=bearer(officer), json=body | {"reason": "another reason"})
    assert other.status_code == 409 and other.json()["code"] == "key_flag_exists"

    assert (await client.delete(f"{url}/past_violations", headers=bearer(officer))).status_code == 204
    assert await flags(client, officer, e["id"]) == []
    gone = await client.delete(f"{url}/past_violations", headers=bearer(officer))
    assert gone.status_code == 404 and gone.json()["code"] == "key_flag_not_found"
    audits = (await connection.execute(text(
        "SELECT action, actor_name, before, after FROM audit_event WHERE entity_id = :id AND action LIKE 'key_flag.%'"
        " ORDER BY id"), {"id": e["id"]})).all()
    assert [(a, n) for a, n, _, _ in audits] == [("key_flag.set", "xh.officer"), ("key_flag.clear", "xh.officer")]
    assert audits[0][3]["reason"] == body["reason"] and audits[1][2]["reason"] == body["reason"]


async def test_manual_flags_respect_jurisdiction_and_roles(client, admin_token):
    theirs = await create_enterprise(client, admin_token, region_code="330102")
    mine = await create_enterprise(client, admin_token, region_code="330106")
    county = await user_token(client, admin_token, username="xh.insp", region_code="330106", roles=["inspector"])
    leader = await user_token(client, admin_token, username="xh.lead", region_code="330106", roles=["leader"])
    body = {"criterion": "lowered_conditions", "reason": "举报称已停用检测设备"}
    r = await client.post(f"/api/v1/enterprises/{theirs['id']}/key-flags", headers=bearer(county), json=body)
    assert r.status_code == 404
    r = await client.delete(f"/api/v1/enterprises/{theirs['id']}/key-flags/unlicensed", headers=bearer(county))
    assert r.status_code == 404
    assert (await client.post(f"/api/v1/enterprises/{mine['id']}/key-flags", headers=bearer(leader),
                              json=body)).status_code == 403
    bad = await client.post(f"/api/v1/enterprises/{mine['id']}/key-flags", headers=bearer(county),
                            json={"criterion": "famous", "reason": "x" * 10})
    assert bad.status_code == 422


async def test_key_filter_matches_the_flags(client, admin_token, sessionmaker):
    clean = await licensed_enterprise(client, admin_token)
    await insert_inspection(sessionmaker, clean, kind="sweep", at=days_ago(3))
    await insert_inspection(sessionmaker, clean, kind="spot_check", at=days_ago(900), samples=[sample(False)])
    unlicensed = await create_enterprise(client, admin_token)
    lowered = await licensed_enterprise(client, admin_token)
    await insert_inspection(sessionmaker, lowered, kind="sweep", failed=("conditions_met",))
    spot = await licensed_enterprise(client, admin_token)
    await insert_inspection(sessionmaker, spot, kind="spot_check", samples=[sample(False)])
    cased = await licensed_enterprise(client, admin_token)
    await insert_case(sessionmaker, cased)
    complained = await licensed_enterprise(client, admin_token)
    await insert_inspection(sessionmaker, complained, kind="complaint", failed=("no_fraud",))
    manual = await licensed_enterprise(client, admin_token)
    r = await client.post(f"/api/v1/enterprises/{manual['id']}/key-flags", headers=bearer(admin_token),
                          json={"criterion": "spot_check_problems", "reason": "国家抽查通报（外省抽样）"})
    assert r.status_code == 201

    async def listed(**params: Any) -> dict[str, list[str]]:
        r = await client.get("/api/v1/enterprises", headers=bearer(admin_token), params=params)
        assert r.status_code == 200, r.text
        return {x["id"]: [f["criterion"] for f in x["key_flags"]] for x in r.json()["items"]}

    key = await listed(key="true")
    assert set(key) == {x["id"] for x in (unlicensed, lowered, spot, cased, complained, manual)}
    assert all(key.values())
    assert await listed(key="false") == {clean["id"]: []}
    everyone = await listed()
    assert {i for i, f in everyone.items() if f} == set(key)
    assert key[lowered["id"]] == ["lowered_conditions"] and key[spot["id"]] == ["spot_check_problems"]
    assert key[cased["id"]] == key[complained["id"]] == ["past_violations"]
    # the list is built by its own statement (enterprise.list_page): each item is exactly what
    # GET /enterprises/{id} answers, page after page
    seen, cursor = [], None
    while True:
        r = await client.get("/api/v1/enterprises", headers=bearer(admin_token),
                             params={"limit": 3, **({"cursor": cursor} if cursor else {})})
        assert r.status_code == 200, r.text
        # written without the model, yet the very bytes the model writes
        assert Page[EnterprisePublic].model_validate_json(r.content).model_dump_json().encode() == r.content
        for item in r.json()["items"]:
            one = await client.get(f"/api/v1/enterprises/{item['id']}", headers=bearer(admin_token))
            assert item == one.json()
            seen.append(item["id"])
        cursor = r.json()["next_cursor"]
        if cursor is None:
            break
    assert sorted(seen) == sorted(everyone) and len(seen) == 7


async def test_kept_facts_follow_an_expired_licence_and_a_case_moved_out_of_the_county(
        client, admin_token, sessionmaker, connection):
    e = await licensed_enterprise(client, admin_token)
    county = await user_token(client, admin_token, username="xh.kept", region_code="330106", roles=["inspector"])
    assert await flags(client, county, e["id"]) == []
    # the licence runs out: unlicensed from that day, before the expiry job marks it
    await connection.execute(text("UPDATE license SET expires_on = CURRENT_DATE - 1 WHERE enterprise_id = :e"),
                             {"e": e["id"]})
    assert await flags(client, county, e["id"]) == [("unlicensed", "no valid production licence", "auto")]
    await connection.execute(text("UPDATE license SET expires_on = CURRENT_DATE + 400 WHERE enterprise_id = :e"),
                             {"e": e["id"]})
    case_id = await insert_case(sessionmaker, e, at=days_ago(6))
    past = [("past_violations", f"1 penalty case (latest {local(6)})", "auto")]
    assert await flags(client, county, e["id"]) == past
    # the case goes to another county's bureau: the enterprise's own county no longer sees it, the
    # province does; the kept facts cannot serve both, so the list computes them per caller
    await connection.execute(text("UPDATE penalty_case SET region_code = '330102' WHERE id = :c"), {"c": case_id})
    kept = (await connection.execute(text("SELECT uniform, cases FROM enterprise_key_facts WHERE enterprise_id = :e"),
                                     {"e": e["id"]})).one()
    assert tuple(kept) == (False, 1)
    assert await flags(client, county, e["id"]) == []
    assert await flags(client, admin_token, e["id"]) == past


async def test_kept_facts_are_made_for_every_enterprise_and_equal_a_rebuild(client, admin_token, sessionmaker,
                                                                           connection):
    for _ in range(3):
        e = await licensed_enterprise(client, admin_token)
        await insert_inspection(sessionmaker, e, kind="spot_check", samples=[sample(False), sample(True)])
    await create_enterprise(client, admin_token)
    kept_sql = text("SELECT * FROM enterprise_key_facts ORDER BY enterprise_id")
    kept = [tuple(r) for r in await connection.execute(kept_sql)]
    assert len(kept) == (await connection.execute(text("SELECT count(*) FROM enterprise"))).scalar() == 4
    samples = (await connection.execute(text("SELECT check_samples FROM enterprise_key_facts"))).scalars()
    assert sorted(samples) == [[], [1], [1], [1]]  # each failed spot check, with its failed samples
    await connection.execute(text("SELECT pqs_rebuild_key_facts()"))
    assert [tuple(r) for r in await connection.execute(kept_sql)] == kept


async def test_flags_take_a_fixed_number_of_queries_per_page(client, admin_token, sessionmaker, connection):
    for i in range(6):
        e = await create_enterprise(client, admin_token)
        await insert_inspection(sessionmaker, e, kind="spot_check", samples=[sample(i % 2 == 0)])
    await client.get("/api/v1/enterprises", headers=bearer(admin_token))  # asyncpg looks up new types once
    async with count_queries(connection) as one:
        await client.get("/api/v1/enterprises", headers=bearer(admin_token), params={"limit": 1})
    async with count_queries(connection) as six:
        r = await client.get("/api/v1/enterprises", headers=bearer(admin_token), params={"limit": 6})
    assert len(r.json()["items"]) == 6
    assert len(six) == len(one) and any("enterprise_key_facts" in s for s in six), six


# --- key regions ------------------------------------------------------------------------------

# (region, licensed, spot checks [(days ago, [sample passed...])], cases [(kind, days ago)])
WORLD: list[tuple[str, bool, list[tuple[int, list[bool]]], list[tuple[CaseKind, int]]]] = [
    ("330106", True, [(10, [True, False, True]), (1100, [False])], []),
    ("330106", False, [(12, [False, False])], [(CaseKind.counterfeit, 5)]),
    ("330106", True, [(30, [True])], []),
    ("330102", False, [], [(CaseKind.counterfeit, 1200)]),
    ("330205", True, [(3, [True, True])], []),
    ("330205", False, [], [(CaseKind.counterfeit, 8), (CaseKind.nonconforming_products, 8)]),
    ("320102", False, [(4, [False])], [(CaseKind.counterfeit, 4)]),  # another province
]


def expected(inside: str) -> dict[str, Any]:
    """The figures counted here, from WORLD, for the region codes starting with ``inside``."""
    rows = [w for w in WORLD if w[0].startswith(inside)]
    samples = [s for _, lic, checks, _ in rows if lic for days, ss in checks if days < 730 for s in ss]
    cases = [1 for *_, cs in rows for kind, days in cs if kind is CaseKind.counterfeit and days < 730]
    producers, unlicensed = len(rows), sum(1 for w in rows if not w[1])
    return {"unlicensed_production": (unlicensed, producers), "low_pass_rate": (sum(samples), len(samples)),
            "counterfeiting": (len(cases), None)}


def figures(entry: dict[str, Any]) -> dict[str, Any]:
    return {i["criterion"]: (i["numerator"], i["denominator"]) for i in entry["indicators"]}


@pytest.fixture
async def world(client, admin_token, sessionmaker) -> None:
    for region, lic, checks, cases in WORLD:
        e = await create_enterprise(client, admin_token, region_code=region)
        if lic:
            await create_license(client, admin_token, e)
        for days, passed in checks:
            await insert_inspection(sessionmaker, e, kind="spot_check", at=days_ago(days),
                                    samples=[sample(p) for p in passed])
        for kind, days in cases:
            await insert_case(sessionmaker, e, kind=kind, at=days_ago(days))


async def test_key_region_figures_per_child_region(client, admin_token, world):
    province = await user_token(client, admin_token, username="zj.leader", region_code="330000", roles=["leader"])
    r = await client.get("/api/v1/key-regions", headers=bearer(province))
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["region_code"], body["name"], body["level"]) == ("330000", "浙江省", "provincial")
    assert body["since"] == two_years_before(today()).isoformat()
    assert figures(body) == expected("33")
    children = {c["region_code"]: c for c in body["children"]}
    assert len(children) == 11 and children["330100"]["name"] == "杭州市"
    for code in children:
        assert figures(children[code]) == expected(code[:4]), code
    hz = next(i for i in children["330100"]["indicators"] if i["criterion"] == "low_pass_rate")
    assert hz["numerator"] == 3 and hz["denominator"] == 4 and hz["figure"] == 0.75
    empty = next(i for i in children["330300"]["indicators"] if i["criterion"] == "unlicensed_production")
    assert empty == {"criterion": "unlicensed_production", "name": empty["name"], "figure": None,
                     "numerator": 0, "denominator": 0}

    city = (await client.get("/api/v1/key-regions", headers=bearer(province), params={"region": "330100"})).json()
    counties = {c["region_code"]: c for c in city["children"]}
    assert figures(counties["330106"]) == expected("330106") and figures(counties["330102"]) == expected("330102")
    assert figures(city) == expected("3301")

    national = (await client.get("/api/v1/key-regions", headers=bearer(admin_token))).json()
    provinces = {c["region_code"]: c for c in national["children"]}
    assert figures(provinces["330000"]) == expected("33") and figures(provinces["320000"]) == expected("32")
    assert figures(national) == expected("")


async def test_since_moves_the_window(client, admin_token, world):
    r = await client.get("/api/v1/key-regions", headers=bearer(admin_token),
                         params={"region": "330000", "since": local(9)})
    f = figures(r.json())
    assert f["low_pass_rate"] == (2, 2) and f["counterfeiting"] == (2, None)


async def test_province_administered_counties_and_municipal_districts_are_children(client, admin_token):
    await create_enterprise(client, admin_token, region_code="429004")  # 仙桃市, directly under Hubei
    await create_enterprise(client, admin_token, region_code="110101")  # 东城区, directly under Beijing
    hubei = (await client.get("/api/v1/key-regions", headers=bearer(admin_token), params={"region": "420000"})).json()
    child = next(c for c in hubei["children"] if c["region_code"] == "429004")
    assert figures(child)["unlicensed_production"] == (1, 1)
    beijing = (await client.get("/api/v1/key-regions", headers=bearer(admin_token), params={"region": "110000"})).json()
    child = next(c for c in beijing["children"] if c["region_code"] == "110101")
    assert figures(child)["unlicensed_production"] == (1, 1)


async def test_key_regions_outside_the_jurisdiction_are_403(client, admin_token):
    county = await user_token(client, admin_token, username="xh.lead", region_code="330106", roles=["leader"])
    r = await client.get("/api/v1/key-regions", headers=bearer(county), params={"region": "330102"})
    assert r.status_code == 403 and r.json()["code"] == "not_in_jurisdiction"
    own = (await client.get("/api/v1/key-regions", headers=bearer(county))).json()
    assert own["region_code"] == "330106" and own["children"] == []


async def test_designations_national_and_provincial_are_both_kept(client, admin_token, connection, world):
    province = await user_token(client, admin_token, username="zj.leader", region_code="330000", roles=["leader"])
    body = {"region_code": "330106", "criteria": ["counterfeiting", "unlicensed_production", "counterfeiting"],
            "reason": "西湖区电线电缆无证生产集中"}
    r = await client.post("/api/v1/key-regions", headers=bearer(province), json=body)
    assert r.status_code == 201, r.text
    k = r.json()
    assert (k["region_code"], k["criteria"], k["designated_by"], k["designated_by_level"]) == (
        "330106", ["unlicensed_production", "counterfeiting"], "330000", "provincial")
    assert figures(k) == expected("330106")  # the figures it was designated on
    again = await client.post("/api/v1/key-regions", headers=bearer(province), json=body)
    assert again.status_code == 409 and again.json()["code"] == "already_designated"
    national = await client.post("/api/v1/key-regions", headers=bearer(admin_token),
                                 json=body | {"criteria": ["low_pass_rate"]})
    assert national.status_code == 201 and national.json()["designated_by"] == "000000"

    city = (await client.get("/api/v1/key-regions", headers=bearer(province), params={"region": "330100"})).json()
    xihu = next(c for c in city["children"] if c["region_code"] == "330106")
    assert xihu["designated"] is True and {d["designated_by"] for d in xihu["designations"]} == {"330000", "000000"}
    assert city["designated"] is False
    listed = (await client.get("/api/v1/key-regions/designations", headers=bearer(province),
                               params={"criterion": "low_pass_rate"})).json()["items"]
    assert [d["designated_by"] for d in listed] == ["000000"]
    audits = (await connection.execute(text(
        "SELECT actor_name FROM audit_event WHERE action = 'key_region.designate' ORDER BY id"))).scalars().all()
    assert audits == ["zj.leader", "admin"]


@pytest.mark.parametrize(("region", "roles", "target", "code"), [
    ("330106", ["leader", "admin"], "330106", "designation_not_permitted"),  # a county does not designate
    ("330000", ["inspector", "officer"], "330106", "designation_not_permitted"),
    ("330000", ["leader"], "320102", "not_in_jurisdiction"),
])
async def test_who_may_designate(client, admin_token, region, roles, target, code):
    token = await user_token(client, admin_token, username="someone", region_code=region, roles=roles)
    r = await client.post("/api/v1/key-regions", headers=bearer(token),
                          json={"region_code": target, "criteria": ["counterfeiting"], "reason": "假冒案件多发"})
    assert r.status_code == 403 and r.json()["code"] == code


async def test_designation_needs_a_real_region_below_national(client, admin_token):
    for region_code, code in (("339999", "unknown_region"), ("000000", "invalid_region")):
        r = await client.post("/api/v1/key-regions", headers=bearer(admin_token),
                              json={"region_code": region_code, "criteria": ["counterfeiting"], "reason": "测试理由"})
        assert r.status_code == 422 and r.json()["code"] == code


@pytest.mark.parametrize("table", ["inspection", "penalty_case", "enterprise_key_flag", "license"])
async def test_a_truncate_of_the_records_rebuilds_the_kept_facts(client, admin_token, sessionmaker, connection,
                                                                 table):
    """TRUNCATE fires no row trigger: migration 0023's statement triggers rebuild the kept facts, so the
    list (which reads them) still shows what the records say (``flags`` compares it with GET /{id})."""
    e = await licensed_enterprise(client, admin_token)
    await insert_inspection(sessionmaker, e, kind="spot_check", samples=[sample(False)])
    await insert_case(sessionmaker, e, at=days_ago(3))
    r = await client.post(f"/api/v1/enterprises/{e['id']}/key-flags", headers=bearer(admin_token),
                          json={"criterion": "lowered_conditions", "reason": "媒体曝光"})
    assert r.status_code == 201, r.text
    before = {c for c, _, _ in await flags(client, admin_token, e["id"])}
    assert before == {"spot_check_problems", "past_violations", "lowered_conditions"}
    await connection.execute(text(f"TRUNCATE {table} CASCADE"))
    # (a case refers to its inspection: TRUNCATE inspection CASCADE takes the cases too)
    gone = {"inspection": {"spot_check_problems", "past_violations"}, "penalty_case": {"past_violations"},
            "enterprise_key_flag": {"lowered_conditions"}, "license": {"unlicensed"}}[table]
    after = {c for c, _, _ in await flags(client, admin_token, e["id"])}
    assert after == (before - gone if table != "license" else before | gone)


async def test_a_change_only_the_key_facts_depend_on_leaves_the_campaign_contribution_alone(
        client, admin_token, connection, sessionmaker):
    # a manual flag or a case (as a licence, or an inspection's conclusion) changes the kept facts, not the
    # campaign counters; their commit recomputed the contribution too, locking the producer's row of every
    # campaign (migration 0025)
    e = await licensed_enterprise(client, admin_token)
    await connection.execute(text("SET LOCAL track_functions = 'pl'"))
    calls = text("SELECT coalesce(pg_stat_get_xact_function_calls(CAST(:f AS regprocedure)), 0)")

    async def refreshed() -> tuple[int, int]:
        """Calls in this transaction of the contribution's refresh and of the facts' refresh."""
        contribution = await connection.execute(calls, {"f": "pqs_refresh_enterprise(uuid)"})
        facts = await connection.execute(calls, {"f": "pqs_refresh_key_facts(uuid)"})
        return contribution.scalar_one(), facts.scalar_one()

    start = await refreshed()
    r = await client.post(f"/api/v1/enterprises/{e['id']}/key-flags", headers=bearer(admin_token),
                          json={"criterion": "past_violations", "reason": "媒体曝光"})
    assert r.status_code == 201, r.text
    await insert_case(sessionmaker, e)
    after_facts = await refreshed()
    assert after_facts[0] == start[0]  # no contribution recomputed
    assert after_facts[1] == start[1] + 2  # the facts were, once for each change
    assert ("past_violations", "媒体曝光", "manual") in await flags(client, admin_token, e["id"])

    await insert_inspection(sessionmaker, e)  # what the counters do read: both are recomputed
    after_inspection = await refreshed()
    assert after_inspection[0] == after_facts[0] + 1
    assert after_inspection[1] == after_facts[1] + 1
