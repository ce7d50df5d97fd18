"""/api/v1/campaigns over HTTP: every dashboard figure equals a count made here from the records the
test creates, stays right after further writes, after compaction and against a full rebuild; regional
targets; the sweep's gaps; jurisdiction."""

from __future__ import annotations

import uuid
from datetime import date, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from app.services import campaign as campaign_service
from tests.conftest import assert_problem, bearer, user_token
from tests.routers.archive_data import create_license
from tests.routers.case_data import act, file_case, ok
from tests.routers.test_inspections import HANGZHOU, SHANGCHENG, XIHU, ZHEJIANG, create_enterprise, sample
from tests.routers.test_inspections import body as inspection_body

URL = "/api/v1/campaigns"


async def default_campaign(client: httpx.AsyncClient, token: str) -> dict[str, Any]:
    r = await client.get(URL, headers=bearer(token))
    assert r.status_code == 200, r.text
    (c,) = [c for c in r.json()["items"] if c["code"] == "2007"]
    return c


async def inspect(client: httpx.AsyncClient, token: str, ent: dict[str, Any], *failed: str, **kw: Any) -> None:
    r = await client.post("/api/v1/inspections", headers=bearer(token), json=inspection_body(ent["id"], *failed, **kw))
    assert r.status_code == 201, r.text


def figures(targets: list[dict[str, Any]]) -> dict[str, tuple[int, int, float | None, bool | None]]:
    return {t["key"]: (t["numerator"], t["denominator"], t["figure"], t["met"]) for t in targets}


async def board(client: httpx.AsyncClient, token: str, campaign: dict[str, Any], region: str) -> dict[str, Any]:
    r = await client.get(f"{URL}/{campaign['id']}/dashboard", params={"region": region}, headers=bearer(token))
    assert r.status_code == 200, r.text
    out: dict[str, Any] = r.json()
    return out


@pytest.fixture
async def world(client: httpx.AsyncClient, admin_token: str) -> dict[str, Any]:
    """Xihu: A (key, licensed, large), B (key, licensed), C (key, unlicensed), D (no key category);
    Shangcheng: E (key, licensed)."""
    a = admin_token
    w: dict[str, Any] = {
        "A": await create_enterprise(client, a, XIHU, category_codes=["05"], size="large"),
        "B": await create_enterprise(client, a, XIHU, category_codes=["0501"]),
        "C": await create_enterprise(client, a, XIHU, category_codes=["06"]),
        "D": await create_enterprise(client, a, XIHU),
        "E": await create_enterprise(client, a, SHANGCHENG, category_codes=["10"]),
    }
    for k in ("A", "B", "E"):
        await create_license(client, a, w[k], category_code=w[k]["category_codes"][0][:2])
    w["xh"] = await user_token(client, a, username="xh.i", region_code=XIHU, roles=["inspector", "officer"])
    w["sc"] = await user_token(client, a, username="sc.i", region_code=SHANGCHENG, roles=["inspector", "officer"])
    w["xh_leader"] = await user_token(client, a, username="xh.l", region_code=XIHU, roles=["leader"])
    await inspect(client, w["xh"], w["A"], kind="spot_check", samples=[sample(True), sample(False)],
                  conclusion="issues_found")
    await inspect(client, w["xh"], w["B"], "conditions_met")
    await inspect(client, w["xh"], w["D"])
    await inspect(client, w["sc"], w["E"], kind="spot_check", samples=[sample(True)])
    unlicensed = await file_case(client, w["xh"], w["C"], kind="unlicensed_production")
    await ok(client, w["xh_leader"], unlicensed, "transfer", {"to": "department", "recipient": "区市场监管局",
                                                            "reason": "无照经营移交"})
    w["counterfeit"] = await file_case(client, w["xh"], w["B"], kind="counterfeit")
    r = await client.post("/api/v1/recalls", headers=bearer(w["xh"]), json={
        "enterprise_id": w["A"]["id"], "product": "电缆", "batches": ["X1"], "hazard": "绝缘层厚度不足",
        "mode": "ordered", "units_made": 120, "units_sold": 100,
        "deadline": (date.today() + timedelta(days=30)).isoformat()})
    assert r.status_code == 201, r.text
    w["recall"] = r.json()
    r = await client.post(f"/api/v1/recalls/{w['recall']['id']}/progress", headers=bearer(w["xh"]),
                          json={"units_recalled": 40, "as_of": date.today().isoformat()})
    assert r.status_code == 201, r.text
    return w


