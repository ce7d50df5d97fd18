"""Rectification plans (progress read live from the dashboard), supervision (correction workflow,
overdue) and acceptance (a province's verdict on its cities), through HTTP with their audit rows."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from app.services.license import CHINA_TZ
from tests.conftest import assert_problem, bearer, user_token
from tests.routers.case_data import scalar
from tests.routers.test_inspections import HANGZHOU, SHANGCHENG, XIHU, ZHEJIANG, create_enterprise
from tests.routers.test_inspections import body as inspection_body

TODAY = datetime.now(CHINA_TZ).date()  # the service's calendar is China's


@pytest.fixture
async def people(client: httpx.AsyncClient, admin_token: str) -> dict[str, str]:
    a = admin_token
    return {
        "prov": await user_token(client, a, username="zj.lead", region_code=ZHEJIANG, roles=["leader", "officer"]),
        "city": await user_token(client, a, username="hz.lead", region_code=HANGZHOU, roles=["leader", "officer"]),
        "county": await user_token(client, a, username="xh.lead", region_code=XIHU, roles=["leader", "officer"]),
        "county_insp": await user_token(client, a, username="xh.insp", region_code=XIHU, roles=["inspector"]),
        "sibling": await user_token(client, a, username="sc.lead", region_code=SHANGCHENG, roles=["leader"]),
    }


def plan_body(**kw: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "region_code": XIHU, "title": "西湖区电线电缆区域整治方案", "lead_government": "西湖区人民政府",
        "responsible": {"name": "张伟", "position": "副区长"},
        "reported_to_government_on": (TODAY - timedelta(days=10)).isoformat(),
        "targets": [{"key": "sweep_coverage", "target": 1.0, "deadline": (TODAY + timedelta(days=10)).isoformat()},
                    {"key": "archive_coverage", "target": 0.5, "deadline": (TODAY + timedelta(days=10)).isoformat()}],
        "bureaus": [XIHU], "deadline": (TODAY + timedelta(days=30)).isoformat()}
    body.update(kw)
    return body


async def designate(client: httpx.AsyncClient, token: str, region: str) -> None:
    r = await client.post("/api/v1/key-regions", headers=bearer(token), json={
        "region_code": region, "criteria": ["unlicensed_production"], "reason": "无证生产问题突出"})
    assert r.status_code == 201, r.text


async def test_a_plan_tracks_its_targets_live_from_the_dashboard(client, admin_token, people, connection):
    await designate(client, people["prov"], XIHU)
    ent = [await create_enterprise(client, admin_token, XIHU, category_codes=["05"]) for _ in range(2)]
    r = await client.post("/api/v1/rectification-plans", headers=bearer(people["city"]), json=plan_body())
    assert r.status_code == 201, r.text
    plan = r.json()
    states = {p["key"]: (p["numerator"], p["denominator"], p["state"]) for p in plan["progress"]}
    assert states == {"sweep_coverage": (0, 2, "behind"), "archive_coverage": (0, 2, "behind")}
    r = await client.post("/api/v1/inspections", headers=bearer(people["county_insp"]),
                          json=inspection_body(ent[0]["id"]))
    assert r.status_code == 201
    plan = (await client.get(f"/api/v1/rectification-plans/{plan['id']}", headers=bearer(people["county"]))).json()
    states = {p["key"]: (p["numerator"], p["denominator"], p["state"]) for p in plan["progress"]}
    assert states["archive_coverage"] == (1, 2, "met") and states["sweep_coverage"] == (1, 2, "on_track")
    designations = (await client.get("/api/v1/key-regions/designations", headers=bearer(people["city"]))).json()
    (summary,) = [d for d in designations["items"] if d["region_code"] == XIHU][0]["plans"]
    assert (summary["id"], summary["targets_met"], summary["targets"]) == (plan["id"], 1, 2)
    assert summary["behind_or_overdue"] == []
    r = await client.post(f"/api/v1/rectification-plans/{plan['id']}/progress", headers=bearer(people["county"]),
                          json={"note": "完成首轮拉网清查", "as_of": TODAY.isoformat()})
    assert r.status_code == 200 and r.json()["progress_notes"][0]["note"] == "完成首轮拉网清查"
    r = await client.patch(f"/api/v1/rectification-plans/{plan['id']}", json={"status": "completed"},
                           headers={**bearer(people["city"]), "If-Match": f'"{r.json()["version"]}"'})
    assert r.status_code == 200 and r.json()["status"] == "completed"
    assert await scalar(connection, "SELECT count(*) FROM audit_event WHERE entity_type = 'rectification_plan'") == 3
    assert_problem(await client.get(f"/api/v1/rectification-plans/{plan['id']}", headers=bearer(people["sibling"])),
                   404)


@pytest.mark.parametrize(("change", "status", "code"), [
    ({"region_code": "330110"}, 422, "not_a_key_region"),
    ({"region_code": "320102"}, 403, "not_in_jurisdiction"),
    ({"bureaus": ["330102"]}, 422, "bureau_outside_region"),
    ({"responsible": None}, 422, "validation_error"),
    ({"targets": []}, 422, "validation_error"),
    ({"targets": [{"key": "sweep_coverage", "target": 2, "deadline": "2026-12-01"}]}, 422, "validation_error"),
    ({"deadline": (TODAY - timedelta(days=1)).isoformat()}, 422, "validation_error"),
])
async def test_bad_plans_are_refused(client, people, change, status, code):
    await designate(client, people["prov"], XIHU)
    r = await client.post("/api/v1/rectification-plans", headers=bearer(people["city"]), json=plan_body(**change))
    assert_problem(r, status, code)


async def test_supervision_from_findings_to_closing(client, people, connection):
    deadline = (TODAY + timedelta(days=15)).isoformat()
    r = await client.post("/api/v1/supervisions", headers=bearer(people["city"]), json={
        "region_code": XIHU, "subject": "拉网清查工作督察", "findings": ["档案建立不全", "无证查处不及时"],
        "correction_deadline": deadline,
        "accountable": [{"name": "李明", "position": "稽查科科长", "measure": "诫勉谈话"}]})
    assert r.status_code == 201, r.text
    s = r.json()
    assert s["status"] == "open" and s["supervising_bureau"] == HANGZHOU and s["overdue"] is False
    path = f"/api/v1/supervisions/{s['id']}/actions"
    assert_problem(await client.post(f"{path}/close", headers={**bearer(people["city"]), "If-Match": '"1"'}), 409)
    assert_problem(await client.post(f"{path}/report_correction", json={"report": "x"},
                                     headers={**bearer(people["city"]), "If-Match": '"1"'}), 403, "not_your_bureau")
    r = await client.post(f"{path}/report_correction", json={"report": "已补建档案 120 份"},
                          headers={**bearer(people["county"]), "If-Match": '"1"'})
    assert r.status_code == 200 and r.json()["status"] == "corrected"
    r = await client.post(f"{path}/reopen", headers={**bearer(people["city"]), "If-Match": '"2"'})
    assert r.json()["status"] == "open"
    await client.post(f"{path}/report_correction", json={"report": "全部整改"},
                      headers={**bearer(people["county"]), "If-Match": '"3"'})
    r = await client.post(f"{path}/close", headers={**bearer(people["city"]), "If-Match": '"4"'})
    assert r.status_code == 200 and r.json()["status"] == "closed" and r.json()["closed_at"]
    assert await scalar(connection, "SELECT count(*) FROM audit_event WHERE entity_type = 'supervision'") == 5
    # the supervised bureau sees it, a sibling does not; a bureau cannot supervise itself or a sibling
    assert (await client.get(f"/api/v1/supervisions/{s['id']}", headers=bearer(people["county"]))).status_code == 200
    assert_problem(await client.get(f"/api/v1/supervisions/{s['id']}", headers=bearer(people["sibling"])), 404)
    assert_problem(await client.post("/api/v1/supervisions", headers=bearer(people["county"]), json={
        "region_code": XIHU, "subject": "x", "findings": ["x"], "correction_deadline": deadline}), 422,
        "not_a_lower_bureau")
    assert_problem(await client.post("/api/v1/supervisions", headers=bearer(people["county"]), json={
        "region_code": SHANGCHENG, "subject": "x", "findings": ["x"], "correction_deadline": deadline}), 403)


async def test_an_open_supervision_past_its_deadline_is_overdue(client, people, connection):
    r = await client.post("/api/v1/supervisions", headers=bearer(people["prov"]), json={
        "region_code": HANGZHOU, "subject": "督察", "findings": ["进度滞后"],
        "correction_deadline": (TODAY + timedelta(days=1)).isoformat()})
    s = r.json()
    await connection.execute(text("UPDATE supervision SET correction_deadline = current_date - 1 WHERE id = :id"),
                             {"id": s["id"]})
    got = (await client.get("/api/v1/supervisions", params={"status": "open"}, headers=bearer(people["city"]))).json()
    assert [(x["id"], x["overdue"]) for x in got["items"]] == [(s["id"], True)]


async def test_a_province_accepts_each_city_once_with_the_figures_of_the_day(client, people, connection):
    body = {"region_code": HANGZHOU, "verdict": "conditional", "score": 86.5, "findings": "档案覆盖率未达标",
            "spot_checks": {"samples": 40, "passed": 37}, "accepted_on": TODAY.isoformat()}
    r = await client.post("/api/v1/acceptances", headers=bearer(people["prov"]), json=body)
    assert r.status_code == 201, r.text
    acc = r.json()
    assert acc["accepting_bureau"] == ZHEJIANG and acc["verdict"] == "conditional"
    assert {f["key"] for f in acc["figures"]} >= {"archive_coverage", "sweep_coverage"}
    assert_problem(await client.post("/api/v1/acceptances", headers=bearer(people["prov"]), json=body), 409,
                   "already_accepted")
    assert_problem(await client.post("/api/v1/acceptances", headers=bearer(people["city"]),
                                     json=body | {"region_code": "330200"}), 403)
    assert_problem(await client.post("/api/v1/acceptances", headers=bearer(people["prov"]),
                                     json=body | {"region_code": XIHU}), 422, "not_a_city")
    assert_problem(await client.post("/api/v1/acceptances", headers=bearer(people["prov"]),
                                     json=body | {"region_code": "320100"}), 403, "not_in_jurisdiction")
    assert_problem(await client.post("/api/v1/acceptances", headers=bearer(people["prov"]),
                                     json=body | {"region_code": "330200", "spot_checks": {"samples": 1,
                                                                                          "passed": 2}}), 422)
    listed = (await client.get("/api/v1/acceptances", headers=bearer(people["city"]))).json()["items"]
    assert [a["id"] for a in listed] == [acc["id"]]
    assert await scalar(connection, "SELECT count(*) FROM audit_event WHERE entity_type = 'acceptance'") == 1


async def test_a_plan_update_refuses_nulls_and_bureaus_must_exist(client, people):
    await designate(client, people["prov"], HANGZHOU)
    r = await client.post("/api/v1/rectification-plans", headers=bearer(people["prov"]),
                          json=plan_body(region_code=HANGZHOU, bureaus=["330199"]))
    assert_problem(r, 422, "unknown_region")
    r = await client.post("/api/v1/rectification-plans", headers=bearer(people["prov"]),
                          json=plan_body(region_code=HANGZHOU, bureaus=[HANGZHOU, XIHU]))
    assert r.status_code == 201, r.text
    r = await client.patch(f"/api/v1/rectification-plans/{r.json()['id']}", json={"responsible": None},
                           headers={**bearer(people["prov"]), "If-Match": '"1"'})
    assert_problem(r, 422, "validation_error")
