"""通报 to machine clients over HTTP: who reads which notification, receipts on the case timeline,
webhook subscriptions and the outbox worker (signed, retried, exactly one accepted delivery per event
id), the pull feed in commit order with the same event ids, and the public bad-record list."""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from app.config import get_settings
from app.routers import public
from app.services import audit
from app.workers import delivery
from tests.conftest import assert_problem, bearer
from tests.routers.case_data import FINE, Bureaus, act, make_bureaus, ok, scalar, timeline, to_decided
from tests.routers.test_archive import archive as read_archive
from tests.routers.test_inspections import XIHU, ZHEJIANG

SA_URL = "/api/v1/service-accounts"


async def sealed(sessionmaker: Any) -> None:
    """What the background sealer does every few seconds: the feed shows committed changes once chained."""
    async with sessionmaker() as session:
        await audit.seal(session)
        await session.commit()


@pytest.fixture
async def b(client: httpx.AsyncClient, admin_token: str) -> Bureaus:
    return await make_bureaus(client, admin_token)


async def machine(client: httpx.AsyncClient, admin: str, *, name: str, region: str, agency: str | None,
                  scopes: list[str]) -> tuple[str, dict[str, Any]]:
    r = await client.post(SA_URL, headers=bearer(admin), json={
        "name": name, "region_code": region, "scopes": scopes, **({"agency": agency} if agency else {})})
    assert r.status_code == 201, r.text
    sa = r.json()
    assert sa["agency"] == agency
    r = await client.post("/api/v1/auth/token", data={"grant_type": "client_credentials", "client_id": sa["client_id"],
                                                      "client_secret": sa["client_secret"]})
    assert r.status_code == 200, r.text
    return r.json()["access_token"], sa


@pytest.fixture
async def market(client: httpx.AsyncClient, admin_token: str) -> str:
    """The provincial market regulator's system (工商), reading the 通报 addressed to it in Zhejiang."""
    token, _ = await machine(client, admin_token, name="浙江省市场监管局", region=ZHEJIANG, agency="market_regulator",
                             scopes=["notifications:read", "events:read", "cases:read"])
    return token


@pytest.fixture
async def bank(client: httpx.AsyncClient, admin_token: str) -> str:
    token, _ = await machine(client, admin_token, name="人民银行杭州中心支行", region=ZHEJIANG, agency="bank",
                             scopes=["notifications:read"])
    return token


# --- notifications and receipts -----------------------------------------------------------------

async def test_each_agency_reads_only_the_notifications_addressed_to_it(client, b, market, bank):
    case = await to_decided(client, b)  # licensed producer: market regulator, bank, local government
    r = await client.get("/api/v1/notifications", headers=bearer(market))
    assert r.status_code == 200, r.text
    mine = r.json()["items"]
    assert [(n["recipient"], n["case_id"], n["automatic"]) for n in mine] == [
        ("market_regulator", case["id"], True)]
    assert mine[0]["event_id"] is not None and mine[0]["status"] == "pending"
    banks = (await client.get("/api/v1/notifications", headers=bearer(bank))).json()["items"]
    assert [n["recipient"] for n in banks] == ["bank"]
    # the bank's notification is invisible to the market regulator, as if it did not exist
    assert_problem(await client.get(f"/api/v1/notifications/{banks[0]['id']}", headers=bearer(market)), 404)
    staff = (await client.get("/api/v1/notifications", params={"case_id": case["id"]},
                              headers=bearer(b.officer))).json()["items"]
    assert sorted(n["recipient"] for n in staff) == ["bank", "local_government", "market_regulator"]
    assert (await client.get("/api/v1/notifications", headers=bearer(b.sibling))).json()["items"] == []


async def test_a_client_without_the_scope_or_agency_reads_nothing(client, admin_token, b):
    await to_decided(client, b)
    no_scope, _ = await machine(client, admin_token, name="no scope", region=ZHEJIANG, agency="market_regulator",
                                scopes=["enterprises:read"])
    assert_problem(await client.get("/api/v1/notifications", headers=bearer(no_scope)), 403, "scope_missing")
    no_agency, _ = await machine(client, admin_token, name="no agency", region=ZHEJIANG, agency=None,
                                 scopes=["notifications:read"])
    r = await client.get("/api/v1/notifications", headers=bearer(no_agency))
    assert r.status_code == 200 and r.json()["items"] == []