async def test_every_figure_equals_a_count_of_the_records(client, admin_token, world):
    c = await default_campaign(client, admin_token)
    city = await board(client, admin_token, c, HANGZHOU)
    assert city["region_code"] == HANGZHOU and city["name"] == "杭州市"
    assert figures(city["targets"]) == {
        "archive_coverage": (3, 4, 0.75, False),          # A, B, E inspected; of A, B, C, E
        "sweep_coverage": (3, 4, 0.75, False),
        "conditions_compliance": (2, 3, 0.6667, False),   # A and E met the conditions, B did not
        "spot_check_pass_rate": (2, 3, 0.6667, False),    # A: 1 of 2 samples, E: 1 of 1
        "spot_check_pass_rate_large": (1, 2, 0.5, False),  # A is large
        "recall_completion": (40, 100, 0.4, False),
        "unlicensed_resolved": (1, 1, 1.0, True),          # C's case was handed over
        "counterfeit_cases_closed": (0, 1, 0.0, False),
    }
    targets = {t["key"]: (t["target"], t["target_set_by"]) for t in city["targets"]}
    assert targets["spot_check_pass_rate"] == (0.9, "000000") and targets["spot_check_pass_rate_large"][0] == 0.95
    children = {ch["region_code"]: figures(ch["targets"]) for ch in city["children"]}
    assert children[XIHU]["archive_coverage"] == (2, 3, 0.6667, False)
    assert children[XIHU]["spot_check_pass_rate"] == (1, 2, 0.5, False)
    assert children[SHANGCHENG]["archive_coverage"] == (1, 1, 1.0, True)
    assert children[SHANGCHENG]["recall_completion"] == (0, 0, None, None)  # nothing to recall there
    assert "330108" in children and children["330108"]["archive_coverage"] == (0, 0, None, None)
    nation = await board(client, admin_token, c, "000000")
    assert figures(nation["targets"]) == figures(city["targets"])
    assert {ch["region_code"] for ch in nation["children"]} >= {ZHEJIANG, "110000", "320000"}


async def test_figures_follow_writes_compaction_and_agree_with_a_full_rebuild(client, admin_token, world,
                                                                             sessionmaker, connection):
    c = await default_campaign(client, admin_token)
    await inspect(client, world["xh"], world["C"], "licensed", notes="无证生产")  # C gets its archive
    case = world["counterfeit"]
    r = await act(client, world["xh_leader"], case, "transfer",
                  {"to": "judicial", "recipient": "公安局", "reason": "涉嫌犯罪"})
    assert r.status_code == 200, r.text
    await client.post(f"/api/v1/recalls/{world['recall']['id']}/progress", headers=bearer(world["xh"]),
                      json={"units_recalled": 60, "as_of": date.today().isoformat()})
    after = figures((await board(client, admin_token, c, HANGZHOU))["targets"])
    assert after["archive_coverage"] == (4, 4, 1.0, True) and after["sweep_coverage"] == (4, 4, 1.0, True)
    assert after["counterfeit_cases_closed"] == (1, 1, 1.0, True)
    assert after["recall_completion"] == (100, 100, 1.0, True)
    async with sessionmaker() as session:
        assert await campaign_service.compact(session) > 0
        await session.commit()
    assert await connection.scalar(text("SELECT count(*) FROM campaign_delta WHERE campaign_id = :c"),
                                   {"c": c["id"]}) == await connection.scalar(text(
        "SELECT count(DISTINCT region_code) FROM campaign_delta WHERE campaign_id = :c"), {"c": c["id"]})
    assert figures((await board(client, admin_token, c, HANGZHOU))["targets"]) == after
    await connection.execute(text("SELECT pqs_rebuild_campaign(:c)"), {"c": c["id"]})
    assert figures((await board(client, admin_token, c, HANGZHOU))["targets"]) == after


