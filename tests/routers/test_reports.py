"""/api/v1/reports over HTTP: a draft's tallies equal counts of the records made here and its targets
equal the dashboard's; submit, approve (locked), return; lateness as the level above sees it with
each bureau's on-time rate; XLSX and CSV exports read back."""

from __future__ import annotations

import asyncio
import calendar
import csv
import io
from datetime import date, datetime, timedelta
from typing import Any

import httpx
import pytest
from openpyxl import load_workbook

from app.services.license import CHINA_TZ
from tests.conftest import assert_problem, bearer, user_token
from tests.routers.archive_data import create_license
from tests.routers.case_data import BASIS, file_case, ok
from tests.routers.test_inspections import HANGZHOU, XIHU, ZHEJIANG, create_enterprise
from tests.routers.test_inspections import body as inspection_body

URL = "/api/v1/reports"


def period_end_of(day: date) -> date:
    last = calendar.monthrange(day.year, day.month)[1]
    return day.replace(day=10 if day.day <= 10 else 20 if day.day <= 20 else last)


def previous_period_end(end: date) -> date:
    if end.day == 10:
        prev = end.replace(day=1) - timedelta(days=1)
        return prev
    return end.replace(day=10 if end.day == 20 else 20)


@pytest.fixture
async def bureau(client: httpx.AsyncClient, admin_token: str) -> dict[str, Any]:
    a = admin_token
    return {
        "officer": await user_token(client, a, username="xh.o", region_code=XIHU, roles=["officer", "inspector"]),
        "leader": await user_token(client, a, username="xh.l", region_code=XIHU, roles=["leader"]),
        "city_leader": await user_token(client, a, username="hz.l", region_code=HANGZHOU, roles=["leader"]),
        "city_officer": await user_token(client, a, username="hz.o", region_code=HANGZHOU, roles=["officer"]),
        "prov_leader": await user_token(client, a, username="zj.l", region_code=ZHEJIANG, roles=["leader"]),
    }


async def create_report(client: httpx.AsyncClient, token: str, period_end: date, **kw: Any) -> httpx.Response:
    return await client.post(URL, headers=bearer(token), json={"period_end": period_end.isoformat(), **kw})


def if_match(token: str, version: int) -> dict[str, str]:
    return {**bearer(token), "If-Match": f'"{version}"'}


async def test_a_draft_counts_the_periods_records_and_matches_the_dashboard(client, admin_token, bureau):
    now = datetime.now(CHINA_TZ) - timedelta(seconds=5)
    end = period_end_of(now.date())
    off, lead = bureau["officer"], bureau["leader"]
    a = await create_enterprise(client, admin_token, XIHU, category_codes=["05"])
    await create_license(client, admin_token, a)
    b = await create_enterprise(client, admin_token, XIHU, category_codes=["06"])
    for ent, failed in ((a, ()), (a, ("conditions_met",)), (b, ("licensed",))):
        r = await client.post("/api/v1/inspections", headers=bearer(off),
                              json=inspection_body(ent["id"], *failed, inspected_at=now.isoformat()))
        assert r.status_code == 201, r.text
    old = inspection_body(a["id"], inspected_at=(now - timedelta(days=40)).isoformat())  # another period
    assert (await client.post("/api/v1/inspections", headers=bearer(off), json=old)).status_code == 201
    unlicensed = await file_case(client, off, b, kind="unlicensed_production")
    await ok(client, lead, unlicensed, "transfer", {"to": "department", "recipient": "区市场监管局", "reason": "移交"})
    fine = await file_case(client, off, a)
    fine = await ok(client, off, fine, "investigate")
    fine = await ok(client, off, fine, "add_measure", {"type": "seal_goods", "legal_basis": BASIS,
                                                       "items": [{"name": "电缆", "quantity": "5", "unit": "卷"}]})
    fine = await ok(client, off, fine, "propose_decision", {"penalties": [
        {"type": "fine", "amount": "15000.50", "legal_basis": BASIS},
        {"type": "confiscate_gains", "amount": "300", "legal_basis": BASIS}]})
    await ok(client, lead, fine, "approve")

    r = await create_report(client, off, end)
    assert r.status_code == 201, r.text
    rep = r.json()
    assert rep["status"] == "draft" and rep["region_code"] == XIHU and rep["period_end"] == end.isoformat()
    assert rep["late"] is False and rep["version"] == 1
    assert rep["figures"]["counts"] == {
        "producers_inspected": 2, "inspections": 3, "archives_built": 1,  # a's first inspection was 40 days ago
        "unlicensed_found": 1, "unlicensed_dealt_with": 1, "cases_opened": 2, "cases_closed": 0,
        "cases_transferred": 1, "fines_yuan": "15000.50", "confiscated_gains_yuan": "300.00", "goods_sealed": 1,
        "licences_suspended": 0, "revocations_proposed": 0, "recalls_opened": 0, "units_recalled": 0,
        "key_regions": 0}
    campaign = next(c for c in (await client.get("/api/v1/campaigns", headers=bearer(off))).json()["items"]
                    if c["code"] == "2007")
    board = (await client.get(f"/api/v1/campaigns/{campaign['id']}/dashboard", headers=bearer(off))).json()
    assert rep["figures"]["targets"] == board["targets"]