async def test_notify_action_files_notifications_and_the_receipt_shows_on_the_case(client, b, market, connection):
    case = await to_decided(client, b)
    case = await ok(client, b.officer, case, "notify", {"recipients": ["market_regulator", "judicial"],
                                                        "recipient_name": "杭州市西湖区市场监督管理局",
                                                        "content": "该企业生产不合格电线，请依法处理。"})
    notes = (await client.get("/api/v1/notifications", headers=bearer(market))).json()["items"]
    manual = [n for n in notes if not n["automatic"]]
    assert len(manual) == 1 and manual[0]["recipient_name"] == "杭州市西湖区市场监督管理局"
    r = await client.post(f"/api/v1/notifications/{manual[0]['id']}/receipt", headers=bearer(market),
                          json={"measures_taken": "已吊销其营业执照"})
    assert r.status_code == 200, r.text
    assert r.json()["receipt_measures"] == "已吊销其营业执照" and r.json()["status"] == "delivered"
    r = await client.post(f"/api/v1/notifications/{manual[0]['id']}/receipt", headers=bearer(market),
                          json={"measures_taken": "again"})
    assert_problem(r, 409, "already_acknowledged")
    assert_problem(await client.post(f"/api/v1/notifications/{manual[0]['id']}/receipt", headers=bearer(b.inspector),
                                     json={"measures_taken": "x"}), 403, "role_not_permitted")
    last = (await timeline(client, b.officer, case))[-1]
    assert last["action"] == "receipt" and last["detail"]["measures_taken"] == "已吊销其营业执照"
    assert await scalar(connection, "SELECT count(*) FROM audit_event WHERE action = 'notification.receipt'") == 1


@pytest.mark.parametrize("body", [{}, {"measures_taken": ""}, {"measures_taken": "x", "extra": 1}])
async def test_a_bad_receipt_is_422_and_changes_nothing(client, b, market, body):
    await to_decided(client, b)
    n = (await client.get("/api/v1/notifications", headers=bearer(market))).json()["items"][0]
    assert_problem(await client.post(f"/api/v1/notifications/{n['id']}/receipt", headers=bearer(market), json=body),
                   422)
    assert (await client.get(f"/api/v1/notifications/{n['id']}", headers=bearer(market))).json()["receipt_at"] is None


# --- webhooks -----------------------------------------------------------------------------------

@dataclass
class Receiver:
    """A receiving agency's endpoint: down for the first ``failures`` calls, then up; it checks the
    signature and keeps each event once."""

    secret: str
    failures: int
    calls: list[str] = field(default_factory=list)
    kept: dict[str, dict[str, Any]] = field(default_factory=dict)

    def __call__(self, request: httpx.Request) -> httpx.Response:
        event_id = request.headers["x-event-id"]
        self.calls.append(event_id)
        expected = "sha256=" + hmac.new(self.secret.encode(), request.headers["x-timestamp"].encode() + b"." +
                                        request.content, hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, request.headers["x-signature"]):
            return httpx.Response(401)
        if len(self.calls) <= self.failures:
            return httpx.Response(503)
        self.kept.setdefault(event_id, json.loads(request.content))
        return httpx.Response(204)


async def subscribe(client: httpx.AsyncClient, token: str, url: str = "https://gs.example.gov.cn/hooks") -> dict:
    r = await client.post("/api/v1/webhooks", headers=bearer(token), json={"url": url})
    assert r.status_code == 201, r.text
    out: dict[str, Any] = r.json()
    return out


async def test_a_receiver_that_fails_twice_then_succeeds_gets_the_notification_exactly_once(
        client, b, market, sessionmaker, connection):
    sub = await subscribe(client, market)
    assert len(sub["secret"]) >= 40
    case = await to_decided(client, b)
    receiver = Receiver(secret=sub["secret"], failures=2)
    settings = get_settings().model_copy(update={"delivery_backoff_base_seconds": 0.0})
    async with httpx.AsyncClient(transport=httpx.MockTransport(receiver)) as http:
        rounds = [await delivery.run_once(sessionmaker, settings, http) for _ in range(5)]
    assert rounds[:3] == [{"delivered": 0, "retried": 1, "failed": 0}, {"delivered": 0, "retried": 1, "failed": 0},
                          {"delivered": 1, "retried": 0, "failed": 0}]
    assert rounds[3:] == [{"delivered": 0, "retried": 0, "failed": 0}] * 2
    assert len(receiver.calls) == 3 and len(set(receiver.calls)) == 1  # the same event id every time
    assert len(receiver.kept) == 1
    (event_id, payload), = receiver.kept.items()
    assert payload["notification"]["case_id"] == case["id"] and payload["notification"]["recipient"] == \
        "market_regulator"
    assert str(payload["event_id"]) == event_id
    n = (await client.get("/api/v1/notifications", headers=bearer(market))).json()["items"][0]
    assert n["status"] == "delivered" and n["attempts"] == 3 and n["delivered_at"]
    # the same id is the change's id in the pull feed
    await sealed(sessionmaker)
    feed = (await client.get("/api/v1/events", params={"entity_type": "notification"},
                             headers=bearer(market))).json()["items"]
    assert [str(e["id"]) for e in feed] == [event_id]
    # only the market regulator subscribed: the bank's and the local government's stay queued for pulling
    assert await scalar(connection, "SELECT count(*) FROM webhook_delivery") == 1