async def test_the_sweep_gaps_list_the_key_producers_not_yet_inspected(client, admin_token, world):
    c = await default_campaign(client, admin_token)
    r = await client.get(f"{URL}/{c['id']}/sweep-gaps", params={"region": XIHU}, headers=bearer(world["xh"]))
    assert r.status_code == 200, r.text
    assert [(g["enterprise_id"], g["licensed"]) for g in r.json()["items"]] == [(world["C"]["id"], False)]
    assert (await client.get(f"{URL}/{c['id']}/sweep-gaps", headers=bearer(world["sc"]))).json()["items"] == []
    assert_problem(await client.get(f"{URL}/{c['id']}/sweep-gaps", params={"region": XIHU},
                                    headers=bearer(world["sc"])), 403, "not_in_jurisdiction")
    await inspect(client, world["xh"], world["C"], "licensed")
    r = await client.get(f"{URL}/{c['id']}/sweep-gaps", params={"region": XIHU}, headers=bearer(world["xh"]))
    assert r.json()["items"] == []


@pytest.mark.parametrize("value", [1.5, -0.1])
async def test_a_target_outside_0_to_1_is_422_naming_its_key_and_sets_nothing(client, admin_token, value):
    c = await default_campaign(client, admin_token)
    r = await client.post(f"{URL}/{c['id']}/targets", headers=bearer(admin_token),
                          json={"region_code": ZHEJIANG, "targets": {"spot_check_pass_rate": value}})
    body = assert_problem(r, 422, "validation_error")
    assert body["errors"][0]["loc"] == ["body", "targets", "spot_check_pass_rate"]
    t = {x["key"]: x for x in (await board(client, admin_token, c, HANGZHOU))["targets"]}["spot_check_pass_rate"]
    assert (t["target"], t["target_set_by"]) == (0.9, "000000")  # the national default, still


async def test_a_province_sets_its_own_targets_and_the_regions_below_inherit_them(client, admin_token, world):
    c = await default_campaign(client, admin_token)
    prov = await user_token(client, admin_token, username="zj.l", region_code=ZHEJIANG, roles=["leader"])
    r = await client.post(f"{URL}/{c['id']}/targets", headers=bearer(prov),
                          json={"region_code": ZHEJIANG, "targets": {"spot_check_pass_rate": 0.6}})
    assert r.status_code == 200, r.text
    city = await board(client, prov, c, HANGZHOU)
    t = {x["key"]: x for x in city["targets"]}["spot_check_pass_rate"]
    assert (t["target"], t["target_set_by"], t["met"]) == (0.6, ZHEJIANG, True)
    r = await client.post(f"{URL}/{c['id']}/targets", headers=bearer(prov),
                          json={"region_code": ZHEJIANG, "targets": {"spot_check_pass_rate": 0.7}})
    t = {x["key"]: x for x in (await board(client, prov, c, HANGZHOU))["targets"]}["spot_check_pass_rate"]
    assert (t["target"], t["met"]) == (0.7, False)  # a changed target shows at once (no stale copy)
    jiangsu = {x["key"]: x for x in (await board(client, admin_token, c, "320000"))["targets"]}
    assert jiangsu["spot_check_pass_rate"]["target"] == 0.9
    for token, region, status in ((world["xh_leader"], XIHU, 403), (prov, "320000", 403)):
        r = await client.post(f"{URL}/{c['id']}/targets", headers=bearer(token),
                              json={"region_code": region, "targets": {"sweep_coverage": 0.5}})
        assert_problem(r, status)
    for bad in ({"sweep_coverage": 1.5}, {"unknown": 0.5}, {}):
        r = await client.post(f"{URL}/{c['id']}/targets", headers=bearer(prov),
                              json={"region_code": ZHEJIANG, "targets": bad})
        assert_problem(r, 422)


