"""The demo data set (app/demo.py): shape, consistency, determinism, users that log in, and the
`serve` rule (loaded into an empty database once, never twice)."""

from __future__ import annotations

import asyncio
import os
import re
from collections import Counter
from datetime import date
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from app import cli, demo
from app.config import get_settings
from app.db import create_database_if_missing, drop_database
from app.migrations import upgrade
from app.services import uscc
from tests.conftest import bearer, login

SIZE = 400  # the default is 3,000; a smaller province keeps the test fast
AS_OF = date(2026, 11, 28)
CHECK_KEYS = {"licensed", "conditions_met", "standard_production", "no_safety_hazard", "no_fraud"}
NATIONAL_NUMBER = re.compile(r"^XK[0-9]{2}-[0-9]{3}-[0-9]{5}$")
PROVINCIAL_NUMBER = re.compile(r"^（浙）XK[0-9]{2}-[0-9]{3}-[0-9]{5}$")


async def rows(conn: AsyncConnection, sql: str, **params: Any) -> list[Any]:
    return list((await conn.execute(text(sql), params)).all())


@pytest.fixture
async def loaded(connection: AsyncConnection) -> demo.DemoResult:
    return await demo.load_demo(connection, size=SIZE, as_of=AS_OF)


async def test_enterprises_cover_categories_counties_and_sizes(connection: AsyncConnection,
                                                               loaded: demo.DemoResult) -> None:
    ents = await rows(connection, "SELECT e.uscc, e.name, e.region_code, e.size, e.category_codes,"
                                  " e.legal_representative, e.address, r.level"
                                  " FROM enterprise e JOIN region r ON r.code = e.region_code")
    assert len(ents) == SIZE == loaded.enterprises
    key_top = {r.code for r in await rows(
        connection, "SELECT code FROM product_category WHERE key AND parent_code IS NULL")}
    assert len(key_top) == 10
    assert {c for e in ents for c in e.category_codes if c in key_top} == key_top
    for e in ents:
        tops = [c for c in e.category_codes if len(c) == 2]
        assert len(tops) == 1 and any(c.startswith(tops[0]) and len(c) == 4 for c in e.category_codes), e
        assert e.region_code.startswith("33") and e.level == "county"
        assert e.uscc[2:8] == e.region_code and uscc.problem(e.uscc) is None, e.uscc
        assert e.name.endswith(("公司", "厂", "场", "经营部")) and e.legal_representative
        assert e.address.startswith("浙江省")
    assert len({e.uscc for e in ents}) == SIZE
    assert len({e.region_code for e in ents}) >= 30  # spread over the province's 90 counties
    sizes = Counter(e.size for e in ents)
    assert sizes["small"] > 0.6 * SIZE and 0 < sizes["large"] < sizes["medium"] < sizes["small"]


async def test_licences_and_licensed_flag(connection: AsyncConnection, loaded: demo.DemoResult) -> None:
    lic = await rows(connection, "SELECT number, issuer_level, status, issued_on, expires_on, region_code,"
                                 " category_code FROM license")
    assert lic
    for x in lic:
        pattern = NATIONAL_NUMBER if x.issuer_level == "national" else PROVINCIAL_NUMBER
        assert pattern.match(x.number), x.number
        assert re.search(r"XK(\d{2})-", x.number).group(1) == x.category_code  # type: ignore[union-attr]
        assert x.issued_on < x.expires_on
        if x.status == "valid":
            assert x.expires_on >= AS_OF
        if x.expires_on < AS_OF:
            assert x.status == "expired"
    statuses = Counter(x.status for x in lic)
    assert statuses["valid"] > statuses["expired"] > 0
    # licensed <=> a valid, unexpired licence
    inconsistent = await rows(connection, """
        SELECT e.id FROM enterprise e
        WHERE e.licensed <> EXISTS (SELECT 1 FROM license l WHERE l.enterprise_id = e.id
                                     AND l.status = 'valid' AND l.expires_on >= :d)""", d=AS_OF)
    assert inconsistent == []
    unlicensed = [r for r in await rows(connection, "SELECT licensed FROM enterprise") if not r.licensed]
    assert 0.04 * SIZE <= len(unlicensed) <= 0.12 * SIZE
    never = await rows(connection, "SELECT e.id FROM enterprise e WHERE NOT EXISTS "
                                    "(SELECT 1 FROM license l WHERE l.enterprise_id = e.id)")
    assert never, "some producers never held a licence (found by the sweep)"


