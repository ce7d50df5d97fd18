"""The quality archive: every section assembled from the records, an inspection showing at once,
a bounded number of queries whatever the history, jurisdiction."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncConnection

from app.models.archive import Archive
from app.models.case import CaseKind
from tests.conftest import ADMIN_PASSWORD, bearer, login, user_token
from tests.routers.archive_data import (
    create_enterprise,
    create_license,
    days_ago,
    insert_case,
    insert_inspection,
    sample,
    today,
)

SECTIONS = {"basic", "production", "licenses", "spot_checks", "annual_reviews", "inspections", "cases",
            "bad_records", "recalls"}


@asynccontextmanager
async def count_queries(connection: AsyncConnection) -> AsyncIterator[list[str]]:
    """Every statement run on the test's connection: through SQLAlchemy, and straight on asyncpg
    (app.db.raw_fetch, which SQLAlchemy's events do not see)."""
    statements: list[str] = []

    def before(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        statements.append(statement)

    def logged(record: Any) -> None:
        statements.append(record.query)

    sync = connection.sync_connection
    assert sync is not None
    driver = (await connection.get_raw_connection()).driver_connection
    event.listen(sync, "before_cursor_execute", before)
    driver.add_query_logger(logged)
    try:
        yield statements
    finally:
        event.remove(sync, "before_cursor_execute", before)
        driver.remove_query_logger(logged)


async def archive(client, token: str, enterprise_id: str) -> dict[str, Any]:
    r = await client.get(f"/api/v1/enterprises/{enterprise_id}/archive", headers=bearer(token))
    assert r.status_code == 200, r.text
    out: dict[str, Any] = r.json()
    # the archive is written without building the model: it must be the very bytes the model writes
    assert Archive.model_validate(out).model_dump_json().encode() == r.content
    return out


async def post_failed_spot_check(client, token: str, enterprise: dict[str, Any]) -> dict[str, Any]:
    """A spot check made today through the API, one sample failed."""
    r = await client.post("/api/v1/inspections", headers=bearer(token), json={
        "enterprise_id": enterprise["id"], "kind": "spot_check", "inspected_at": days_ago(0).isoformat(),
        "officers": ["王芳", "李强"], "conclusion": "issues_found", "samples": [sample(False)],
        "checks": {k: {"ok": True} for k in ("licensed", "conditions_met", "standard_production",
                                              "no_safety_hazard", "no_fraud")}})
    assert r.status_code == 201, r.text
    out: dict[str, Any] = r.json()
    return out


async def test_archive_assembles_every_section_from_the_records(client, admin_token, sessionmaker):
    e = await create_enterprise(client, admin_token, category_codes=["05", "0501", "06"])
    lic = await create_license(client, admin_token, e, category_code="0501")
    old = await create_license(client, admin_token, e, category_code="06",
                               issued_on=(today() - timedelta(days=3000)).isoformat(),
                               expires_on=(today() - timedelta(days=10)).isoformat())
    spot = await insert_inspection(sessionmaker, e, kind="spot_check", at=days_ago(5),
                                   samples=[sample(True), sample(False)])
    annual = await insert_inspection(sessionmaker, e, kind="annual_review", at=days_ago(40))
    sweep = await insert_inspection(sessionmaker, e, kind="sweep", at=days_ago(60))
    complaint = await insert_inspection(sessionmaker, e, kind="complaint", at=days_ago(3),
                                        failed=("standard_production",))
    case = await insert_case(sessionmaker, e, kind=CaseKind.nonconforming_products)

    a = await archive(client, admin_token, e["id"])
    assert SECTIONS <= set(a)
    assert a["basic"]["id"] == e["id"] and a["basic"]["uscc"] == e["uscc"] and a["basic"]["licensed"] is True
    assert {f["criterion"] for f in a["basic"]["key_flags"]} == {"spot_check_problems", "past_violations"}
    prod = a["production"]
    assert prod["licensed"] is True and prod["size"] == "medium"
    assert [(c["code"], c["name"], c["licensed"]) for c in prod["categories"]] == [
        ("05", "电线电缆", True), ("0501", "额定电压450/750V及以下聚氯乙烯绝缘电缆", True), ("06", "燃气器具", False)]
    assert prod["licenses"] | {"next_expiry": None} == {"total": 2, "valid": 1, "expired": 1, "suspended": 0,
                                                        "revoked": 0, "cancelled": 0, "next_expiry": None}
    assert prod["licenses"]["next_expiry"] == lic["expires_on"]
    assert [(x["id"], x["status"]) for x in a["licenses"]] == [(lic["id"], "valid"), (old["id"], "expired")]
    assert [x["id"] for x in a["spot_checks"]] == [str(spot)]
    assert [s["passed"] for s in a["spot_checks"][0]["samples"]] == [True, False]
    assert a["spot_checks"][0]["samples"][1]["failed_items"] == ["导体电阻"]
    assert [x["id"] for x in a["annual_reviews"]] == [str(annual)]
    assert [x["id"] for x in a["inspections"]] == [str(complaint), str(sweep)]  # newest first
    assert [(x["id"], x["kind"], x["status"]) for x in a["cases"]] == [(str(case), "nonconforming_products",
                                                                       "registered")]
    assert a["bad_records"] == [] and a["recalls"] == []


async def test_an_inspection_shows_in_the_archive_as_soon_as_it_is_made(client, admin_token, sessionmaker):
    e = await create_enterprise(client, admin_token)
    assert (await archive(client, admin_token, e["id"]))["inspections"] == []
    first = await insert_inspection(sessionmaker, e, kind="routine")
    assert [x["id"] for x in (await archive(client, admin_token, e["id"]))["inspections"]] == [str(first)]


async def test_an_inspection_posted_through_the_api_shows_at_once(client, admin_token):
    e = await create_enterprise(client, admin_token)
    inspector = await user_token(client, admin_token, username="xh.insp", region_code="330106", roles=["inspector"])
    made = await post_failed_spot_check(client, inspector, e)
    a = await archive(client, inspector, e["id"])
    assert [x["id"] for x in a["spot_checks"]] == [made["id"]]
    assert "spot_check_problems" in [f["criterion"] for f in a["basic"]["key_flags"]]


async def test_archive_query_count_does_not_grow_with_the_history(client, admin_token, sessionmaker, connection):
    small = await create_enterprise(client, admin_token)
    big = await create_enterprise(client, admin_token)
    await insert_inspection(sessionmaker, small, kind="sweep")
    await create_license(client, admin_token, small)
    await insert_case(sessionmaker, small, kind=CaseKind.counterfeit)
    for _ in range(4):
        await create_license(client, admin_token, big)
        await insert_case(sessionmaker, big, kind=CaseKind.counterfeit)
    for i, kind in enumerate(["sweep", "routine", "complaint", "annual_review", "spot_check"] * 4):
        await insert_inspection(sessionmaker, big, kind=kind, at=days_ago(i),
                                samples=[sample(i % 2 == 0), sample(True)] if kind == "spot_check" else None)

    await archive(client, admin_token, small["id"])  # asyncpg looks up types it sees the first time
    async with count_queries(connection) as few:
        await archive(client, admin_token, small["id"])
    async with count_queries(connection) as many:
        a = await archive(client, admin_token, big["id"])
    assert len(a["licenses"]) == 4 and len(a["cases"]) == 4 and len(a["spot_checks"]) == 4
    assert len(a["inspections"]) == 12 and len(a["annual_reviews"]) == 4
    assert len(many) == len(few), many
    selects = [s for s in many if s.lstrip().upper().startswith("SELECT")]
    # the enterprise with its kept facts, licences, inspections, category names, cases
    assert len(selects) == 5, selects
    plain = await create_enterprise(client, admin_token)  # no case, bad record or recall: no query for them
    async with count_queries(connection) as least:
        await archive(client, admin_token, plain["id"])
    assert len([s for s in least if s.lstrip().upper().startswith("SELECT")]) == 4, least


async def test_archive_outside_the_jurisdiction_is_404(client, admin_token):
    theirs = await create_enterprise(client, admin_token, region_code="330102")
    county = await user_token(client, admin_token, username="xh.viewer", region_code="330106", roles=["leader"])
    r = await client.get(f"/api/v1/enterprises/{theirs['id']}/archive", headers=bearer(county))
    assert r.status_code == 404 and r.json()["code"] == "enterprise_not_found"
    city = await user_token(client, admin_token, username="hz.viewer", region_code="330100", roles=["leader"])
    assert (await archive(client, city, theirs["id"]))["basic"]["id"] == theirs["id"]


async def test_every_record_in_the_archive_reads_as_its_own_endpoint_shows_it(client, admin_token, sessionmaker):
    """The archive reads its records in its own statements: each must come out exactly as the records'
    own endpoints show them, for a county officer as for the national admin."""
    e = await create_enterprise(client, admin_token, category_codes=["05", "0501"])
    await create_license(client, admin_token, e)
    await create_license(client, admin_token, e, category_code="0501",
                         issued_on=(today() - timedelta(days=3000)).isoformat(),
                         expires_on=(today() - timedelta(days=1)).isoformat())  # valid in the row, shown expired
    inspector = await user_token(client, admin_token, username="xh.same", region_code="330106", roles=["inspector"])
    r = await client.post("/api/v1/inspections", headers=bearer(inspector), json={
        "enterprise_id": e["id"], "kind": "spot_check", "inspected_at": "2026-03-01T09:30:00.123456+08:00",
        "officers": ["王芳", "李强"], "conclusion": "issues_found", "notes": "抽样两批",
        "location": {"lat": 30.25, "lng": 120.1}, "samples": [sample(False), sample(True)],
        "checks": {k: {"ok": k != "no_fraud", "note": "标签不符" if k == "no_fraud" else None}
                   for k in ("licensed", "conditions_met", "standard_production", "no_safety_hazard", "no_fraud")}})
    assert r.status_code == 201, r.text
    for kind in ("annual_review", "sweep", "complaint"):
        await insert_inspection(sessionmaker, e, kind=kind, failed=("conditions_met",), notes={"conditions_met": "缺"})
    await insert_case(sessionmaker, e, kind=CaseKind.counterfeit)
    for token in (inspector, admin_token):
        a = await archive(client, token, e["id"])
        one = await client.get(f"/api/v1/enterprises/{e['id']}", headers=bearer(token))
        assert a["basic"] == one.json() and a["basic"]["key_flags"]
        shown = a["spot_checks"] + a["annual_reviews"] + a["inspections"]
        assert len(shown) == 4
        for x in shown:
            assert x == (await client.get(f"/api/v1/inspections/{x['id']}", headers=bearer(token))).json()
        listed = await client.get("/api/v1/licenses", headers=bearer(token), params={"enterprise_id": e["id"]})
        assert sorted(a["licenses"], key=lambda x: x["id"]) == sorted(listed.json()["items"], key=lambda x: x["id"])
        assert sorted(x["status"] for x in a["licenses"]) == ["expired", "valid"]
        assert a["production"]["licenses"]["expired"] == 1
        # the archive lists a case without its measures and the actions open to the caller
        listed_only = {"measures", "goods_under_seal", "premises_closed", "allowed_actions"}
        assert len(a["cases"]) == 1
        for x in a["cases"]:
            one = (await client.get(f"/api/v1/cases/{x['id']}", headers=bearer(token))).json()
            assert {k: v for k, v in x.items() if k not in listed_only} == \
                {k: v for k, v in one.items() if k not in listed_only}


async def test_a_licence_for_a_sub_product_covers_the_category_it_belongs_to(client, admin_token):
    """The archive knows a licence's category (its parent) even when the enterprise is filed only under
    the parent: the categories of its licences are read with its own."""
    e = await create_enterprise(client, admin_token, category_codes=["05", "06"])
    await create_license(client, admin_token, e, category_code="0501")
    a = await archive(client, admin_token, e["id"])
    assert [(c["code"], c["name"], c["licensed"]) for c in a["production"]["categories"]] == [
        ("05", "电线电缆", True), ("06", "燃气器具", False)]


async def test_on_a_pooled_engine_the_list_and_archive_read_what_was_committed(live_client, live_app):
    """Read-only GETs borrow a pooled connection per raw statement (app.db.raw_fetch) when the app runs on
    an engine, as in production; the other tests' sessions share one test connection instead."""
    admin = str((await login(live_client, "admin", ADMIN_PASSWORD))["access_token"])
    e = await create_enterprise(live_client, admin, name="西湖区借连接电缆有限公司")
    await create_license(live_client, admin, e)
    inspector = await user_token(live_client, admin, username="live.insp", region_code="330106", roles=["inspector"])
    other = await user_token(live_client, admin, username="live.other", region_code="330102", roles=["leader"])
    made = await post_failed_spot_check(live_client, inspector, e)

    one = (await live_client.get(f"/api/v1/enterprises/{e['id']}", headers=bearer(inspector))).json()
    for query in ({"region": "330106"}, {"q": "借连接"}, {"key": "true"}):
        listed = await live_client.get("/api/v1/enterprises", params=query, headers=bearer(inspector))
        assert listed.status_code == 200, listed.text
        assert [x for x in listed.json()["items"] if x["id"] == e["id"]] == [one], query
    assert one["licensed"] is True and "spot_check_problems" in [f["criterion"] for f in one["key_flags"]]
    a = await archive(live_client, inspector, e["id"])
    assert a["basic"] == one and [x["id"] for x in a["spot_checks"]] == [made["id"]]
    assert len(a["licenses"]) == 1
    # another county sees none of it
    assert (await live_client.get(f"/api/v1/enterprises/{e['id']}/archive", headers=bearer(other))).status_code == 404
    theirs = await live_client.get("/api/v1/enterprises", params={"q": "借连接"}, headers=bearer(other))
    assert theirs.status_code == 200 and theirs.json()["items"] == []
    # a bad cursor is a problem; and after all of it no connection is left checked out
    for raw in (b">s:yesterday~s:nobody", b">dt:2026-01-01T00:00:00+00:00~s:nobody"):
        cursor = base64.urlsafe_b64encode(raw).decode().rstrip("=")
        bad = await live_client.get("/api/v1/enterprises", params={"cursor": cursor}, headers=bearer(inspector))
        assert bad.status_code == 422 and bad.json()["code"] == "invalid_cursor", bad.text
    pool = live_app.state.sessionmaker.kw["bind"].sync_engine.pool
    assert pool.checkedout() == 0