async def test_dashboards_stay_inside_the_jurisdiction(client, admin_token, world):
    c = await default_campaign(client, admin_token)
    assert_problem(await client.get(f"{URL}/{c['id']}/dashboard", params={"region": SHANGCHENG},
                                    headers=bearer(world["xh"])), 403, "not_in_jurisdiction")
    own = await client.get(f"{URL}/{c['id']}/dashboard", headers=bearer(world["xh"]))
    assert own.status_code == 200 and own.json()["region_code"] == XIHU
    assert figures(own.json()["targets"])["archive_coverage"] == (2, 3, 0.6667, False)
    assert_problem(await client.get(f"{URL}/{uuid.uuid4()}/dashboard", headers=bearer(world["xh"])), 404)
    assert_problem(await client.get(f"{URL}/{c['id']}/dashboard", params={"region": "33"},
                                    headers=bearer(world["xh"])), 422)


async def test_a_new_campaign_counts_only_its_own_period_and_categories(client, admin_token, world):
    r = await client.post(URL, headers=bearer(admin_token), json={
        "code": "2026-wires", "name": "2026 电线电缆专项", "starts_on": date.today().isoformat(),
        "key_categories": ["05"], "targets": {"sweep_coverage": 0.8}})
    assert r.status_code == 201, r.text
    c = r.json()
    assert c["targets"]["sweep_coverage"] == 0.8 and c["targets"]["archive_coverage"] == 1.0
    assert set(c["key_categories"]) >= {"05", "0501", "0502"}
    got = figures((await board(client, admin_token, c, HANGZHOU))["targets"])
    assert got["archive_coverage"] == (2, 2, 1.0, True)   # A and B make wires; both have archives
    assert got["sweep_coverage"] == (0, 2, 0.0, False)    # inspected on 2026-11-20, before the campaign
    assert got["recall_completion"] == (40, 100, 0.4, False)  # recalls opened today count
    xh = await user_token(client, admin_token, username="xh.only", region_code=XIHU, roles=["leader", "admin"])
    assert_problem(await client.post(URL, headers=bearer(xh), json={
        "code": "xx", "name": "x", "starts_on": "2026-01-01", "key_categories": ["05"]}), 403)
    r = await client.post(URL, headers=bearer(admin_token), json={
        "code": "2026-wires", "name": "again", "starts_on": "2026-01-01", "key_categories": ["05"]})
    assert_problem(r, 409, "campaign_code_taken")
    r = await client.post(URL, headers=bearer(admin_token), json={
        "code": "bad", "name": "x", "starts_on": "2026-01-01", "key_categories": ["99"]})
    assert_problem(r, 422, "unknown_category")


async def test_a_truncate_of_the_records_rebuilds_the_figures(client, admin_token, world, connection):
    """TRUNCATE fires no row trigger: migration 0023's statement triggers rebuild every campaign's counts."""
    c = await default_campaign(client, admin_token)
    assert figures((await board(client, admin_token, c, HANGZHOU))["targets"])["sweep_coverage"] == (3, 4, 0.75, False)
    await connection.execute(text("TRUNCATE inspection, recall CASCADE"))  # (cases refer to inspections)
    after = figures((await board(client, admin_token, c, HANGZHOU))["targets"])
    assert after["archive_coverage"] == after["sweep_coverage"] == (0, 4, 0.0, False)
    assert after["spot_check_pass_rate"] == (0, 0, None, None) and after["recall_completion"] == (0, 0, None, None)
    await connection.execute(text("SELECT pqs_rebuild_campaign(:c)"), {"c": c["id"]})
    assert figures((await board(client, admin_token, c, HANGZHOU))["targets"]) == after
