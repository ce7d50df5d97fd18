"""Licences: number formats, issuer level, category and dates, `licensed` following the licences,
expiry kept current (on read and by the job, audited), jurisdiction."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta

import asyncpg
import pytest
from sqlalchemy import text

from app import scope as scope_mod
from app.models.enterprise import LicenseStatus
from app.scope import Scope
from app.services import license as license_service
from app.workers import jobs
from tests.conftest import ADMIN_PASSWORD, assert_problem, bearer, login, user_token
from tests.routers.archive_data import create_enterprise, create_license, license_body, today
from tests.test_migrations import libpq


async def audit_actions(connection, entity_id: str) -> list[str]:
    rows = await connection.execute(text("SELECT action FROM audit_event WHERE entity_id = :id ORDER BY id"),
                                    {"id": entity_id})
    return [r[0] for r in rows]


async def test_national_licence_makes_the_enterprise_licensed(client, admin_token, connection):
    e = await create_enterprise(client, admin_token)
    assert e["licensed"] is False
    r = await client.post("/api/v1/licenses", headers=bearer(admin_token),
                          json=license_body(e, number="XK05-001-00018"))
    assert r.status_code == 201, r.text
    lic = r.json()
    assert (lic["number"], lic["status"], lic["issuer_level"], lic["region_code"]) == (
        "XK05-001-00018", "valid", "national", "330106")
    assert r.headers["ETag"] == '"1"' and r.headers["Location"] == f"/api/v1/licenses/{lic['id']}"
    got = (await client.get(f"/api/v1/enterprises/{e['id']}", headers=bearer(admin_token))).json()
    assert got["licensed"] is True and got["version"] == 2
    assert "unlicensed" not in [f["criterion"] for f in got["key_flags"]]
    assert await audit_actions(connection, lic["id"]) == ["license.create"]
    assert await audit_actions(connection, e["id"]) == ["enterprise.create", "enterprise.licensed"]


@pytest.mark.parametrize("number", ["(浙)XK05-001-00018", "（浙）XK05-001-00018", "(浙）XK05-001-00018",
                                    " （浙）xk05-001-00018 "])
async def test_provincial_numbers_are_stored_with_full_width_parentheses(client, admin_token, number):
    e = await create_enterprise(client, admin_token)
    lic = await create_license(client, admin_token, e, number=number, issuer_level="provincial")
    assert lic["number"] == "（浙）XK05-001-00018" and lic["issuer_level"] == "provincial"


@pytest.mark.parametrize("abbr", ["黔", "贵"])
async def test_a_province_with_two_abbreviations_accepts_both(client, admin_token, abbr):
    e = await create_enterprise(client, admin_token, region_code="520102")
    lic = await create_license(client, admin_token, e, number=f"({abbr})XK05-001-00018", issuer_level="provincial")
    assert lic["number"] == f"（{abbr}）XK05-001-00018"


@pytest.mark.parametrize("number", ["XK5-001-00018", "XK05-001-0018", "XK05-01-00018", "XK05001-00018",
                                    "ZJ05-001-00018", "XK05-001-000189", "[浙]XK05-001-00018",
                                    "(浙江)XK05-001-00018", "浙XK05-001-00018", "(A)XK05-001-00018"])
async def test_malformed_numbers_are_422(client, admin_token, connection, number):
    e = await create_enterprise(client, admin_token)
    r = await client.post("/api/v1/licenses", headers=bearer(admin_token), json=license_body(e, number=number))
    assert r.status_code == 422, r.text
    assert r.json()["code"] in ("invalid_license_number", "validation_error")
    assert (await connection.execute(text("SELECT count(*) FROM license"))).scalar() == 0


async def test_another_provinces_abbreviation_is_422(client, admin_token):
    e = await create_enterprise(client, admin_token)  # Zhejiang: 浙
    r = await client.post("/api/v1/licenses", headers=bearer(admin_token),
                          json=license_body(e, number="(鄂)XK05-001-00018", issuer_level="provincial"))
    assert r.status_code == 422 and r.json()["code"] == "license_province_mismatch"
    assert "浙" in r.json()["detail"] and r.json()["errors"][0]["loc"] == ["body", "number"]


@pytest.mark.parametrize(("number", "level"), [("XK05-001-00018", "provincial"), ("(浙)XK05-001-00018", "national")])
async def test_the_number_says_who_issued_it(client, admin_token, number, level):
    e = await create_enterprise(client, admin_token)
    r = await client.post("/api/v1/licenses", headers=bearer(admin_token),
                          json=license_body(e, number=number, issuer_level=level))
    assert r.status_code == 422 and r.json()["code"] == "issuer_level_mismatch"


async def test_city_or_county_is_no_licence_issuer(client, admin_token):
    e = await create_enterprise(client, admin_token)
    r = await client.post("/api/v1/licenses", headers=bearer(admin_token), json=license_body(e, issuer_level="city"))
    assert r.status_code == 422 and r.json()["errors"][0]["loc"] == ["body", "issuer_level"]


async def test_a_number_in_full_width_digits_is_no_licence_number(client, admin_token, connection):
    # Python's \d took them; the docs' pattern (ECMA \d, ASCII) did not
    e = await create_enterprise(client, admin_token)
    r = await client.post("/api/v1/licenses", headers=bearer(admin_token),
                          json=license_body(e, number="XK０５-００１-０００１８"))
    assert_problem(r, 422, "invalid_license_number")
    assert (await connection.execute(text("SELECT count(*) FROM license"))).scalar_one() == 0


async def test_category_must_be_in_the_tree(client, admin_token):
    e = await create_enterprise(client, admin_token)
    r = await client.post("/api/v1/licenses", headers=bearer(admin_token), json=license_body(e, category_code="99"))
    assert r.status_code == 422 and r.json()["code"] == "unknown_category"


@pytest.mark.parametrize("days", [0, -1])
async def test_expiry_must_follow_issue(client, admin_token, days):
    e = await create_enterprise(client, admin_token)
    issued = today() - timedelta(days=10)
    r = await client.post("/api/v1/licenses", headers=bearer(admin_token), json=license_body(
        e, issued_on=issued.isoformat(), expires_on=(issued + timedelta(days=days)).isoformat()))
    assert r.status_code == 422 and r.json()["code"] == "invalid_dates"


async def test_a_number_is_recorded_once_whatever_the_parentheses(client, admin_token):
    e = await create_enterprise(client, admin_token)
    other = await create_enterprise(client, admin_token)
    await create_license(client, admin_token, e, number="(浙)XK05-001-00018", issuer_level="provincial")
    r = await client.post("/api/v1/licenses", headers=bearer(admin_token),
                          json=license_body(other, number="（浙）XK05-001-00018", issuer_level="provincial"))
    assert r.status_code == 409 and r.json()["code"] == "license_number_taken"


async def test_licensed_follows_licences_expired_then_valid(client, admin_token):
    e = await create_enterprise(client, admin_token)
    old = await create_license(client, admin_token, e, issued_on=(today() - timedelta(days=2000)).isoformat(),
                               expires_on=(today() - timedelta(days=1)).isoformat())
    assert old["status"] == "expired"
    got = (await client.get(f"/api/v1/enterprises/{e['id']}", headers=bearer(admin_token))).json()
    assert got["licensed"] is False and got["version"] == 1
    await create_license(client, admin_token, e, expires_on=today().isoformat())  # valid through today
    got = (await client.get(f"/api/v1/enterprises/{e['id']}", headers=bearer(admin_token))).json()
    assert got["licensed"] is True


async def test_a_licence_past_its_date_reads_expired_before_the_job_and_the_job_records_it(
        client, admin_token, connection, sessionmaker):
    e = await create_enterprise(client, admin_token)
    lic = await create_license(client, admin_token, e)
    # Time passes: the licence's last day was yesterday.
    await connection.execute(text("UPDATE license SET expires_on = :d WHERE id = :id"),
                             {"d": today() - timedelta(days=1), "id": lic["id"]})
    r = await client.get(f"/api/v1/licenses/{lic['id']}", headers=bearer(admin_token))
    assert r.json()["status"] == "expired" and r.headers["ETag"] == '"1"'
    listed = lambda s: client.get("/api/v1/licenses", headers=bearer(admin_token), params={"status": s})  # noqa: E731
    assert [x["id"] for x in (await listed("expired")).json()["items"]] == [lic["id"]]
    assert (await listed("valid")).json()["items"] == []
    ent = (await client.get(f"/api/v1/enterprises/{e['id']}", headers=bearer(admin_token))).json()
    assert [f["criterion"] for f in ent["key_flags"]] == ["unlicensed"]  # flags follow the date already

    done = await jobs.run_once(sessionmaker)
    assert done["licenses_expired"] == 1
    row = (await connection.execute(text("SELECT status, version FROM license WHERE id = :id"),
                                    {"id": lic["id"]})).one()
    assert tuple(row) == ("expired", 2)
    ent = (await client.get(f"/api/v1/enterprises/{e['id']}", headers=bearer(admin_token))).json()
    assert ent["licensed"] is False
    audits = (await connection.execute(text(
        "SELECT action, actor_type, actor_name, after FROM audit_event WHERE entity_id IN (:l, :e) AND action IN "
        "('license.expire', 'enterprise.licensed') ORDER BY id"), {"l": lic["id"], "e": e["id"]})).all()
    assert [(a, t, n) for a, t, n, _ in audits] == [
        ("enterprise.licensed", "user", "admin"),  # licence created
        ("license.expire", "system", "licence-expiry job"),
        ("enterprise.licensed", "system", None)]
    assert audits[-1][3]["licensed"] is False and audits[-1][3]["cause"] == "license.expire"
    assert (await jobs.run_once(sessionmaker))["licenses_expired"] == 0


async def test_county_inspector_cannot_see_or_record_licences_of_another_county(client, admin_token):
    mine = await create_enterprise(client, admin_token, region_code="330106")
    theirs = await create_enterprise(client, admin_token, region_code="330102")
    their_lic = await create_license(client, admin_token, theirs)
    my_lic = await create_license(client, admin_token, mine)
    county = await user_token(client, admin_token, username="xh.inspector", region_code="330106",
                              roles=["inspector"])
    assert (await client.get(f"/api/v1/licenses/{their_lic['id']}", headers=bearer(county))).status_code == 404
    listed = (await client.get("/api/v1/licenses", headers=bearer(county))).json()["items"]
    assert [x["id"] for x in listed] == [my_lic["id"]]
    by_enterprise = await client.get("/api/v1/licenses", headers=bearer(county), params={"enterprise_id": theirs["id"]})
    assert by_enterprise.json()["items"] == []
    r = await client.post("/api/v1/licenses", headers=bearer(county), json=license_body(theirs))
    assert r.status_code == 404 and r.json()["code"] == "enterprise_not_found"
    r = await client.get("/api/v1/licenses", headers=bearer(county), params={"region": "330102"})
    assert r.status_code == 403 and r.json()["code"] == "not_in_jurisdiction"
    assert (await client.post("/api/v1/licenses", headers=bearer(county), json=license_body(mine))).status_code == 201


async def test_leaders_read_but_do_not_record_licences(client, admin_token):
    e = await create_enterprise(client, admin_token)
    leader = await user_token(client, admin_token, username="zj.leader", region_code="330000", roles=["leader"])
    r = await client.post("/api/v1/licenses", headers=bearer(leader), json=license_body(e))
    assert r.status_code == 403
    lic = await create_license(client, admin_token, e)
    assert (await client.get(f"/api/v1/licenses/{lic['id']}", headers=bearer(leader))).status_code == 200


async def test_list_filters(client, admin_token):
    a = await create_enterprise(client, admin_token, region_code="330106")
    b = await create_enterprise(client, admin_token, region_code="330205")
    soon = await create_license(client, admin_token, a, category_code="0501",
                                expires_on=(today() + timedelta(days=20)).isoformat())
    later = await create_license(client, admin_token, b, category_code="06")
    gone = await create_license(client, admin_token, b, category_code="05",
                                expires_on=(today() - timedelta(days=3)).isoformat())

    async def ids(**params: str) -> list[str]:
        r = await client.get("/api/v1/licenses", headers=bearer(admin_token), params=params)
        assert r.status_code == 200, r.text
        return [x["id"] for x in r.json()["items"]]

    assert await ids() == [gone["id"], later["id"], soon["id"]]  # newest first
    assert await ids(enterprise_id=b["id"]) == [gone["id"], later["id"]]
    assert await ids(category="05") == [gone["id"], soon["id"]]  # sub-products included
    assert await ids(region="330200") == [gone["id"], later["id"]]
    assert await ids(status="valid", expiring_before=(today() + timedelta(days=30)).isoformat()) == [soon["id"]]
    assert await ids(status="expired") == [gone["id"]]
    assert await ids(number=later["number"]) == [later["id"]]


async def test_idempotency_key_and_client_id_replay(client, admin_token, connection):
    e = await create_enterprise(client, admin_token)
    body = license_body(e, id="7b0e4bde-6f0c-4a43-9b1a-1f7d2c3e4a55")
    h = bearer(admin_token) | {"Idempotency-Key": "lic-1"}
    first = await client.post("/api/v1/licenses", headers=h, json=body)
    again = await client.post("/api/v1/licenses", headers=h, json=body)
    assert first.status_code == again.status_code == 201 and first.json() == again.json()
    replay = await client.post("/api/v1/licenses", headers=bearer(admin_token), json=body)
    assert replay.status_code == 201 and replay.json()["id"] == body["id"]
    clash = await client.post("/api/v1/licenses", headers=bearer(admin_token),
                              json=body | {"number": "XK05-001-99999"})
    assert clash.status_code == 409 and clash.json()["code"] == "id_conflict"
    assert (await connection.execute(text("SELECT count(*) FROM license"))).scalar() == 1


async def test_a_status_change_for_a_case_recomputes_licensed(client, admin_token, connection, sessionmaker):
    """The hook the cases workflow calls (no HTTP route changes a licence's status)."""
    e = await create_enterprise(client, admin_token)
    lic = await create_license(client, admin_token, e)
    leader = Scope(principal_id=uuid.uuid4(), principal_type="user", username="zj.leader", region_code="330000")
    async with sessionmaker() as session:
        scope_mod.attach(session.sync_session, leader)
        await license_service.set_status(session, scope=leader, license_id=uuid.UUID(lic["id"]),
                                         status=LicenseStatus.suspended, cause="case 2026-001: 暂扣")
        await session.commit()
    got = (await client.get(f"/api/v1/licenses/{lic['id']}", headers=bearer(admin_token))).json()
    assert (got["status"], got["version"]) == ("suspended", 2)
    ent = (await client.get(f"/api/v1/enterprises/{e['id']}", headers=bearer(admin_token))).json()
    assert ent["licensed"] is False and [f["criterion"] for f in ent["key_flags"]] == ["unlicensed"]
    assert await audit_actions(connection, lic["id"]) == ["license.create", "license.status"]


async def test_the_expiry_job_takes_the_producer_before_the_rows_a_committing_request_wants_after_it(
        live_client, live_app, database_url):
    """A request committing an inspection locks the producer (FOR SHARE) and then its campaign and key
    facts rows (migrations 0018, 0020). The job must take the producer first too: had it expired the
    licence first, it would hold the facts row and then wait for the producer, a deadlock."""
    admin = str((await login(live_client, "admin", ADMIN_PASSWORD))["access_token"])
    e = await create_enterprise(live_client, admin)
    await create_license(live_client, admin, e)
    request = await asyncpg.connect(libpq(database_url))
    probe = await asyncpg.connect(libpq(database_url))
    try:
        await request.execute("UPDATE license SET expires_on = CURRENT_DATE - 1 WHERE enterprise_id = $1",
                              uuid.UUID(e["id"]))
        await request.execute("BEGIN")
        await request.execute("SELECT 1 FROM enterprise WHERE id = $1 FOR SHARE", uuid.UUID(e["id"]))
        job = asyncio.create_task(jobs.run_once(live_app.state.sessionmaker))
        await asyncio.sleep(0.5)
        assert not job.done()  # waiting for the producer
        # ... and holding nothing the request would want next
        await probe.execute("BEGIN")
        facts = await probe.fetch("SELECT 1 FROM enterprise_key_facts WHERE enterprise_id = $1 FOR UPDATE NOWAIT",
                                  uuid.UUID(e["id"]))
        assert len(facts) == 1
        await probe.execute("ROLLBACK")
        await request.execute("ROLLBACK")
        done = await asyncio.wait_for(job, 10)
        assert done["licenses_expired"] == 1
        row = await probe.fetchrow("SELECT e.licensed, l.status FROM enterprise e"
                                   " JOIN license l ON l.enterprise_id = e.id WHERE e.id = $1", uuid.UUID(e["id"]))
        assert tuple(row) == (False, "expired")
    finally:
        await request.close()
        await probe.close()
