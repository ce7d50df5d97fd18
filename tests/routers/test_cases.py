"""/api/v1/cases over HTTP: filing, every transition of the workflow table and a refused one per
state, authority per level (approval chains, needs_escalation), allowed_actions per caller, the
seed's rules (confiscation, bad record, 通报, no fine instead of prosecution), measures and goods
under seal, escalations and the inbox, If-Match, overdue cases and the rendered table."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text

from app.services import case_workflow
from tests.conftest import ADMIN_PASSWORD, assert_problem, bearer, login, user_token
from tests.routers.case_data import (
    BASIS,
    FINE,
    REVOKE,
    SEAL,
    SUSPEND,
    URL,
    Bureaus,
    act,
    file_case,
    get_case,
    make_bureaus,
    ok,
    scalar,
    timeline,
    to_decided,
    to_pending,
)
from tests.routers.test_inspections import HANGZHOU, SHANGCHENG, XIHU, ZHEJIANG, create_enterprise
from tests.routers.test_inspections import body as inspection_body


@pytest.fixture
async def b(client: httpx.AsyncClient, admin_token: str) -> Bureaus:
    return await make_bureaus(client, admin_token)


# --- filing -------------------------------------------------------------------------------------

async def test_filing_registers_the_case_with_its_deadline_timeline_and_audit(client, b, connection):
    before = datetime.now(UTC)
    case = await file_case(client, b.inspector, b.enterprise, source="complaint", facts="群众举报电线线径不足")
    assert case["status"] == "registered" and case["region_code"] == XIHU and case["bureau_code"] == XIHU
    assert case["source"] == "complaint" and case["version"] == 1 and case["possibly_criminal"] is False
    deadline = datetime.fromisoformat(case["deadline"])
    assert before + timedelta(days=7) <= deadline <= datetime.now(UTC) + timedelta(days=7)
    assert case["overdue"] is False
    assert set(case["allowed_actions"]) == {"investigate", "add_measure", "flag_criminal", "escalate"}
    events = await timeline(client, b.inspector, case)
    assert [(e["action"], e["from_status"], e["to_status"], e["actor"]) for e in events] == [
        ("register", None, "registered", "xh.insp")]
    assert await scalar(connection, "SELECT count(*) FROM audit_event WHERE action = 'penalty_case.create'"
                        " AND entity_id = :id", id=case["id"]) == 1


async def test_an_inspection_with_open_case_files_a_case_the_workflow_takes_over(client, b):
    r = await client.post("/api/v1/inspections", headers=bearer(b.inspector), json=inspection_body(
        b.enterprise["id"], "conditions_met", open_case=True))
    assert r.status_code == 201, r.text
    case = await get_case(client, b.inspector, {"id": r.json()["case_id"]})
    assert case["kind"] == "lowered_conditions" and case["inspection_id"] == r.json()["id"]
    assert case["bureau_code"] == XIHU and case["status"] == "registered" and case["deadline"]
    assert "investigate" in case["allowed_actions"]
    events = await timeline(client, b.inspector, case)
    assert [(e["action"], e["detail"]["cause"]) for e in events] == [("register", "inspection")]
    assert (await ok(client, b.inspector, case, "investigate"))["status"] == "investigating"


async def test_another_county_neither_sees_nor_files_nor_acts(client, b, connection):
    case = await file_case(client, b.inspector, b.enterprise)
    for path in (f"{URL}/{case['id']}", f"{URL}/{case['id']}/timeline"):
        assert_problem(await client.get(path, headers=bearer(b.sibling)), 404)
    assert_problem(await act(client, b.sibling, case, "investigate"), 404)
    r = await client.get(URL, headers=bearer(b.sibling))
    assert case["id"] not in [c["id"] for c in r.json()["items"]]
    r = await client.post(URL, headers=bearer(b.sibling), json={"enterprise_id": b.enterprise["id"], "kind": "other"})
    assert_problem(r, 404)
    assert await scalar(connection, "SELECT count(*) FROM penalty_case WHERE enterprise_id = :e",
                        e=b.enterprise["id"]) == 1


async def test_leaders_do_not_file_cases(client, b):
    r = await client.post(URL, headers=bearer(b.leader), json={"enterprise_id": b.enterprise["id"], "kind": "other"})
    assert_problem(r, 403, "role_not_permitted")


async def test_a_region_filter_outside_the_jurisdiction_is_403(client, b):
    assert_problem(await client.get(URL, params={"region": SHANGCHENG}, headers=bearer(b.officer)), 403,
                   "not_in_jurisdiction")


# --- the whole lifecycle ------------------------------------------------------------------------

async def test_full_lifecycle_of_a_licensed_producer_case(client, b, connection):
    case = await file_case(client, b.inspector, b.enterprise)
    case = await ok(client, b.inspector, case, "investigate")
    assert case["status"] == "investigating" and case["version"] == 2
    case = await ok(client, b.inspector, case, "add_measure", SEAL)
    assert case["goods_under_seal"] == 1 and case["measures"][0]["items"][0]["quantity"] == "120"
    seal_id = case["measures"][0]["id"]
    case = await ok(client, b.officer, case, "propose_decision", FINE)
    assert case["status"] == "pending_approval" and case["awaiting_bureau"] == XIHU
    assert case["decision"]["chain"] == [XIHU] and case["decision"]["penalties"][0]["amount"] == "15000.00"
    case = await ok(client, b.leader, case, "approve", {"comment": "同意"})
    assert case["status"] == "decided" and case["awaiting_bureau"] is None

    # licensed producer: a published bad record and the automatic 通报 (DOMAIN.md §6, seed §3.3)
    assert await scalar(connection, "SELECT count(*) FROM bad_record WHERE case_id = :c AND published",
                        c=case["id"]) == 1
    recipients = (await connection.execute(text(
        "SELECT recipient FROM notification WHERE case_id = :c AND automatic ORDER BY recipient"),
        {"c": case["id"]})).scalars().all()
    assert recipients == ["bank", "local_government", "market_regulator"]

    r = await act(client, b.officer, case, "close")
    assert_problem(r, 409, "penalties_unexecuted")
    case = await ok(client, b.inspector, case, "record_execution", {"note": "罚款已缴"})
    assert all(p["executed_at"] for p in case["decision"]["penalties"])
    assert_problem(await act(client, b.officer, case, "close"), 409, "goods_under_seal")
    case = await ok(client, b.inspector, case, "add_measure",
                    {"type": "release", "releases": seal_id, "legal_basis": BASIS})
    assert case["goods_under_seal"] == 0
    case = await ok(client, b.officer, case, "close")
    assert case["status"] == "closed" and case["closed_at"] and case["deadline"] is None
    assert case["allowed_actions"] == []

    events = await timeline(client, b.leader, case)
    assert [e["action"] for e in events] == ["register", "investigate", "add_measure", "propose_decision", "approve",
                                            "record_execution", "add_measure", "close"]
    assert events[4]["actor"] == "xh.lead" and events[4]["detail"]["comment"] == "同意"
    assert await scalar(connection, "SELECT count(*) FROM audit_event WHERE entity_id = :id"
                        " AND action LIKE 'penalty_case.%'", id=case["id"]) == 8


async def test_reject_sends_the_decision_back_to_investigation(client, b):
    case = await to_pending(client, b, FINE)
    case = await ok(client, b.leader, case, "reject", {"comment": "罚款依据不足"})
    assert case["status"] == "investigating" and case["decision"] is None and case["awaiting_bureau"] is None
    case = await ok(client, b.officer, case, "propose_decision", FINE)
    assert case["status"] == "pending_approval"


@pytest.mark.parametrize(("state", "action"), [
    ("registered", "propose_decision"), ("investigating", "approve"), ("pending_approval", "close"),
    ("decided", "investigate"), ("closed", "add_measure"), ("transferred", "close"),
])
async def test_an_illegal_transition_in_each_state_is_409_and_changes_nothing(client, b, connection, state, action):
    case = await file_case(client, b.inspector, b.enterprise)
    if state == "transferred":
        case = await ok(client, b.leader, case, "transfer",
                        {"to": "department", "recipient": "杭州市西湖区市场监督管理局", "reason": "属工商管辖"})
    elif state != "registered":
        case = await ok(client, b.inspector, case, "investigate")
        if state != "investigating":
            case = await ok(client, b.officer, case, "propose_decision", FINE)
        if state in ("decided", "closed"):
            case = await ok(client, b.leader, case, "approve")
        if state == "closed":
            case = await ok(client, b.inspector, case, "record_execution")
            case = await ok(client, b.officer, case, "close")
    assert case["status"] == state
    token = {"propose_decision": b.officer, "approve": b.leader, "close": b.officer}.get(action, b.inspector)
    body = {"propose_decision": FINE, "add_measure": SEAL}.get(action)
    problem = assert_problem(await act(client, token, case, action, body), 409, "transition_not_allowed")
    assert problem["status"] == 409 and state in problem["detail"]
    after = await get_case(client, b.leader, case)
    assert after["status"] == state and after["version"] == case["version"]


# --- authority ----------------------------------------------------------------------------------

async def test_roles_are_checked_per_action(client, b):
    case = await file_case(client, b.inspector, b.enterprise)
    assert_problem(await act(client, b.leader, case, "investigate"), 403, "role_not_permitted")
    case = await ok(client, b.inspector, case, "investigate")
    assert_problem(await act(client, b.inspector, case, "propose_decision", FINE), 403, "role_not_permitted")
    case = await ok(client, b.officer, case, "propose_decision", FINE)
    assert_problem(await act(client, b.officer, case, "approve"), 403, "role_not_permitted")
    assert_problem(await act(client, b.inspector, case, "approve"), 403, "role_not_permitted")


async def test_county_and_city_leaders_cannot_approve_a_suspension_the_province_does(client, b, connection):
    case = await to_pending(client, b, SUSPEND)
    assert case["awaiting_bureau"] == ZHEJIANG
    for token in (b.leader, b.city_leader):
        problem = assert_problem(await act(client, token, case, "approve"), 403, "needs_escalation")
        assert problem["approver_bureau"] == ZHEJIANG and problem["escalation"]["action"] == "escalate"
    problem = assert_problem(await act(client, b.nat_leader, case, "approve"), 403, "not_approving_bureau")
    case = await ok(client, b.prov_leader, case, "approve", {"comment": "同意暂扣"})
    assert case["status"] == "decided"
    r = await client.get("/api/v1/licenses", params={"enterprise_id": b.enterprise["id"]}, headers=bearer(b.admin))
    assert [lic["status"] for lic in r.json()["items"]] == ["suspended"]
    r = await client.get(f"/api/v1/enterprises/{b.enterprise['id']}", headers=bearer(b.admin))
    assert r.json()["licensed"] is False


async def test_a_revocation_needs_the_province_then_the_nation_and_its_time_is_recorded(client, b):
    case = await to_pending(client, b, REVOKE)
    assert case["decision"]["chain"] == [ZHEJIANG, "000000"]
    assert case["decision"]["penalties"][1]["amount"] == "50000.00"  # money: a decimal string, 2 places
    assert_problem(await act(client, b.leader, case, "approve"), 403, "needs_escalation")
    case = await ok(client, b.prov_leader, case, "approve")
    assert case["status"] == "pending_approval" and case["awaiting_bureau"] == "000000"
    assert case["decision"]["national_received_at"]
    # the province cannot finalise it
    problem = assert_problem(await act(client, b.prov_leader, case, "approve"), 403, "needs_escalation")
    assert problem["approver_bureau"] == "000000"
    r = await client.get("/api/v1/licenses", params={"enterprise_id": b.enterprise["id"]}, headers=bearer(b.admin))
    assert [lic["status"] for lic in r.json()["items"]] == ["valid"]
    case = await ok(client, b.nat_leader, case, "approve", {"comment": "即收即批"})
    assert case["status"] == "decided" and case["revocation_approval_seconds"] >= 0
    r = await client.get("/api/v1/licenses", params={"enterprise_id": b.enterprise["id"]}, headers=bearer(b.admin))
    assert [lic["status"] for lic in r.json()["items"]] == ["revoked"]
    r = await client.get(f"{URL}/revocation-times", headers=bearer(b.nat_leader))
    assert r.status_code == 200 and r.json()["revocations"] == 1
    assert r.json()["max_seconds"] == pytest.approx(case["revocation_approval_seconds"])
    events = await timeline(client, b.nat_leader, case)
    assert [(e["action"], e["actor_bureau"]) for e in events if e["action"] == "approve"] == [
        ("approve", ZHEJIANG), ("approve", "000000")]


async def test_allowed_actions_differ_by_caller_as_the_table_says(client, b):
    case = await file_case(client, b.inspector, b.enterprise)
    seen = {name: set((await get_case(client, tok, case))["allowed_actions"])
            for name, tok in (("inspector", b.inspector), ("officer", b.officer), ("leader", b.leader))}
    assert seen["inspector"] == {"investigate", "add_measure", "flag_criminal", "escalate"}
    assert seen["officer"] == {"investigate", "add_measure", "flag_criminal", "escalate", "notify"}
    assert seen["leader"] == {"flag_criminal", "escalate", "notify", "transfer"}

    case = await to_pending(client, b, SUSPEND)
    assert "approve" not in (await get_case(client, b.leader, case))["allowed_actions"]
    assert {"approve", "reject"} <= set((await get_case(client, b.prov_leader, case))["allowed_actions"])
    # the national bureau sees the case but is not its approver, and has no superior to ask
    national = set((await get_case(client, b.nat_leader, case))["allowed_actions"])
    assert "approve" not in national and "escalate" not in national and "transfer" in national

    # on a decision waiting for its own bureau, the county leader may approve or reject it, and does
    fine = await to_pending(client, b, FINE)
    assert set((await get_case(client, b.leader, fine))["allowed_actions"]) == {
        "approve", "reject", "notify", "flag_criminal", "transfer", "escalate"}
    assert (await ok(client, b.leader, fine, "approve"))["status"] == "decided"


# --- the seed's rules ---------------------------------------------------------------------------

async def test_close_is_refused_while_possibly_criminal_and_transfer_ends_it(client, b, connection):
    case = await to_decided(client, b)
    case = await ok(client, b.inspector, case, "flag_criminal", {"reason": "涉案货值超过五万元"})
    assert case["possibly_criminal"] is True
    case = await ok(client, b.inspector, case, "record_execution")
    assert "close" not in case["allowed_actions"]
    problem = assert_problem(await act(client, b.leader, case, "close"), 409, "possibly_criminal")
    assert "transfer" in problem["detail"]
    assert_problem(await act(client, b.inspector, case, "flag_criminal", {"reason": "again"}), 409, "already_flagged")
    case = await ok(client, b.leader, case, "transfer",
                    {"to": "judicial", "recipient": "杭州市公安局西湖区分局", "reason": "涉嫌生产销售伪劣产品罪"})
    assert case["status"] == "transferred" and case["transfer"]["recipient"] == "杭州市公安局西湖区分局"
    assert await scalar(connection, "SELECT count(*) FROM notification WHERE case_id = :c AND recipient = 'judicial'",
                        c=case["id"]) == 1


async def test_unlicensed_production_must_confiscate_and_notifies_and_reports(client, b, connection, admin_token):
    unlicensed = await create_enterprise(client, admin_token, XIHU)
    case = await file_case(client, b.inspector, unlicensed, kind="unlicensed_production")
    case = await ok(client, b.inspector, case, "investigate")
    r = await act(client, b.officer, case, "propose_decision", FINE)
    assert_problem(r, 422, "confiscation_required")
    r = await act(client, b.officer, case, "propose_decision", SUSPEND)
    assert_problem(r, 422)
    assert (await get_case(client, b.officer, case))["version"] == case["version"]
    case = await ok(client, b.officer, case, "propose_decision", {"penalties": [
        {"type": "confiscate_gains", "amount": "8600.50", "legal_basis": BASIS},
        {"type": "confiscate_goods", "items": [{"name": "电线", "quantity": "30", "unit": "卷"}],
         "legal_basis": BASIS}]})
    case = await ok(client, b.leader, case, "approve")
    rows = (await connection.execute(text(
        "SELECT recipient, content FROM notification WHERE case_id = :c ORDER BY recipient"),
        {"c": case["id"]})).all()
    assert [r[0] for r in rows] == ["local_government", "market_regulator"]
    assert "取缔" in rows[0][1]  # the written report recommends a ban
    assert await scalar(connection, "SELECT count(*) FROM bad_record WHERE case_id = :c", c=case["id"]) == 0


@pytest.mark.parametrize(("action", "body", "code"), [
    ("add_measure", {"type": "seal_goods", "items": [], "legal_basis": BASIS}, "goods_not_itemised"),
    ("add_measure", {"type": "seal_goods", "items": SEAL["items"]}, "validation_error"),
    ("add_measure", {"type": "release", "legal_basis": BASIS}, "release_needs_measure"),
    ("add_measure", {"type": "release", "releases": str(uuid.uuid4()), "legal_basis": BASIS},
     "release_target_invalid"),
    ("add_measure", {"type": "burn_goods", "legal_basis": BASIS}, "validation_error"),
    # a quantity as text is its digits, as the docs state (pydantic's Decimal also read "1e3" and " 5")
    ("add_measure", {"type": "seal_goods", "items": [{"name": "电线", "quantity": "1e3", "unit": "卷"}],
                     "legal_basis": BASIS}, "validation_error"),
    ("add_measure", {"type": "seal_goods", "items": [{"name": "电线", "quantity": " 5", "unit": "卷"}],
                     "legal_basis": BASIS}, "validation_error"),
    ("record_execution", {"penalties": [False]}, "validation_error"),  # an index, not false (0)
    ("propose_decision", {"penalties": [{"type": "fine", "legal_basis": BASIS}]}, "amount_required"),
    ("propose_decision", {"penalties": [{"type": "warning", "amount": "1", "legal_basis": BASIS}]},
     "amount_not_applicable"),
    ("propose_decision", {"penalties": [{"type": "fine", "amount": "1.005", "legal_basis": BASIS}]},
     "validation_error"),
    ("propose_decision", {"penalties": []}, "validation_error"),
    ("propose_decision", {"penalties": [{"type": "suspend_license", "legal_basis": BASIS},
                                        {"type": "revoke_license", "legal_basis": BASIS}]}, "conflicting_penalties"),
    ("escalate", {"question": ""}, "validation_error"),
])
async def test_bad_action_bodies_are_422_and_change_nothing(client, b, connection, action, body, code):
    case = await file_case(client, b.inspector, b.enterprise)
    case = await ok(client, b.inspector, case, "investigate")
    token = b.officer
    assert_problem(await act(client, token, case, action, body), 422, code)
    after = await get_case(client, b.officer, case)
    assert after["version"] == case["version"] and after["measures"] == [] and after["status"] == "investigating"
    assert await scalar(connection, "SELECT count(*) FROM case_event WHERE case_id = :c", c=case["id"]) == 2


async def test_suspending_needs_a_valid_licence(client, b, admin_token):
    unlicensed = await create_enterprise(client, admin_token, XIHU)
    case = await file_case(client, b.inspector, unlicensed)
    case = await ok(client, b.inspector, case, "investigate")
    assert_problem(await act(client, b.officer, case, "propose_decision", SUSPEND), 422, "no_valid_license")


# --- measures and goods under seal --------------------------------------------------------------

async def test_goods_under_seal_are_listed_until_released(client, b):
    case = await file_case(client, b.inspector, b.enterprise)
    case = await ok(client, b.inspector, case, "add_measure", SEAL)
    case = await ok(client, b.inspector, case, "add_measure", {"type": "copy_documents", "legal_basis": BASIS})
    seal_id = case["measures"][0]["id"]
    listed = (await client.get("/api/v1/sealed-goods", headers=bearer(b.city_leader))).json()["items"]
    assert [m["id"] for m in listed] == [seal_id]
    assert (await client.get("/api/v1/sealed-goods", headers=bearer(b.sibling))).json()["items"] == []
    case = await ok(client, b.inspector, case, "add_measure",
                    {"type": "release", "releases": seal_id, "legal_basis": BASIS})
    assert_problem(await act(client, b.inspector, case, "add_measure",
                             {"type": "release", "releases": seal_id, "legal_basis": BASIS}), 409, "already_released")
    assert (await client.get("/api/v1/sealed-goods", headers=bearer(b.city_leader))).json()["items"] == []


# --- escalation and the inbox -------------------------------------------------------------------

async def test_escalation_goes_to_the_superior_bureau_whose_answer_is_on_the_timeline(client, b):
    case = await file_case(client, b.inspector, b.enterprise)
    case = await ok(client, b.officer, case, "escalate", {"question": "该案是否属于我局管辖？"})
    inbox = (await client.get("/api/v1/inbox", headers=bearer(b.city_leader))).json()
    assert [(i["kind"], i["case_id"]) for i in inbox] == [("escalation", case["id"])]
    esc_id = inbox[0]["escalation_id"]
    assert "answer_escalation" in (await get_case(client, b.city_leader, case))["allowed_actions"]
    assert "answer_escalation" not in (await get_case(client, b.leader, case))["allowed_actions"]
    assert_problem(await act(client, b.leader, case, "answer_escalation", {"escalation_id": esc_id, "answer": "x"}),
                   403, "no_open_escalation")
    case = await ok(client, b.city_leader, case, "answer_escalation",
                    {"escalation_id": esc_id, "answer": "属你局管辖，依法查处"})
    assert (await client.get("/api/v1/inbox", headers=bearer(b.city_leader))).json() == []
    last = (await timeline(client, b.officer, case))[-1]
    assert last["action"] == "answer_escalation" and last["detail"]["answer"] == "属你局管辖，依法查处"
    assert last["actor_bureau"] == HANGZHOU
    assert_problem(await act(client, b.nat_leader, case, "escalate", {"question": "?"}), 403, "no_superior_bureau")


async def test_inbox_lists_what_waits_for_each_leader(client, b):
    fine = await to_pending(client, b, FINE)
    suspend = await to_pending(client, b, SUSPEND)

    async def waiting(token: str) -> list[tuple[str, str]]:
        r = await client.get("/api/v1/inbox", headers=bearer(token))
        assert r.status_code == 200, r.text
        return [(i["kind"], i["case_id"]) for i in r.json()]

    assert await waiting(b.leader) == [("approval", fine["id"])]
    assert await waiting(b.prov_leader) == [("approval", suspend["id"])]
    assert await waiting(b.city_leader) == []
    assert await waiting(b.inspector) == []


async def test_overdue_cases_are_listed_upward(client, b, connection):
    late = await file_case(client, b.inspector, b.enterprise)
    on_time = await file_case(client, b.inspector, b.enterprise)
    await connection.execute(text("UPDATE penalty_case SET deadline = now() - interval '1 day' WHERE id = :id"),
                             {"id": late["id"]})
    for token in (b.city_leader, b.prov_leader, b.officer):
        r = await client.get(URL, params={"overdue": "true"}, headers=bearer(token))
        assert [c["id"] for c in r.json()["items"]] == [late["id"]]
        assert r.json()["items"][0]["overdue"] is True
    r = await client.get(URL, params={"overdue": "false"}, headers=bearer(b.city_leader))
    assert [c["id"] for c in r.json()["items"]] == [on_time["id"]]
    inbox = (await client.get("/api/v1/inbox", headers=bearer(b.prov_leader))).json()
    assert [(i["kind"], i["case_id"]) for i in inbox] == [("overdue", late["id"])]
    assert (await client.get(URL, params={"overdue": "true"}, headers=bearer(b.sibling))).json()["items"] == []


# --- If-Match -----------------------------------------------------------------------------------

async def test_actions_need_a_current_if_match(client, b):
    case = await file_case(client, b.inspector, b.enterprise)
    r = await client.post(f"{URL}/{case['id']}/actions/investigate", json={}, headers=bearer(b.inspector))
    assert_problem(r, 428)
    moved = await ok(client, b.inspector, case, "add_measure", SEAL)
    problem = assert_problem(await act(client, b.inspector, case, "investigate"), 412)
    assert problem["current_version"] == moved["version"] and problem["current"]["goods_under_seal"] == 1


async def test_two_officers_acting_at_once_exactly_one_wins(live_client):
    admin = (await login(live_client, "admin", ADMIN_PASSWORD))["access_token"]
    ent = await create_enterprise(live_client, admin, XIHU)
    tokens = [await user_token(live_client, admin, username=f"race{i}", region_code=XIHU, roles=["inspector"])
              for i in range(2)]
    case = await file_case(live_client, tokens[0], ent)
    results = await asyncio.gather(
        act(live_client, tokens[0], case, "investigate"),
        act(live_client, tokens[1], case, "add_measure", SEAL))
    codes = sorted(r.status_code for r in results)
    assert codes == [200, 412], [r.text for r in results]
    after = await get_case(live_client, admin, case)
    assert after["version"] == 2
    events = await timeline(live_client, admin, case)
    assert len(events) == 2


# --- docs ---------------------------------------------------------------------------------------

async def test_the_openapi_documents_one_route_per_action_with_its_own_body(client):
    spec = (await client.get("/openapi.json")).json()
    for rule in case_workflow.RULES:
        op = spec["paths"][f"/api/v1/cases/{{case_id}}/actions/{rule.action}"]["post"]
        schema = op["requestBody"]["content"]["application/json"]["schema"]
        refs = [schema.get("$ref")] + [s.get("$ref") for s in schema.get("anyOf", [])]
        assert "#/components/schemas/" + rule.body.__name__ in refs, schema
        assert any(p["name"].lower() == "if-match" and p["in"] == "header" for p in op["parameters"])
    assert case_workflow.markdown_table() in spec["paths"]["/api/v1/cases"]["get"]["description"]


def test_readme_carries_the_workflow_diagram_generated_from_the_table():
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    assert case_workflow.readme_block() in readme, "run `python -m app.cli workflow-doc`"
    assert "```mermaid\n" + case_workflow.mermaid() + "\n```" in readme


# --- review mends -------------------------------------------------------------------------------

async def test_actions_whose_fields_are_optional_need_no_body(client, b):
    case = await file_case(client, b.inspector, b.enterprise)
    r = await client.post(f"{URL}/{case['id']}/actions/investigate",
                          headers={**bearer(b.inspector), "If-Match": f'"{case["version"]}"'})
    assert r.status_code == 200 and r.json()["status"] == "investigating"
    r = await client.post(f"{URL}/{r.json()['id']}/actions/add_measure",
                          headers={**bearer(b.inspector), "If-Match": '"2"'})
    assert_problem(r, 422, "validation_error")


async def test_nobody_approves_their_own_proposal(client, b, admin_token):
    both = await user_token(client, admin_token, username="xh.both", region_code=XIHU, roles=["officer", "leader"])
    case = await file_case(client, b.inspector, b.enterprise)
    case = await ok(client, b.inspector, case, "investigate")
    case = await ok(client, both, case, "propose_decision", FINE)
    assert "approve" not in (await get_case(client, both, case))["allowed_actions"]
    assert_problem(await act(client, both, case, "approve"), 403, "own_proposal")
    assert (await ok(client, b.leader, case, "approve"))["status"] == "decided"


async def test_a_suspended_licence_can_then_be_revoked(client, b):
    suspended = await to_pending(client, b, SUSPEND)
    await ok(client, b.prov_leader, suspended, "approve")
    case = await to_pending(client, b, REVOKE)
    case = await ok(client, b.prov_leader, case, "approve")
    case = await ok(client, b.nat_leader, case, "approve")
    r = await client.get("/api/v1/licenses", params={"enterprise_id": b.enterprise["id"]}, headers=bearer(b.admin))
    assert [lic["status"] for lic in r.json()["items"]] == ["revoked"]


async def test_only_a_licensed_producers_listed_violations_enter_the_bad_record(client, b, connection):
    case = await file_case(client, b.inspector, b.enterprise, kind="counterfeit")
    case = await ok(client, b.inspector, case, "investigate")
    case = await ok(client, b.officer, case, "propose_decision", FINE)
    case = await ok(client, b.leader, case, "approve")
    assert await scalar(connection, "SELECT count(*) FROM bad_record") == 0
    assert await scalar(connection, "SELECT count(*) FROM notification WHERE case_id = :c", c=case["id"]) == 0
    decided = await to_decided(client, b)  # nonconforming products of a licensed producer
    assert await scalar(connection, "SELECT count(*) FROM bad_record WHERE case_id = :c", c=decided["id"]) == 1
    assert await scalar(connection, "SELECT count(*) FROM audit_event WHERE action = 'bad_record.create'") == 1


async def test_closed_premises_block_closing_and_a_transferred_case_still_releases(client, b):
    case = await to_decided(client, b)
    case = await ok(client, b.inspector, case, "add_measure", {"type": "close_premises", "legal_basis": BASIS})
    closure = case["measures"][0]["id"]
    case = await ok(client, b.inspector, case, "record_execution")
    assert_problem(await act(client, b.officer, case, "close"), 409, "premises_closed")
    case = await ok(client, b.inspector, case, "add_measure", SEAL)
    case = await ok(client, b.leader, case, "transfer", {"to": "judicial", "recipient": "公安局", "reason": "涉嫌犯罪"})
    assert_problem(await act(client, b.inspector, case, "add_measure", SEAL), 422, "only_release_after_transfer")
    for measure in (closure, case["measures"][1]["id"]):
        case = await ok(client, b.inspector, case, "add_measure",
                        {"type": "release", "releases": measure, "legal_basis": BASIS})
    assert case["goods_under_seal"] == 0 and case["premises_closed"] == 0 and case["status"] == "transferred"


async def test_recording_execution_of_no_penalty_is_422(client, b):
    case = await to_decided(client, b)
    assert_problem(await act(client, b.inspector, case, "record_execution", {"penalties": []}), 422)
    assert_problem(await act(client, b.inspector, case, "record_execution", {"penalties": [7]}), 422,
                   "unknown_penalty")
