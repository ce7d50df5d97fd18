"""/api/v1/recalls over HTTP: creation linked to the spot check and the case, progress per region and
batch that never exceeds what was sold, completion at 100%, overdue past the deadline without a
manual step, corrections with If-Match, jurisdiction, the archive and the public list."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from app.routers import public
from app.services import recall as recall_service
from tests.conftest import assert_problem, bearer, user_token
from tests.routers.case_data import Bureaus, file_case, make_bureaus, scalar
from tests.routers.test_archive import archive as read_archive
from tests.routers.test_inspections import SHANGCHENG, XIHU, create_enterprise

URL = "/api/v1/recalls"
HANGZHOU_SALES, NINGBO_SALES = "330102", "330203"


@pytest.fixture
async def b(client: httpx.AsyncClient, admin_token: str) -> Bureaus:
    return await make_bureaus(client, admin_token)


def recall_body(enterprise: dict[str, Any], **kw: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "enterprise_id": enterprise["id"], "product": "BV 2.5mm² 电线", "batches": ["B1", "B2"],
        "hazard": "导体电阻超标，存在过热起火隐患", "mode": "ordered", "units_made": 1200, "units_sold": 1000,
        "distribution": [{"region_code": HANGZHOU_SALES, "batch": "B1", "units_sold": 600},
                         {"region_code": NINGBO_SALES, "batch": "B2", "units_sold": 400}],
        "deadline": (date.today() + timedelta(days=30)).isoformat()}
    body.update(kw)
    return body


async def create(client: httpx.AsyncClient, token: str, body: dict[str, Any]) -> dict[str, Any]:
    r = await client.post(URL, headers=bearer(token), json=body)
    assert r.status_code == 201, r.text
    out: dict[str, Any] = r.json()
    return out


async def progress(client: httpx.AsyncClient, token: str, recall: dict[str, Any], units: int,
                   **kw: Any) -> httpx.Response:
    return await client.post(f"{URL}/{recall['id']}/progress", headers=bearer(token),
                             json={"units_recalled": units, "as_of": date.today().isoformat(), **kw})


async def test_a_recall_links_the_spot_check_and_the_case_and_tracks_recovery_per_batch_and_region(
        client, b, connection):
    case = await file_case(client, b.inspector, b.enterprise)
    recall = await create(client, b.officer, recall_body(b.enterprise, case_id=case["id"]))
    assert recall["status"] == "open" and recall["units_recalled"] == 0 and recall["recovery_rate"] == 0
    assert recall["case_id"] == case["id"] and recall["region_code"] == XIHU
    r = await progress(client, b.inspector, recall, 300, region_code=HANGZHOU_SALES, batch="B1", note="经销商退回")
    assert r.status_code == 201, r.text
    r = await progress(client, b.inspector, recall, 100, region_code=NINGBO_SALES, batch="B2")
    got = r.json()
    assert got["units_recalled"] == 400 and got["recovery_rate"] == 0.4 and got["status"] == "open"
    assert {x["batch"]: (x["units_sold"], x["units_recalled"], x["recovery_rate"]) for x in got["by_batch"]} == {
        "B1": (600, 300, 0.5), "B2": (400, 100, 0.25)}
    assert {x["region_code"]: (x["units_sold"], x["units_recalled"]) for x in got["by_region"]} == {
        HANGZHOU_SALES: (600, 300), NINGBO_SALES: (400, 100)}
    assert got["version"] == 3
    listed = (await client.get(f"{URL}/{recall['id']}/progress", headers=bearer(b.officer))).json()["items"]
    assert [p["units_recalled"] for p in listed] == [300, 100] and listed[0]["note"] == "经销商退回"
    assert await scalar(connection, "SELECT count(*) FROM audit_event WHERE entity_id = :id", id=recall["id"]) == 3
    # the case's recalls
    r = await client.get(URL, params={"case_id": case["id"]}, headers=bearer(b.leader))
    assert [x["id"] for x in r.json()["items"]] == [recall["id"]]


@pytest.mark.parametrize(("units", "extra", "code"), [
    (1001, {}, "exceeds_units_sold"),
    (601, {"region_code": HANGZHOU_SALES}, "exceeds_units_sold_in_region"),
    (401, {"region_code": NINGBO_SALES, "batch": "B2"}, "exceeds_units_sold_in_region"),
    (1, {"region_code": "320102"}, "region_not_in_distribution"),
    (1, {"batch": "B9"}, "unknown_batch"),
    (0, {}, "validation_error"),
    (-5, {}, "validation_error"),
    (1, {"as_of": "2099-01-01"}, "as_of_in_future"),
    (1, {"as_of": 0}, "validation_error"),  # a number is not read as seconds since 1970 (1970-01-01)
    (1, {"as_of": "0"}, "validation_error"),
    ("1", {}, "validation_error"),  # JSON types as documented: text is not a number
    (True, {}, "validation_error"),
])
async def test_progress_beyond_what_was_sold_is_422_and_changes_nothing(client, b, connection, units, extra, code):
    recall = await create(client, b.officer, recall_body(b.enterprise))
    r = await progress(client, b.inspector, recall, units, **extra)
    assert_problem(r, 422, code)
    after = (await client.get(f"{URL}/{recall['id']}", headers=bearer(b.officer))).json()
    assert after["units_recalled"] == 0 and after["version"] == 1
    assert await scalar(connection, "SELECT count(*) FROM recall_progress WHERE recall_id = :id", id=recall["id"]) == 0


async def test_a_whole_number_written_with_a_fraction_is_an_integer_as_in_json_schema(client, b, connection):
    distribution = [{"region_code": HANGZHOU_SALES, "batch": "B1", "units_sold": 600.0},
                    {"region_code": NINGBO_SALES, "batch": "B2", "units_sold": 400}]
    recall = await create(client, b.officer, recall_body(b.enterprise, units_made=1200.0, units_sold=1000.0,
                                                         distribution=distribution))
    assert (recall["units_made"], recall["units_sold"]) == (1200, 1000)
    assert await scalar(connection, "SELECT units_sold FROM recall WHERE id = :id", id=recall["id"]) == 1000
    assert_problem(await progress(client, b.inspector, recall, 1.5), 422, "validation_error")  # not whole


async def test_the_total_caps_across_reports(client, b):
    recall = await create(client, b.officer, recall_body(b.enterprise, distribution=[]))
    assert (await progress(client, b.inspector, recall, 999)).status_code == 201
    assert_problem(await progress(client, b.inspector, recall, 2), 422, "exceeds_units_sold")
    r = await progress(client, b.inspector, recall, 1)
    assert r.json()["status"] == "completed" and r.json()["completed_at"] and r.json()["recovery_rate"] == 1.0
    assert_problem(await progress(client, b.inspector, recall, 1), 409, "recall_closed")


@pytest.mark.parametrize(("change", "code"), [
    ({"units_sold": 1300}, "validation_error"),                        # sold > made
    ({"distribution": [{"region_code": HANGZHOU_SALES, "units_sold": 10}]}, "validation_error"),  # sum != sold
    ({"distribution": [{"region_code": HANGZHOU_SALES, "batch": "B7", "units_sold": 1000}]}, "validation_error"),
    ({"distribution": [{"region_code": "999999", "units_sold": 1000}]}, "unknown_region"),
    ({"units_made": 10, "units_sold": 20}, "validation_error"),
    ({"batches": ["B1", " "]}, "validation_error"),
    ({"batches": ["B1", "B1"]}, "validation_error"),
    ({"batches": ["B1", "B" * 101]}, "validation_error"),
    ({"units_made": "1200"}, "validation_error"),
    ({"deadline": 4102444800}, "validation_error"),  # 2100-01-01 as seconds since 1970
], ids=["sold-over-made", "distribution-sum", "unknown-batch", "unknown-region", "made-under-sold", "blank-batch",
        "same-batch-twice", "long-batch", "units-as-text", "deadline-as-a-number"])
async def test_creating_inconsistent_units_is_422(client, b, connection, change, code):
    r = await client.post(URL, headers=bearer(b.officer), json=recall_body(b.enterprise, **change))
    assert_problem(r, 422, code)
    assert await scalar(connection, "SELECT count(*) FROM recall") == 0


async def test_corrections_need_if_match_and_never_fall_below_what_was_recalled(client, b):
    recall = await create(client, b.officer, recall_body(b.enterprise))
    await progress(client, b.inspector, recall, 500, region_code=HANGZHOU_SALES)
    path = f"{URL}/{recall['id']}"
    assert_problem(await client.patch(path, headers=bearer(b.officer), json={"hazard": "x"}), 428)
    assert_problem(await client.patch(path, headers={**bearer(b.officer), "If-Match": '"1"'}, json={"hazard": "x"}),
                   412)
    h = {**bearer(b.officer), "If-Match": '"2"'}
    r = await client.patch(path, headers=h, json={"units_sold": 400, "distribution": [
        {"region_code": HANGZHOU_SALES, "units_sold": 400}]})
    assert_problem(r, 422, "below_units_recalled")
    r = await client.patch(path, headers=h, json={"units_sold": 500, "distribution": [
        {"region_code": HANGZHOU_SALES, "units_sold": 500}]})
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "completed" and r.json()["recovery_rate"] == 1.0  # 500 of 500
    assert_problem(await client.patch(path, headers={**bearer(b.officer), "If-Match": '"3"'}, json={"hazard": "y"}),
                   409, "recall_closed")


async def test_cancel_needs_a_reason(client, b):
    recall = await create(client, b.officer, recall_body(b.enterprise))
    h = {**bearer(b.officer), "If-Match": '"1"'}
    assert_problem(await client.patch(f"{URL}/{recall['id']}", headers=h, json={"status": "cancelled"}), 422,
                   "cancel_needs_reason")
    r = await client.patch(f"{URL}/{recall['id']}", headers=h, json={"status": "cancelled",
                                                                     "cancel_reason": "经复检产品合格"})
    assert r.status_code == 200 and r.json()["status"] == "cancelled"
    assert_problem(await progress(client, b.inspector, recall, 1), 409, "recall_closed")


async def test_a_recall_past_its_deadline_is_overdue_without_a_manual_step(client, b, sessionmaker, connection):
    recall = await create(client, b.officer, recall_body(b.enterprise))
    await connection.execute(text("UPDATE recall SET deadline = current_date - 1 WHERE id = :id"), {"id": recall["id"]})
    # read before the job: already overdue
    assert (await client.get(f"{URL}/{recall['id']}", headers=bearer(b.officer))).json()["status"] == "overdue"
    r = await client.get(URL, params={"status": "overdue"}, headers=bearer(b.officer))
    assert [x["id"] for x in r.json()["items"]] == [recall["id"]]
    assert (await client.get(URL, params={"status": "open"}, headers=bearer(b.officer))).json()["items"] == []
    async with sessionmaker() as session:
        assert await recall_service.mark_overdue(session) == 1
        await session.commit()
    assert await scalar(connection, "SELECT status FROM recall WHERE id = :id", id=recall["id"]) == "overdue"
    assert await scalar(connection, "SELECT count(*) FROM audit_event WHERE action = 'recall.overdue'") == 1
    # recovery still counts, and reaching 100% completes it
    r = await progress(client, b.inspector, recall, 1000)
    assert r.json()["status"] == "completed"


async def test_another_county_cannot_see_or_report_and_leaders_do_not_write(client, b, admin_token):
    recall = await create(client, b.officer, recall_body(b.enterprise))
    assert_problem(await client.get(f"{URL}/{recall['id']}", headers=bearer(b.sibling)), 404)
    assert_problem(await progress(client, b.sibling, recall, 1), 404)
    assert_problem(await progress(client, b.leader, recall, 1), 403, "role_not_permitted")
    theirs = await create_enterprise(client, admin_token, SHANGCHENG)
    assert_problem(await client.post(URL, headers=bearer(b.officer), json=recall_body(theirs)), 404)
    assert_problem(await client.get(URL, params={"region": SHANGCHENG}, headers=bearer(b.officer)), 403,
                   "not_in_jurisdiction")
    other_case = await file_case(client, b.inspector, await create_enterprise(client, admin_token, XIHU))
    r = await client.post(URL, headers=bearer(b.officer), json=recall_body(b.enterprise, case_id=other_case["id"]))
    assert_problem(r, 422, "case_of_other_enterprise")
    city = await user_token(client, admin_token, username="hz.insp", region_code="330100", roles=["inspector"])
    assert (await progress(client, city, recall, 5)).status_code == 201  # the city bureau reports for its county


async def test_the_public_sees_recalls_without_personal_data_and_the_archive_lists_them(client, b):
    public.reset_rate_limits()
    recall = await create(client, b.officer, recall_body(b.enterprise))
    await progress(client, b.inspector, recall, 250)
    r = await client.get("/api/public/v1/recalls")
    assert r.status_code == 200, r.text
    (item,) = r.json()["items"]
    assert item["enterprise_name"] == b.enterprise["name"] and item["recovery_rate"] == 0.25
    assert item["batches"] == ["B1", "B2"] and item["status"] == "open"
    assert not {"legal_representative", "created_by", "enterprise_id", "case_id", "distribution"} & set(item)
    archive = await read_archive(client, b.officer, b.enterprise["id"])
    assert [(x["id"], x["units_recalled"]) for x in archive["recalls"]] == [(recall["id"], 250)]


# --- review mends -------------------------------------------------------------------------------

async def test_a_cancelled_recall_stays_cancelled_even_when_the_figures_say_complete(client, b):
    recall = await create(client, b.officer, recall_body(b.enterprise, distribution=[]))
    await progress(client, b.inspector, recall, 300)
    r = await client.patch(f"{URL}/{recall['id']}", headers={**bearer(b.officer), "If-Match": '"2"'},
                           json={"status": "cancelled", "cancel_reason": "误报", "units_sold": 300})
    assert r.status_code == 200 and r.json()["status"] == "cancelled"


async def test_extending_the_deadline_of_an_overdue_recall_reopens_it(client, b, connection):
    recall = await create(client, b.officer, recall_body(b.enterprise))
    await connection.execute(text("UPDATE recall SET deadline = current_date - 1, status = 'overdue' WHERE id = :id"),
                             {"id": recall["id"]})
    later = (date.today() + timedelta(days=60)).isoformat()
    r = await client.patch(f"{URL}/{recall['id']}", headers={**bearer(b.officer), "If-Match": '"1"'},
                           json={"deadline": later})
    assert r.status_code == 200 and r.json()["status"] == "open"


async def test_a_batch_cannot_recover_more_than_it_sold_even_without_a_region(client, b):
    recall = await create(client, b.officer, recall_body(b.enterprise))  # B1: 600 sold, B2: 400 sold
    assert_problem(await progress(client, b.inspector, recall, 401, batch="B2"), 422, "exceeds_units_sold_in_region")
    assert_problem(await progress(client, b.inspector, recall, 1, region_code=NINGBO_SALES, batch="B1"), 422,
                   "exceeds_units_sold_in_region")  # Ningbo bought no B1
    assert (await progress(client, b.inspector, recall, 400, batch="B2")).status_code == 201


async def test_a_progress_report_sent_twice_with_its_key_counts_once(client, b):
    recall = await create(client, b.officer, recall_body(b.enterprise, distribution=[]))
    for _ in range(2):
        r = await client.post(f"{URL}/{recall['id']}/progress", json={"units_recalled": 10,
                                                                       "as_of": date.today().isoformat()},
                              headers={**bearer(b.inspector), "Idempotency-Key": "phone-42-report-7"})
        assert r.status_code == 201 and r.json()["units_recalled"] == 10