async def test_a_receiver_that_stays_down_is_failed_after_the_last_attempt_and_can_be_redelivered(
        client, b, market, sessionmaker, connection):
    sub = await subscribe(client, market)
    await to_decided(client, b)
    settings = get_settings().model_copy(update={"delivery_backoff_base_seconds": 0.0, "delivery_max_attempts": 2})
    receiver = Receiver(secret=sub["secret"], failures=100)
    async with httpx.AsyncClient(transport=httpx.MockTransport(receiver)) as http:
        counts = [await delivery.run_once(sessionmaker, settings, http) for _ in range(3)]
        assert [c["failed"] for c in counts] == [0, 1, 0]
        n = (await client.get("/api/v1/notifications", headers=bearer(market))).json()["items"][0]
        assert n["status"] == "failed" and n["attempts"] == 2
        assert_problem(await client.post(f"/api/v1/notifications/{n['id']}/redeliver", headers=bearer(b.inspector)),
                       403)
        r = await client.post(f"/api/v1/notifications/{n['id']}/redeliver", headers=bearer(b.leader))
        assert r.status_code == 200 and r.json()["status"] == "pending"
        receiver.failures = 0
        assert (await delivery.run_once(sessionmaker, settings, http))["delivered"] == 1
    assert len(receiver.kept) == 1


async def test_webhooks_are_for_machine_clients_and_can_be_ended(client, b, market, sessionmaker):
    r = await client.post("/api/v1/webhooks", headers=bearer(b.officer), json={"url": "https://x.example/h"})
    assert_problem(r, 403, "machine_clients_only")
    assert_problem(await client.post("/api/v1/webhooks", headers=bearer(market), json={"url": "not a url"}), 422)
    sub = await subscribe(client, market)
    listed = (await client.get("/api/v1/webhooks", headers=bearer(market))).json()["items"]
    assert [w["id"] for w in listed] == [sub["id"]] and "secret" not in listed[0]
    assert (await client.delete(f"/api/v1/webhooks/{sub['id']}", headers=bearer(market))).status_code == 204
    assert (await client.get("/api/v1/webhooks", headers=bearer(market))).json()["items"] == []
    assert_problem(await client.delete(f"/api/v1/webhooks/{sub['id']}", headers=bearer(market)), 404)
    await to_decided(client, b)
    async with httpx.AsyncClient(transport=httpx.MockTransport(lambda r: httpx.Response(200))) as http:
        assert (await delivery.run_once(sessionmaker, get_settings(), http))["delivered"] == 0


# --- the pull feed ------------------------------------------------------------------------------

async def test_the_feed_is_in_commit_order_and_resumes_from_its_cursor(client, b, sessionmaker):
    case = await to_decided(client, b)
    await sealed(sessionmaker)
    r = await client.get("/api/v1/events", params={"entity_type": "penalty_case"}, headers=bearer(b.nat_leader))
    assert r.status_code == 200, r.text
    first = r.json()
    assert [e["type"] for e in first["items"]] == ["penalty_case.create", "penalty_case.investigate",
                                                   "penalty_case.propose_decision", "penalty_case.approve"]
    assert all(e["entity_id"] == case["id"] for e in first["items"])
    seqs = [e["seq"] for e in first["items"]]
    assert seqs == sorted(seqs)
    again = (await client.get("/api/v1/events", params={"entity_type": "penalty_case", "cursor": first["next_cursor"]},
                              headers=bearer(b.nat_leader))).json()
    assert again["items"] == [] and again["next_cursor"] == first["next_cursor"]
    await ok(client, b.inspector, case, "record_execution")
    await sealed(sessionmaker)
    new = (await client.get("/api/v1/events", params={"entity_type": "penalty_case", "cursor": first["next_cursor"]},
                            headers=bearer(b.nat_leader))).json()
    assert [e["type"] for e in new["items"]] == ["penalty_case.record_execution"]
    # a sibling county's staff see none of it; accounts never appear in the feed
    sibling = (await client.get("/api/v1/events", headers=bearer(b.sibling))).json()["items"]
    assert [e for e in sibling if e["entity_id"] == case["id"]] == []
    types = {e["entity_type"] for e in (await client.get("/api/v1/events", params={"limit": 1000},
                                                         headers=bearer(b.nat_leader))).json()["items"]}
    assert "user" not in types and "service_account" not in types