async def test_submit_approve_locks_and_return_sends_back(client, bureau):
    end = period_end_of(datetime.now(CHINA_TZ).date())
    rep = (await create_report(client, bureau["officer"], end)).json()
    r = await client.patch(f"{URL}/{rep['id']}", headers=if_match(bureau["officer"], 1),
                           json={"notes": "本期开展拉网清查"})
    assert r.status_code == 200 and r.json()["notes"] == "本期开展拉网清查"
    assert_problem(await client.post(f"{URL}/{rep['id']}/actions/submit", headers=if_match(bureau["officer"], 1)), 412)
    r = await client.post(f"{URL}/{rep['id']}/actions/submit", headers=if_match(bureau["officer"], 2))
    assert r.status_code == 200 and r.json()["status"] == "submitted" and r.json()["late"] is False
    assert_problem(await client.post(f"{URL}/{rep['id']}/actions/approve", headers=if_match(bureau["leader"], 3)),
                   403, "not_a_superior_bureau")
    r = await client.post(f"{URL}/{rep['id']}/actions/return", headers=if_match(bureau["city_leader"], 3),
                          json={"comment": "请补充无证查处情况"})
    assert r.status_code == 200 and r.json()["status"] == "draft" and r.json()["returned_comment"]
    await client.post(f"{URL}/{rep['id']}/actions/submit", headers=if_match(bureau["officer"], 4))
    r = await client.post(f"{URL}/{rep['id']}/actions/approve", headers=if_match(bureau["city_leader"], 5))
    assert r.status_code == 200 and r.json()["status"] == "approved"
    assert_problem(await client.patch(f"{URL}/{rep['id']}", headers=if_match(bureau["officer"], 6),
                                      json={"notes": "x"}), 409, "report_locked")
    assert_problem(await client.post(f"{URL}/{rep['id']}/actions/submit", headers=if_match(bureau["officer"], 6)),
                   409, "transition_not_allowed")


async def test_a_late_report_shows_as_late_to_the_province(client, bureau):
    current = period_end_of(datetime.now(CHINA_TZ).date())
    past = previous_period_end(current)
    late = (await create_report(client, bureau["city_officer"], past)).json()
    assert late["late"] is True  # already past due while still a draft
    r = await client.post(f"{URL}/{late['id']}/actions/submit", headers=if_match(bureau["city_officer"], 1))
    assert r.json()["late"] is True
    r = await client.get(f"{URL}/oversight", params={"period_end": past.isoformat()},
                         headers=bearer(bureau["prov_leader"]))
    assert r.status_code == 200, r.text
    rows = {x["region_code"]: x for x in r.json()}
    assert rows[HANGZHOU]["status"] == "submitted" and rows[HANGZHOU]["late"] is True
    assert rows[HANGZHOU]["on_time_rate"] == 0.0 and rows[HANGZHOU]["reports_due"] == 1
    assert rows["330200"]["status"] == "missing" and rows["330200"]["late"] is True
    assert rows["330200"]["on_time_rate"] == 0.0
    # a report on time for the current period is not late
    on_time = (await create_report(client, bureau["city_officer"], current)).json()
    r = await client.post(f"{URL}/{on_time['id']}/actions/submit", headers=if_match(bureau["city_officer"], 1))
    assert r.json()["late"] is False
    r = await client.get(f"{URL}/oversight", params={"period_end": current.isoformat()},
                         headers=bearer(bureau["prov_leader"]))
    assert {x["region_code"]: (x["status"], x["late"]) for x in r.json()}[HANGZHOU] == ("submitted", False)