async def test_inspections_checks_samples_and_cases(connection: AsyncConnection, loaded: demo.DemoResult) -> None:
    ins = await rows(connection, """
        SELECT i.id, i.enterprise_id, i.kind, i.checks, i.samples, i.conclusion, i.officers, i.case_id,
               i.inspected_at, i.region_code, e.region_code AS e_region, e.licensed, e.created_at
        FROM inspection i JOIN enterprise e ON e.id = i.enterprise_id""")
    assert len(ins) == loaded.inspections
    kinds = Counter(i.kind for i in ins)
    assert set(kinds) == {"sweep", "routine", "annual_review", "complaint", "spot_check"}
    swept = {i.enterprise_id for i in ins if i.kind == "sweep"}
    assert len(swept) >= 0.9 * SIZE
    failed_samples = total_samples = 0
    for i in ins:
        assert set(i.checks) == CHECK_KEYS
        assert all(isinstance(c["ok"], bool) and set(c) == {"ok", "note"} for c in i.checks.values())
        all_ok = all(c["ok"] for c in i.checks.values())
        assert i.conclusion == ("compliant" if all_ok else "issues_found")
        assert i.checks["licensed"]["ok"] == i.licensed
        assert len(i.officers) == 2 and len(set(i.officers)) == 2
        assert i.region_code == i.e_region
        assert i.inspected_at.date() < AS_OF and i.inspected_at >= i.created_at
        if i.kind == "spot_check":
            assert i.samples, "a spot check has samples"
            for s in i.samples:
                assert set(s) == {"product", "batch", "standard", "lab", "passed", "failed_items"}
                assert bool(s["failed_items"]) != s["passed"]
                total_samples += 1
                failed_samples += not s["passed"]
            if any(not s["passed"] for s in i.samples):
                assert i.conclusion == "issues_found"
        else:
            assert i.samples == []
    assert total_samples >= 50
    assert 0.05 <= failed_samples / total_samples <= 0.2
    cases = await rows(connection, "SELECT c.id, c.status, c.inspection_id, c.enterprise_id, c.region_code,"
                                   " i.case_id, i.conclusion, i.enterprise_id AS i_enterprise,"
                                   " i.region_code AS i_region"
                                   " FROM penalty_case c JOIN inspection i ON i.id = c.inspection_id")
    assert len(cases) == loaded.cases > 0
    for c in cases:
        assert c.status == "registered" and c.case_id == c.id and c.conclusion == "issues_found"
        assert c.enterprise_id == c.i_enterprise and c.region_code == c.i_region
    assert len([i for i in ins if i.case_id]) == len(cases)


async def test_recalls_follow_failed_spot_checks_and_the_dashboard_counts_them(connection: AsyncConnection,
                                                                             loaded: demo.DemoResult) -> None:
    recalls = await rows(connection, "SELECT r.*, c.kind, c.enterprise_id AS case_enterprise FROM recall r"
                                     " JOIN penalty_case c ON c.id = r.case_id")
    assert len(recalls) == loaded.recalls > 0
    for r in recalls:
        assert r.kind == "nonconforming_products" and r.case_enterprise == r.enterprise_id
        assert 0 <= r.units_recalled <= r.units_sold <= r.units_made
        assert sum(d["units_sold"] for d in r.distribution) == r.units_sold
        assert r.status == ("completed" if r.units_recalled == r.units_sold else
                            "overdue" if r.deadline < AS_OF else "open")
    progress = dict((await connection.execute(text(
        "SELECT recall_id, sum(units_recalled) FROM recall_progress GROUP BY recall_id"))).all())
    assert {r.id: r.units_recalled for r in recalls if r.units_recalled} == progress
    # the campaign counters were rebuilt after the load: the recall figure is the records' sum
    got = (await connection.execute(text(
        "SELECT sum(recall_sold), sum(recall_recalled) FROM campaign_delta d JOIN campaign c ON c.id = d.campaign_id"
        " WHERE c.code = '2007'"))).one()
    assert tuple(got) == (sum(r.units_sold for r in recalls), sum(r.units_recalled for r in recalls))