@pytest.mark.parametrize("cursor", ["!!", "c2VxOi0x", "Zm9vOjE", "c2VxOmFiYw"])  # garbage, seq:-1, foo:1, seq:abc
async def test_a_foreign_feed_cursor_is_422(client, b, cursor):
    assert_problem(await client.get("/api/v1/events", params={"cursor": cursor}, headers=bearer(b.officer)), 422,
                   "invalid_cursor")


async def test_machine_clients_need_events_read_and_see_their_agency_only(client, admin_token, b, market, bank,
                                                                          sessionmaker):
    await to_decided(client, b)
    await sealed(sessionmaker)
    assert_problem(await client.get("/api/v1/events", headers=bearer(bank)), 403, "scope_missing")
    feed = (await client.get("/api/v1/events", params={"entity_type": "notification"},
                             headers=bearer(market))).json()["items"]
    assert [e["data"]["recipient"] for e in feed] == ["market_regulator"]


# --- the public bad-record list -----------------------------------------------------------------

PERSONAL = {"legal_representative", "address", "created_by", "actor", "actor_id", "proposed_by", "by", "officers",
            "username", "display_name"}


def keys(value: Any) -> set[str]:
    if isinstance(value, dict):
        return set(value) | set().union(*(keys(v) for v in value.values()))
    if isinstance(value, list):
        return set().union(*(keys(v) for v in value)) if value else set()
    return set()


async def test_public_bad_records_hold_no_personal_fields(client, b, admin_token):
    public.reset_rate_limits()
    case = await to_decided(client, b)
    r = await client.get("/api/public/v1/bad-records")  # no token
    assert r.status_code == 200, r.text
    items = r.json()["items"]
    assert len(items) == 1
    rec = items[0]
    assert rec["enterprise_name"] == b.enterprise["name"] and rec["uscc"] == b.enterprise["uscc"]
    assert rec["violation"] == "nonconforming_products" and rec["region_code"] == XIHU
    assert [p["type"] for p in rec["penalties"]] == ["fine", "warning"] and rec["penalties"][0]["amount"] == "15000.00"
    assert not keys(items) & PERSONAL, keys(items) & PERSONAL
    assert "case_id" not in rec and "enterprise_id" not in rec
    # the archive shows it to staff, with its case
    archive = await read_archive(client, b.officer, b.enterprise["id"])
    assert [x["case_id"] for x in archive["bad_records"]] == [case["id"]]
    assert (await client.get("/api/public/v1/bad-records", params={"region": "320000"})).json()["items"] == []
    assert_problem(await client.get("/api/public/v1/bad-records", params={"region": "33"}), 422)


async def test_the_public_api_is_rate_limited(client, app):
    public.reset_rate_limits()
    app.state.settings = get_settings().model_copy(update={"public_rate_limit": "3/minute"})
    try:
        codes = [(await client.get("/api/public/v1/bad-records")).status_code for _ in range(4)]
        assert codes == [200, 200, 200, 429]
        r = await client.get("/api/public/v1/bad-records")
        assert_problem(r, 429, "rate_limited")
        assert 1 <= int(r.headers["retry-after"]) <= 61
    finally:
        public.reset_rate_limits()


async def test_a_stale_if_match_on_an_action_changes_nothing(client, b, connection):
    case = await to_decided(client, b, FINE)
    assert_problem(await act(client, b.inspector, case, "record_execution", version=case["version"] - 1), 412)
    assert await scalar(connection, "SELECT count(*) FROM bad_record") == 1
    assert (await connection.execute(text("SELECT status FROM penalty_case WHERE id = :id"),
                                     {"id": case["id"]})).scalar_one() == "decided"


# --- review mends -------------------------------------------------------------------------------