async def test_exports_read_back_with_chinese_headers(client, bureau):
    end = period_end_of(datetime.now(CHINA_TZ).date())
    rep = (await create_report(client, bureau["officer"], end)).json()
    r = await client.get(f"{URL}/{rep['id']}/export", params={"format": "xlsx"}, headers=bearer(bureau["officer"]))
    assert r.status_code == 200 and "spreadsheetml" in r.headers["content-type"]
    ws = load_workbook(io.BytesIO(r.content)).active
    assert (ws["A1"].value, ws["B1"].value) == ("指标", "数值")
    cells = {row[0].value: row[1].value for row in ws.iter_rows(min_row=2)}
    assert cells["地区代码"] == XIHU and cells["检查生产企业数"] == 0 and cells["罚款金额（元）"] == "0.00"
    assert any(str(k).startswith("目标：") for k in cells)
    r = await client.get(f"{URL}/{rep['id']}/export", params={"format": "csv"}, headers=bearer(bureau["officer"]))
    assert r.status_code == 200 and r.content.startswith("\ufeff".encode())
    rows = list(csv.reader(io.StringIO(r.content.decode("utf-8-sig"))))
    assert rows[0] == ["指标", "数值"] and ["检查次数", "0"] in rows
    assert_problem(await client.get(f"{URL}/{rep['id']}/export", params={"format": "pdf"},
                                    headers=bearer(bureau["officer"])), 422)


@pytest.mark.parametrize(("period_end", "code", "status"), [
    ("2026-11-15", "invalid_period_end", 422), ("2099-01-10", "period_in_future", 422),
    ("not-a-date", "validation_error", 422),
])
async def test_bad_periods_are_422(client, bureau, period_end, code, status):
    r = await client.post(URL, headers=bearer(bureau["officer"]), json={"period_end": period_end})
    assert_problem(r, status, code)


async def test_one_report_per_bureau_and_period_and_only_for_your_own_bureau(client, bureau):
    end = period_end_of(datetime.now(CHINA_TZ).date())
    assert (await create_report(client, bureau["officer"], end)).status_code == 201
    assert_problem(await create_report(client, bureau["officer"], end), 409, "report_exists")
    assert_problem(await create_report(client, bureau["city_officer"], end, region_code=XIHU), 403, "not_your_bureau")
    assert_problem(await create_report(client, bureau["leader"], date(end.year, 12, 30), kind="final"), 422,
                   "invalid_period_end")


# --- review mends -------------------------------------------------------------------------------

async def test_dates_beyond_reason_are_422_not_500(client, bureau):
    assert_problem(await client.post(URL, headers=bearer(bureau["officer"]), json={"period_end": "0001-01-10"}), 422)
    assert_problem(await client.get(f"{URL}/oversight", params={"period_end": "9999-12-31"},
                                    headers=bearer(bureau["prov_leader"])), 422)


async def test_notes_with_control_characters_are_refused_and_formulas_export_as_text(client, bureau):
    end = period_end_of(datetime.now(CHINA_TZ).date())
    rep = (await create_report(client, bureau["officer"], end)).json()
    assert_problem(await client.patch(f"{URL}/{rep['id']}", headers=if_match(bureau["officer"], 1),
                                      json={"notes": "a\u0007b"}), 422)
    r = await client.patch(f"{URL}/{rep['id']}", headers=if_match(bureau["officer"], 1),
                           json={"notes": "=HYPERLINK(\"http://x\")"})
    assert r.status_code == 200
    r = await client.get(f"{URL}/{rep['id']}/export", params={"format": "xlsx"}, headers=bearer(bureau["officer"]))
    ws = load_workbook(io.BytesIO(r.content)).active
    cells = {row[0].value: row[1] for row in ws.iter_rows(min_row=2)}
    assert cells["说明"].value == "'=HYPERLINK(\"http://x\")" and cells["说明"].data_type == "s"


async def test_a_returned_report_is_no_longer_counted_as_submitted(client, bureau):
    past = previous_period_end(period_end_of(datetime.now(CHINA_TZ).date()))
    rep = (await create_report(client, bureau["city_officer"], past)).json()
    await client.post(f"{URL}/{rep['id']}/actions/submit", headers=if_match(bureau["city_officer"], 1))
    r = await client.post(f"{URL}/{rep['id']}/actions/return", headers=if_match(bureau["prov_leader"], 2),
                          json={"comment": "补充"})
    assert r.json()["submitted_at"] is None and r.json()["late"] is True
    rows = {x["region_code"]: x for x in (await client.get(f"{URL}/oversight", params={"period_end": past.isoformat()},
                                                           headers=bearer(bureau["prov_leader"]))).json()}
    assert rows[HANGZHOU]["status"] == "draft" and rows[HANGZHOU]["on_time_rate"] == 0.0


async def test_two_drafts_of_one_period_at_once_give_one_report_and_a_409(live_client):
    from tests.conftest import ADMIN_PASSWORD, login

    admin = (await login(live_client, "admin", ADMIN_PASSWORD))["access_token"]
    officer = await user_token(live_client, admin, username="race.o", region_code=XIHU, roles=["officer"])
    end = period_end_of(datetime.now(CHINA_TZ).date())
    results = await asyncio.gather(*(create_report(live_client, officer, end) for _ in range(2)))
    assert sorted(r.status_code for r in results) == [201, 409]
    assert_problem(next(r for r in results if r.status_code == 409), 409, "report_exists")