async def test_one_user_per_role_and_level_logs_in(connection: AsyncConnection, loaded: demo.DemoResult,
                                                  client: httpx.AsyncClient) -> None:
    users = loaded.users
    assert {(u.region_code, u.roles) for u in users} == {
        (region, (role,)) for region in ("000000", "330000", "330100", "330106")
        for role in ("inspector", "officer", "leader", "admin")}
    levels = {"000000": "national", "330000": "provincial", "330100": "city", "330106": "county"}
    for u in users:
        token = (await login(client, u.username, u.password))["access_token"]
        me = (await client.get("/api/v1/me", headers=bearer(token))).json()
        assert (me["region_code"], me["level"], me["roles"]) == (u.region_code, levels[u.region_code], list(u.roles))
    stored = await rows(connection, "SELECT password_hash FROM app_user WHERE username = ANY(:u)",
                        u=[u.username for u in users])
    assert len(stored) == 16 and all(r.password_hash.startswith("$argon2") for r in stored)
    table = demo.users_table(users)
    assert all(u.username in table and u.password in table for u in users)
    # the county inspector sees its county's producers only
    token = (await login(client, "xihu.inspector", next(u.password for u in users if u.username == "xihu.inspector")))
    r = await client.get("/api/v1/enterprises", params={"limit": 200}, headers=bearer(token["access_token"]))
    assert r.status_code == 200, r.text
    items = r.json()["items"]
    assert items and {e["region_code"] for e in items} == {"330106"}


async def test_one_audit_event_for_the_load(connection: AsyncConnection, loaded: demo.DemoResult) -> None:
    events = await rows(connection, "SELECT action, entity_type, after FROM audit_event WHERE action = 'demo.load'")
    assert len(events) == 1
    assert events[0].after["enterprises"] == SIZE and "bypass the audit log" in events[0].after["note"]
    assert await rows(connection, "SELECT id FROM audit_event WHERE entity_type IN ('enterprise', 'inspection')") == []


async def test_deterministic_and_refuses_a_second_load(connection: AsyncConnection) -> None:
    async def once() -> tuple[list[Any], ...]:
        sp = await connection.begin_nested()
        try:
            await demo.load_demo(connection, size=120, as_of=AS_OF, audit_event=False)
            return (await rows(connection, "SELECT id, uscc, name, region_code, category_codes, licensed"
                                           " FROM enterprise ORDER BY id"),
                    await rows(connection, "SELECT id, number, status FROM license ORDER BY id"),
                    await rows(connection, "SELECT id, enterprise_id, kind, checks, samples, inspected_at"
                                           " FROM inspection ORDER BY id"))
        finally:
            await sp.rollback()

    first, second = await once(), await once()
    assert [r.uscc for r in first[0]] == [r.uscc for r in second[0]]
    assert first == second
    await demo.load_demo(connection, size=50, as_of=AS_OF, audit_event=False)
    with pytest.raises(demo.DemoDataPresent):
        await demo.load_demo(connection, size=50, as_of=AS_OF, audit_event=False)


async def test_serve_loads_the_demo_into_an_empty_database_once(database_url: str,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    parts = urlsplit(database_url)
    url = parts._replace(path=f"/regulator_demo_{os.getpid()}").geturl()
    settings = get_settings()
    await drop_database(url)
    await create_database_if_missing(url)
    try:
        await asyncio.to_thread(upgrade, url)
        await cli._load(settings, url)
        assert await cli._demo(settings, url, size=60, seed=demo.DEFAULT_SEED, as_of=AS_OF, only_if_empty=True)
        out = capsys.readouterr().out
        assert "60 enterprises" in out and "xihu.inspector" in out and "passwords are shown only now" in out
        # a second start finds enterprises and loads nothing, prints nothing
        assert not await cli._demo(settings, url, size=60, seed=demo.DEFAULT_SEED, as_of=AS_OF, only_if_empty=True)
        assert "xihu.inspector" not in capsys.readouterr().out
        # `demo` on a loaded database says why it does nothing
        assert not await cli._demo(settings, url, size=60, seed=demo.DEFAULT_SEED, as_of=AS_OF, only_if_empty=False)
        assert "demo data not loaded" in capsys.readouterr().out
    finally:
        await drop_database(url)