async def test_machine_clients_read_cases_and_feed_kinds_only_with_their_scopes(client, b, market, bank,
                                                                                   sessionmaker):
    case = await to_decided(client, b)
    assert (await client.get(f"/api/v1/cases/{case['id']}", headers=bearer(market))).status_code == 200
    for path in (f"/api/v1/cases/{case['id']}", f"/api/v1/cases/{case['id']}/timeline", "/api/v1/cases"):
        assert_problem(await client.get(path, headers=bearer(bank)), 403, "scope_missing")
    await sealed(sessionmaker)
    kinds = {e["entity_type"] for e in (await client.get("/api/v1/events", params={"limit": 1000},
                                                         headers=bearer(market))).json()["items"]}
    assert kinds == {"penalty_case", "notification"}  # no enterprises:read, no inspections:read


async def test_subscribing_needs_the_scope_an_agency_and_a_usable_url(client, admin_token, market):
    no_scope, _ = await machine(client, admin_token, name="s1", region=ZHEJIANG, agency="bank", scopes=["events:read"])
    assert_problem(await client.post("/api/v1/webhooks", headers=bearer(no_scope), json={"url": "https://a.example/h"}),
                   403, "scope_missing")
    no_agency, _ = await machine(client, admin_token, name="s2", region=ZHEJIANG, agency=None,
                                 scopes=["notifications:read"])
    assert_problem(await client.post("/api/v1/webhooks", headers=bearer(no_agency),
                                     json={"url": "https://a.example/h"}), 403, "no_agency")
    assert_problem(await client.post("/api/v1/webhooks", headers=bearer(market),
                                     json={"url": "http://xn--zz-zzz.com/"}), 422, "invalid_webhook_url")


async def test_one_failing_receiver_does_not_hold_up_the_others(client, b, admin_token, market, sessionmaker):
    bank_token, _ = await machine(client, admin_token, name="bank2", region=ZHEJIANG, agency="bank",
                                  scopes=["notifications:read"])
    good = await subscribe(client, market, "https://good.example/h")
    await subscribe(client, bank_token, "https://broken.example/h")
    await to_decided(client, b)
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.host == "broken.example":
            raise RuntimeError("not an httpx error")
        seen.append(request.headers["x-event-id"])
        return httpx.Response(200)

    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as http:
        counts = await delivery.run_once(sessionmaker, get_settings(), http)
    assert counts == {"delivered": 1, "retried": 1, "failed": 0} and len(seen) == 1
    assert good["secret"]


async def test_redeliver_does_not_revive_an_ended_subscription(client, b, market, sessionmaker, connection):
    sub = await subscribe(client, market)
    await to_decided(client, b)
    assert (await client.delete(f"/api/v1/webhooks/{sub['id']}", headers=bearer(market))).status_code == 204
    n = (await client.get("/api/v1/notifications", headers=bearer(market))).json()["items"][0]
    r = await client.post(f"/api/v1/notifications/{n['id']}/redeliver", headers=bearer(b.leader))
    assert r.status_code == 200
    assert await scalar(connection, "SELECT count(*) FROM webhook_delivery WHERE status = 'pending'") == 0
    async with httpx.AsyncClient(transport=httpx.MockTransport(lambda r: httpx.Response(200))) as http:
        assert (await delivery.run_once(sessionmaker, get_settings(), http))["delivered"] == 0


async def test_a_notice_addressed_to_one_agency_system_reaches_only_that_system(client, admin_token, b, market,
                                                                                 sessionmaker):
    other, other_sa = await machine(client, admin_token, name="杭州市市场监管局", region=ZHEJIANG,
                                    agency="market_regulator", scopes=["notifications:read"])
    mine_sa = (await client.get("/api/v1/service-accounts", headers=bearer(admin_token))).json()["items"]
    market_sa = next(s for s in mine_sa if s["name"] == "浙江省市场监管局")
    case = await to_decided(client, b)
    for bad, code in (({"recipient_client_id": "sa-nope"}, "unknown_recipient_client"),
                      ({"recipient_client_id": market_sa["client_id"], "recipients": ["market_regulator", "bank"]},
                       "one_recipient_kind"),
                      ({"recipient_client_id": market_sa["client_id"], "recipients": ["bank"]},
                       "unknown_recipient_client")):
        body = {"recipients": ["market_regulator"], "content": "专送"} | bad
        assert_problem(await act(client, b.officer, case, "notify", body), 422, code)
    sub_market = await subscribe(client, market, "https://zj.example/h")
    await subscribe(client, other, "https://hz.example/h")
    case = await ok(client, b.officer, case, "notify", {"recipients": ["market_regulator"], "content": "专送浙江省局",
                                                        "recipient_client_id": market_sa["client_id"]})
    addressed = [n for n in (await client.get("/api/v1/notifications", headers=bearer(market))).json()["items"]
                 if not n["automatic"]]
    assert len(addressed) == 1 and addressed[0]["recipient_account"] == market_sa["id"]
    theirs = [n for n in (await client.get("/api/v1/notifications", headers=bearer(other))).json()["items"]
              if not n["automatic"]]
    assert theirs == []
    assert_problem(await client.get(f"/api/v1/notifications/{addressed[0]['id']}", headers=bearer(other)), 404)
    hosts: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        hosts.append(request.url.host)
        return httpx.Response(204)

    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as http:
        await delivery.run_once(sessionmaker, get_settings(), http)
    assert hosts == ["zj.example"] and sub_market["secret"] and other_sa["id"]


async def test_machine_clients_see_bureaus_not_staff_names(client, b, market, sessionmaker):
    case = await to_decided(client, b)
    seen = (await client.get(f"/api/v1/cases/{case['id']}", headers=bearer(market))).json()
    assert "proposed_by" not in seen["decision"] and all("by" not in a for a in seen["decision"]["approvals"])
    assert {a["bureau"] for a in seen["decision"]["approvals"]} == {XIHU}
    staff = (await client.get(f"/api/v1/cases/{case['id']}", headers=bearer(b.officer))).json()
    assert staff["decision"]["proposed_by"] == "xh.off"
    timeline = (await client.get(f"/api/v1/cases/{case['id']}/timeline", headers=bearer(market))).json()["items"]
    assert {e["actor"] for e in timeline} == {XIHU}
    await sealed(sessionmaker)
    feed = (await client.get("/api/v1/events", params={"entity_type": "penalty_case"},
                             headers=bearer(market))).json()["items"]
    assert feed and all("proposed_by" not in (e["data"].get("decision") or {}) for e in feed)
    # the enterprise's archive shows the case as GET /cases/{id} does
    reader, _ = await machine(client, b.admin, name="浙江省信用平台", region=ZHEJIANG, agency="market_regulator",
                              scopes=["enterprises:read", "cases:read"])
    archived = (await read_archive(client, reader, b.enterprise["id"]))["cases"]
    assert [x["decision"] for x in archived] == [
        (await client.get(f"/api/v1/cases/{case['id']}", headers=bearer(reader))).json()["decision"]]
    assert "proposed_by" not in archived[0]["decision"]
    by_staff = (await read_archive(client, b.officer, b.enterprise["id"]))["cases"]
    assert by_staff[0]["decision"]["proposed_by"] == "xh.off"


async def test_webhooks_point_only_at_allowed_hosts_when_a_list_is_set(client, app, market):
    app.state.settings = get_settings().model_copy(update={"webhook_allowed_hosts": "gs.example.gov.cn, .saic.gov.cn"})
    for url in ("http://127.0.0.1:5432/x", "https://evil.example/h", "https://gs.example.gov.cn.evil.example/h"):
        assert_problem(await client.post("/api/v1/webhooks", headers=bearer(market), json={"url": url}), 422,
                       "webhook_host_not_allowed")
    for url in ("https://gs.example.gov.cn/h", "https://hook.zj.saic.gov.cn/h"):
        assert (await client.post("/api/v1/webhooks", headers=bearer(market), json={"url": url})).status_code == 201


async def test_every_router_asks_machine_clients_for_its_scope(client, admin_token, bank):
    """bank: notifications:read only. Archives, inspections, cases, recalls, reports and reference data
    each need their own scope; a client holding it reads."""
    for path in ("/api/v1/enterprises", "/api/v1/inspections", "/api/v1/licenses", "/api/v1/cases",
                 "/api/v1/recalls", "/api/v1/reports", "/api/v1/campaigns", "/api/v1/regions",
                 "/api/v1/key-regions/designations"):
        assert_problem(await client.get(path, headers=bearer(bank)), 403, "scope_missing")
    reader, _ = await machine(client, admin_token, name="档案读取", region=ZHEJIANG, agency=None,
                              scopes=["enterprises:read", "regions:read"])
    for path in ("/api/v1/enterprises", "/api/v1/licenses", "/api/v1/regions"):
        assert (await client.get(path, headers=bearer(reader))).status_code == 200
    assert_problem(await client.get("/api/v1/inspections", headers=bearer(reader)), 403, "scope_missing")
