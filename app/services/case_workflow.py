"""The case workflow as ONE declarative table (issue 4): for each action, the states it leaves from,
the state it leads to, who may take it at which level, its guard and its effect.

``perform`` executes the table, ``allowed`` computes a case's ``allowed_actions`` for a caller from
it, the routes of ``/api/v1/cases/{id}/actions/{action}`` are generated from it (one route and one
typed body per action), and ``markdown_table``/``mermaid`` render it for the docs and the README.
Nothing else decides whether a transition is legal.

Checks run in this order, and the first that fails answers: the case is visible (404), ``If-Match``
is current (412), the case is in a state the action leaves from (409 ``transition_not_allowed``),
the caller holds a role the action needs (403 ``role_not_permitted``), the caller's bureau has the
authority (403 ``needs_escalation`` when a superior must act, ``not_handling_bureau`` otherwise),
the guard holds (409 with its own code), the body is valid for this case (422).

Bureaus: a case is handled by ``bureau_code`` (the bureau of whoever filed it). Staff of that bureau
and of its superiors act on it; a decision is approved step by step by the leaders of the bureaus
in its approval chain: its own bureau; a licence suspension by the provincial bureau; a revocation
by the provincial and then the national bureau (即收即批: the time from proposal to national
approval is stored).
"""

from __future__ import annotations

import inspect
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from pydantic import BaseModel
from sqlalchemy import func, or_
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from app.config import Settings
from app.errors import AppError, Conflict, InvalidTransition, NotFound, NotPermitted, Unprocessable
from app.models.case import (
    GOODS_MEASURES,
    PENALTIES_WITH_AMOUNT,
    AnswerBody,
    BadRecord,
    CaseEscalation,
    CaseEvent,
    CaseKind,
    CaseMeasure,
    CaseStatus,
    CommentBody,
    CriminalBody,
    DecisionBody,
    Empty,
    EscalateBody,
    ExecutionBody,
    MeasureBody,
    MeasureType,
    Notification,
    NotifyBody,
    PenaltyCase,
    PenaltyType,
    Recipient,
    TransferBody,
)
from app.models.common import NATIONAL_CODE, Level, Role, level_of, prefix_of, utcnow
from app.models.enterprise import Enterprise, License, LicenseStatus
from app.scope import Scope
from app.services import audit
from app.services import license as license_service
from app.services import notification as notification_service

S = CaseStatus
# §3.3: the violations of licensed producers that enter the bad record and are notified to banks
LICENSED_VIOLATIONS = frozenset({CaseKind.nonconforming_products, CaseKind.lowered_conditions,
                                 CaseKind.irregular_production, CaseKind.unrecalled_hazard})
OPEN = (S.registered, S.investigating, S.pending_approval, S.decided)
ALL = tuple(CaseStatus)


# ---- bureaus -----------------------------------------------------------------------------------

def parent_bureau(code: str) -> str | None:
    """The superior bureau: county → city → province → national; None above national."""
    level = level_of(code)
    if level is Level.national:
        return None
    if level is Level.provincial:
        return NATIONAL_CODE
    if level is Level.city:
        return code[:2] + "0000"
    return code[:4] + "00"


def bureau_at(code: str, level: Level) -> str:
    """The bureau of ``level`` above (or at) ``code``; national when ``code`` is above that level."""
    if level is Level.national or level_of(code) is Level.national:
        return NATIONAL_CODE
    if level is Level.provincial or level_of(code) is Level.provincial:
        return code[:2] + "0000"
    if level is Level.city:
        return code if level_of(code) is Level.city else code[:4] + "00"
    return code


def approval_chain(bureau: str, penalties: list[dict[str, Any]]) -> list[str]:
    """Whose leaders approve a decision, in order."""
    types = {p["type"] for p in penalties}
    if PenaltyType.revoke_license in types:
        chain = [bureau_at(bureau, Level.provincial), NATIONAL_CODE]
    elif PenaltyType.suspend_license in types:
        chain = [bureau_at(bureau, Level.provincial)]
    else:
        chain = [bureau]
    return list(dict.fromkeys(chain))


# ---- the table's vocabulary --------------------------------------------------------------------

@dataclass
class Facts:
    """What a guard or authority rule needs beyond the case row (loaded once per case or page)."""

    open_escalations: set[str] = field(default_factory=set)  # bureaus with an unanswered question
    goods_under_seal: int = 0  # seals and seizures not released
    premises_closed: int = 0  # closures not released


@dataclass
class Ctx:
    session: AsyncSession
    scope: Scope
    settings: Settings
    case: PenaltyCase
    body: Any
    now: datetime
    to_status: CaseStatus | None = None
    detail: dict[str, Any] = field(default_factory=dict)
    notifications: list[Notification] = field(default_factory=list)


Authority = Callable[[Scope, PenaltyCase, Facts], AppError | None]
Guard = Callable[[PenaltyCase, Facts], AppError | None]
Effect = Callable[[Ctx], Awaitable[None]]


def handling(scope: Scope, case: PenaltyCase, facts: Facts) -> AppError | None:
    """Staff of the handling bureau or of one of its superiors."""
    if scope.contains(case.bureau_code):
        return None
    return NotPermitted(f"case is handled by bureau {case.bureau_code}; only it and its superior bureaus act on it",
                        code="not_handling_bureau")


def approving(scope: Scope, case: PenaltyCase, facts: Facts) -> AppError | None:
    """A leader of the bureau whose approval the decision waits for."""
    awaiting = case.awaiting_bureau
    if case.decision and case.decision.get("proposed_by") == scope.username:
        return NotPermitted("you proposed this decision; another leader approves it", code="own_proposal")
    if awaiting is None or scope.region_code == awaiting:
        return None
    if scope.region_code.startswith(prefix_of(awaiting)):  # a bureau below the one that approves
        return NotPermitted(
            f"this decision needs the approval of bureau {awaiting} ({level_of(awaiting).value}), above your "
            f"authority; it waits in that bureau's inbox, and you may escalate a question to your superior bureau",
            code="needs_escalation",
            extra={"approver_bureau": awaiting,
                   "escalation": {"action": "escalate", "to_bureau": parent_bureau(scope.region_code)}})
    return NotPermitted(f"this step is approved by bureau {awaiting}, not yours", code="not_approving_bureau",
                        extra={"approver_bureau": awaiting})


def escalating(scope: Scope, case: PenaltyCase, facts: Facts) -> AppError | None:
    refused = handling(scope, case, facts)
    if refused is not None:
        return refused
    if scope.is_national:
        return NotPermitted("the national bureau has no superior to escalate to", code="no_superior_bureau")
    return None


def answering(scope: Scope, case: PenaltyCase, facts: Facts) -> AppError | None:
    if scope.region_code in facts.open_escalations:
        return None
    return NotPermitted("no question about this case waits for your bureau", code="no_open_escalation")


def no_guard(case: PenaltyCase, facts: Facts) -> AppError | None:
    return None


def unexecuted(case: PenaltyCase) -> list[int]:
    if not case.decision:
        return []
    return [i for i, p in enumerate(case.decision.get("penalties", [])) if not p.get("executed_at")]


def closable(case: PenaltyCase, facts: Facts) -> AppError | None:
    """not possibly criminal; every approved penalty executed; no goods under seal, no premises closed"""
    if case.possibly_criminal:
        return Conflict("the case is flagged possibly criminal: it cannot be closed with administrative penalties "
                        "alone and must be transferred to the judicial organs (no fine instead of prosecution)",
                        code="possibly_criminal")
    pending = unexecuted(case)
    if pending:
        return Conflict(f"approved penalties are not executed yet (indexes {pending}); record their execution first",
                        code="penalties_unexecuted", extra={"unexecuted": pending})
    if facts.goods_under_seal:
        return Conflict(f"{facts.goods_under_seal} seal or seizure of goods is not released yet",
                        code="goods_under_seal")
    if facts.premises_closed:
        return Conflict("the premises are still closed (查封); release the closure first", code="premises_closed")
    return None


def not_yet_criminal(case: PenaltyCase, facts: Facts) -> AppError | None:
    """not already flagged"""
    if case.possibly_criminal:
        return Conflict("the case is already flagged possibly criminal", code="already_flagged")
    return None


def executable(case: PenaltyCase, facts: Facts) -> AppError | None:
    """an approved penalty is unexecuted"""
    if not unexecuted(case):
        return Conflict("every approved penalty is already executed", code="nothing_to_execute")
    return None


# ---- effects -----------------------------------------------------------------------------------

async def _none(ctx: Ctx) -> None:
    if getattr(ctx.body, "note", None):
        ctx.detail["note"] = ctx.body.note


def _items(items: list[Any]) -> list[dict[str, Any]]:
    return [i.model_dump(mode="json") for i in items]


async def _add_measure(ctx: Ctx) -> None:
    b: MeasureBody = ctx.body
    case = ctx.case
    if b.type is MeasureType.release:
        if b.releases is None:
            raise Unprocessable("a release names the measure it releases (`releases`)", code="release_needs_measure")
        target = (await ctx.session.execute(select(CaseMeasure).where(
            CaseMeasure.id == b.releases, CaseMeasure.case_id == case.id).with_for_update())).scalar_one_or_none()
        if target is None or target.type in (MeasureType.release, MeasureType.copy_documents):
            raise Unprocessable(f"{b.releases} is not a seal, seizure or closure of this case",
                                code="release_target_invalid")
        if target.released_at is not None:
            raise Conflict(f"measure {target.id} was already released", code="already_released")
        target.released_at = ctx.now
    elif case.status is S.transferred:
        raise Unprocessable("a transferred case only releases its earlier measures", code="only_release_after_transfer")
    else:
        if b.releases is not None:
            raise Unprocessable("`releases` is only for a release", code="invalid_measure")
        if b.type in GOODS_MEASURES and not b.items:
            raise Unprocessable("sealing or seizing goods lists them: items with name, quantity and unit",
                                code="goods_not_itemised")
    m = CaseMeasure(case_id=case.id, region_code=case.region_code, type=b.type, items=_items(b.items),
                    legal_basis=b.legal_basis, note=b.note, releases=b.releases, created_by=ctx.scope.principal_id,
                    created_at=ctx.now)
    ctx.session.add(m)
    ctx.detail.update(measure_id=str(m.id), type=b.type.value, items=len(b.items), legal_basis=b.legal_basis,
                      **({"releases": str(b.releases)} if b.releases else {}))


async def _valid_licences(ctx: Ctx, *, suspended_too: bool = False) -> list[License]:
    """The enterprise's valid licences (and suspended ones: a revocation may follow a suspension)."""
    day = license_service.today()
    cond = license_service.valid_condition(day)
    if suspended_too:
        cond = or_(cond, col(License.status) == LicenseStatus.suspended)
    return list((await ctx.session.execute(
        select(License).where(License.enterprise_id == ctx.case.enterprise_id, cond))).scalars())


async def _propose(ctx: Ctx) -> None:
    b: DecisionBody = ctx.body
    case = ctx.case
    types = [p.type for p in b.penalties]
    for i, p in enumerate(b.penalties):
        if p.type in PENALTIES_WITH_AMOUNT and p.amount is None:
            raise Unprocessable(f"penalty {i} ({p.type.value}) needs an amount", code="amount_required",
                                extra={"errors": [{"loc": ["body", "penalties", i, "amount"], "msg": "required"}]})
        if p.type not in PENALTIES_WITH_AMOUNT and p.amount is not None:
            raise Unprocessable(f"penalty {i} ({p.type.value}) has no amount", code="amount_not_applicable",
                                extra={"errors": [{"loc": ["body", "penalties", i, "amount"], "msg": "not allowed"}]})
    licence_penalties = {PenaltyType.suspend_license, PenaltyType.revoke_license} & set(types)
    if case.kind is CaseKind.unlicensed_production:
        # §3.2: confiscate the illegal gains, products, tools, equipment and raw materials
        if not {PenaltyType.confiscate_gains, PenaltyType.confiscate_goods} & set(types):
            raise Unprocessable("an unlicensed-production decision confiscates (confiscate_gains or confiscate_goods)",
                                code="confiscation_required")
    if PenaltyType.suspend_license in licence_penalties and not await _valid_licences(ctx):
        raise Unprocessable("the enterprise holds no valid licence to suspend", code="no_valid_license")
    if PenaltyType.revoke_license in licence_penalties and not await _valid_licences(ctx, suspended_too=True):
        raise Unprocessable("the enterprise holds no valid or suspended licence to revoke", code="no_valid_license")
    if len(licence_penalties) > 1:
        raise Unprocessable("a decision either suspends or revokes the licence, not both", code="conflicting_penalties")
    penalties = [p.model_dump(mode="json") | {"executed_at": None,
                                              "amount": f"{p.amount:.2f}" if p.amount is not None else None}
                 for p in b.penalties]
    chain = approval_chain(case.bureau_code, penalties)
    case.decision = {"penalties": penalties, "note": b.note, "proposed_at": ctx.now.isoformat(),
                     "proposed_by": ctx.scope.username, "chain": chain, "approvals": []}
    case.awaiting_bureau = chain[0]
    total = sum((Decimal(p["amount"]) for p in penalties if p.get("amount")), Decimal(0))
    ctx.detail.update(penalties=[p.value for p in types], amount_total=f"{total:.2f}", approval_chain=chain)


async def _approve(ctx: Ctx) -> None:
    case = ctx.case
    decision = dict(case.decision or {})
    chain: list[str] = decision["chain"]
    approvals = [*decision.get("approvals", []),
                 {"bureau": ctx.scope.region_code, "by": ctx.scope.username, "at": ctx.now.isoformat(),
                  "comment": ctx.body.comment}]
    decision["approvals"] = approvals
    ctx.detail.update(bureau=ctx.scope.region_code, comment=ctx.body.comment)
    if len(approvals) < len(chain):
        nxt = chain[len(approvals)]
        case.awaiting_bureau = nxt
        if nxt == NATIONAL_CODE:
            decision["national_received_at"] = ctx.now.isoformat()
        case.decision = decision
        ctx.to_status = S.pending_approval
        ctx.detail["forwarded_to"] = nxt
        return
    case.awaiting_bureau = None
    decision["decided_at"] = ctx.now.isoformat()
    case.decision = decision
    ctx.to_status = S.decided
    await _decided(ctx)


async def _decided(ctx: Ctx) -> None:
    """A decision's consequences, in the approving transaction: licence status, bad record, 通报."""
    case = ctx.case
    types = {p["type"] for p in (case.decision or {}).get("penalties", [])}
    licensed_producer = bool(await _valid_licences(ctx, suspended_too=True))  # before this decision's effect
    for penalty, status in ((PenaltyType.suspend_license, LicenseStatus.suspended),
                            (PenaltyType.revoke_license, LicenseStatus.revoked)):
        if penalty in types:
            for lic in await _valid_licences(ctx, suspended_too=penalty is PenaltyType.revoke_license):
                await license_service.set_status(ctx.session, scope=ctx.scope, license_id=lic.id, status=status,
                                                 cause=f"case {case.id}: {penalty.value} approved")
            ctx.detail["license_status"] = status.value
    if PenaltyType.revoke_license in types:
        proposed = datetime.fromisoformat(case.decision["proposed_at"])  # type: ignore[index]
        case.revocation_approval_seconds = (ctx.now - proposed).total_seconds()
        ctx.detail["proposal_to_national_approval_seconds"] = case.revocation_approval_seconds
    enterprise = (await ctx.session.execute(select(Enterprise).where(Enterprise.id == case.enterprise_id))).scalar_one()
    if case.kind is CaseKind.unlicensed_production:
        # §3.2: notify the market regulator; report in writing to the local government recommending a ban
        notices = [(Recipient.market_regulator, "无证生产企业查处通报",
                    f"{enterprise.name}（{enterprise.uscc}）无证生产，已依法没收违法所得及产品、工具、设备、原材料。"),
                   (Recipient.local_government, "关于取缔无证生产企业的书面报告",
                    f"{enterprise.name}（{enterprise.uscc}）无证生产，建议地方政府依法予以取缔。")]
    elif licensed_producer and case.kind in LICENSED_VIOLATIONS:
        # §3.3: bad record (published), notify the market regulator and banks, report to the local government
        record = BadRecord(
            enterprise_id=enterprise.id, case_id=case.id, region_code=case.region_code,
            enterprise_name=enterprise.name, uscc=enterprise.uscc, violation=case.kind,
            penalties=[{k: p.get(k) for k in ("type", "amount", "legal_basis")}
                       for p in case.decision["penalties"]],  # type: ignore[index]
            decided_at=ctx.now, published_at=ctx.now)
        ctx.session.add(record)
        await ctx.session.flush()
        await audit.record(ctx.session, action="bad_record.create", entity_type="bad_record",
                           entity_id=str(record.id), region_code=record.region_code,
                           after={"enterprise_name": record.enterprise_name, "uscc": record.uscc,
                                  "violation": record.violation.value, "penalties": record.penalties,
                                  "case_id": str(case.id), "published": True})
        ctx.detail["bad_record"] = True
        summary = f"{enterprise.name}（{enterprise.uscc}）{case.kind.value}，已作出行政处罚决定并记入不良记录。"
        notices = [(Recipient.market_regulator, "获证企业违法行为通报", summary),
                   (Recipient.bank, "获证企业违法行为通报", summary),
                   (Recipient.local_government, "获证企业违法行为书面报告", summary)]
    else:
        notices = []  # other violations: the officers notify whom the case needs (`notify`)
    for recipient, subject, content in notices:
        add_notification(ctx, recipient=recipient, subject=subject, content=content, automatic=True)
    ctx.detail["notified"] = [r.value for r, _, _ in notices]


def add_notification(ctx: Ctx, *, recipient: Recipient, subject: str, content: str, automatic: bool,
                     recipient_name: str | None = None, recipient_account: uuid.UUID | None = None) -> Notification:
    n = Notification(case_id=ctx.case.id, region_code=ctx.case.region_code, recipient=recipient,
                     recipient_name=recipient_name, recipient_account=recipient_account, subject=subject,
                     content=content, automatic=automatic, created_by=ctx.scope.principal_id, created_at=ctx.now)
    ctx.session.add(n)
    ctx.notifications.append(n)
    return n


async def _reject(ctx: Ctx) -> None:
    case = ctx.case
    ctx.detail.update(bureau=ctx.scope.region_code, comment=ctx.body.comment,
                      rejected_penalties=[p["type"] for p in (case.decision or {}).get("penalties", [])])
    case.decision = None
    case.awaiting_bureau = None


async def _execute(ctx: Ctx) -> None:
    b: ExecutionBody = ctx.body
    decision = dict(ctx.case.decision or {})
    penalties = [dict(p) for p in decision["penalties"]]
    wanted = list(range(len(penalties))) if b.penalties is None else b.penalties
    bad = [i for i in wanted if not 0 <= i < len(penalties)]
    if bad:
        raise Unprocessable(f"the decision has no penalties {bad} (0..{len(penalties) - 1})", code="unknown_penalty")
    done = [i for i in wanted if penalties[i].get("executed_at")]
    if done and b.penalties is not None:
        raise Conflict(f"penalties {done} are already executed", code="already_executed")
    for i in wanted:
        penalties[i].setdefault("executed_at", None)
        if not penalties[i]["executed_at"]:
            penalties[i]["executed_at"] = ctx.now.isoformat()
    decision["penalties"] = penalties
    ctx.case.decision = decision
    ctx.detail.update(executed=wanted, note=b.note)


async def _notify(ctx: Ctx) -> None:
    b: NotifyBody = ctx.body
    account = None
    if b.recipient_client_id is not None:
        account = await notification_service.addressed_account(ctx.session, client_id=b.recipient_client_id,
                                                               recipients=b.recipients, region=ctx.case.region_code)
    ids = []
    for r in dict.fromkeys(b.recipients):
        n = add_notification(ctx, recipient=r, subject="案件通报", content=b.content, automatic=False,
                             recipient_name=b.recipient_name, recipient_account=account)
        ids.append(str(n.id))
    ctx.detail.update(recipients=[r.value for r in dict.fromkeys(b.recipients)], notifications=ids)


async def _flag(ctx: Ctx) -> None:
    ctx.case.possibly_criminal = True
    ctx.case.criminal_reason = ctx.body.reason
    ctx.detail["reason"] = ctx.body.reason


async def _transfer(ctx: Ctx) -> None:
    b: TransferBody = ctx.body
    case = ctx.case
    case.transfer = {"to": b.to, "recipient": b.recipient, "reason": b.reason, "at": ctx.now.isoformat(),
                     "by": ctx.scope.username}
    case.awaiting_bureau = None
    recipient = Recipient.judicial if b.to == "judicial" else Recipient.department
    add_notification(ctx, recipient=recipient, recipient_name=b.recipient, automatic=True,
                     subject="案件移送函" if b.to == "judicial" else "案件移交函", content=b.reason)
    ctx.detail.update(to=b.to, recipient=b.recipient, reason=b.reason)


async def _escalate(ctx: Ctx) -> None:
    to = parent_bureau(ctx.scope.region_code)
    assert to is not None  # the authority rule refuses national callers
    e = CaseEscalation(case_id=ctx.case.id, region_code=ctx.case.region_code, from_bureau=ctx.scope.region_code,
                       to_bureau=to, question=ctx.body.question, asked_by=ctx.scope.principal_id, asked_at=ctx.now)
    ctx.session.add(e)
    ctx.detail.update(escalation_id=str(e.id), to_bureau=to, question=ctx.body.question)


async def _answer(ctx: Ctx) -> None:
    b: AnswerBody = ctx.body
    e = (await ctx.session.execute(select(CaseEscalation).where(
        CaseEscalation.id == b.escalation_id, CaseEscalation.case_id == ctx.case.id).with_for_update()
    )).scalar_one_or_none()
    if e is None:
        raise NotFound(f"case {ctx.case.id} has no escalation {b.escalation_id}", code="escalation_not_found")
    if e.to_bureau != ctx.scope.region_code:
        raise NotPermitted(f"escalation {e.id} is addressed to bureau {e.to_bureau}", code="not_addressed_to_you")
    if e.answered_at is not None:
        raise Conflict(f"escalation {e.id} was already answered", code="already_answered")
    e.answer, e.answered_by, e.answered_at = b.answer, ctx.scope.principal_id, ctx.now
    ctx.detail.update(escalation_id=str(e.id), question=e.question, answer=b.answer, from_bureau=e.from_bureau)


async def _close(ctx: Ctx) -> None:
    ctx.case.closed_at = ctx.now
    await _none(ctx)


# ---- the table ---------------------------------------------------------------------------------

STAFF = frozenset({Role.inspector, Role.officer, Role.leader})


@dataclass(frozen=True)
class Rule:
    action: str
    sources: tuple[CaseStatus, ...]
    target: CaseStatus | None  # None: the case stays where it is
    roles: frozenset[str]
    who: str
    body: type[BaseModel]
    summary: str
    effect: Effect
    authority: Authority = handling
    guard: Guard = no_guard


RULES: tuple[Rule, ...] = (
    Rule("investigate", (S.registered,), S.investigating, frozenset({Role.inspector, Role.officer}),
         "inspector or officer of the handling bureau or above", Empty,
         "Start the investigation (立案 → 调查).", _none),
    Rule("add_measure", (*OPEN, S.transferred), None, frozenset({Role.inspector, Role.officer}),
         "inspector or officer of the handling bureau or above", MeasureBody,
         "Record a measure with its legal basis: seal or seize goods (itemised, with quantities), close "
         "premises, copy documents, or release an earlier one (after a transfer, only releases). Goods under "
         "seal are listed until released.",
         _add_measure),
    Rule("propose_decision", (S.investigating,), S.pending_approval, frozenset({Role.officer}),
         "officer of the handling bureau or above", DecisionBody,
         "Propose the penalties, each with its legal basis (fines and confiscated gains with an amount). "
         "The approval chain follows: the bureau's own leader; a licence suspension the provincial "
         "bureau; a revocation the provincial and then the national bureau. An unlicensed-production "
         "decision must confiscate.", _propose),
    Rule("approve", (S.pending_approval,), S.decided, frozenset({Role.leader}),
         "leader of the bureau the decision waits for (its own; provincial for suspend_license; provincial "
         "then national for revoke_license)", CommentBody,
         "Approve the decision at your step; the last step decides it, suspends or revokes the licence, "
         "enters the bad record (licensed producers) and files the automatic 通报.", _approve,
         authority=approving),
    Rule("reject", (S.pending_approval,), S.investigating, frozenset({Role.leader}),
         "leader of the bureau the decision waits for", CommentBody,
         "Send the decision back to investigation with a comment.", _reject, authority=approving),
    Rule("record_execution", (S.decided,), None, frozenset({Role.inspector, Role.officer}),
         "inspector or officer of the handling bureau or above", ExecutionBody,
         "Record that approved penalties were executed (all, or the listed indexes).", _execute,
         guard=executable),
    Rule("notify", OPEN, None, frozenset({Role.officer, Role.leader}),
         "officer or leader of the handling bureau or above", NotifyBody,
         "File a 通报 to other agencies (market regulator, banks, local government, judicial organs, ...).",
         _notify),
    Rule("flag_criminal", OPEN, None, STAFF, "inspector, officer or leader of the handling bureau or above",
         CriminalBody, "Flag the case as possibly criminal: it can then only end by transfer (no fine instead "
         "of prosecution).", _flag, guard=not_yet_criminal),
    Rule("transfer", OPEN, S.transferred, frozenset({Role.leader}), "leader of the handling bureau or above",
         TransferBody, "Transfer the case to the judicial organs (移送) or hand it to another department "
         "(移交), in writing; terminal.", _transfer),
    Rule("escalate", OPEN, None, STAFF, "inspector, officer or leader of the handling bureau or above, "
         "below national", EscalateBody, "Ask the superior bureau (请示); the question waits in its inbox.",
         _escalate, authority=escalating),
    Rule("answer_escalation", ALL, None, frozenset({Role.leader}),
         "leader of the bureau a question was addressed to", AnswerBody,
         "Answer a question escalated to your bureau; the answer goes on the timeline.", _answer,
         authority=answering),
    Rule("close", (S.decided,), S.closed, frozenset({Role.officer, Role.leader}),
         "officer or leader of the handling bureau or above", Empty,
         "Close the case (结案): refused while it is flagged possibly criminal, while approved penalties are "
         "unexecuted and while goods are under seal or premises closed.", _close, guard=closable),
)
RULE_BY_ACTION = {r.action: r for r in RULES}


# ---- executing the table -----------------------------------------------------------------------

def refusal(rule: Rule, scope: Scope, case: PenaltyCase, facts: Facts) -> AppError | None:
    """Why ``scope`` may not take ``rule`` on ``case`` now (None: it may)."""
    if case.status not in rule.sources:
        return InvalidTransition(f"{rule.action} is not possible in state {case.status.value} (possible in: "
                                 f"{', '.join(s.value for s in rule.sources)})",
                                 extra={"case_status": case.status.value})
    if scope.principal_type != "user" or not (set(scope.roles) & rule.roles):
        return NotPermitted(f"{rule.action} needs the role {' or '.join(sorted(rule.roles))}",
                            code="role_not_permitted")
    return rule.authority(scope, case, facts) or rule.guard(case, facts)


def allowed(scope: Scope, case: PenaltyCase, facts: Facts) -> list[str]:
    return [r.action for r in RULES if refusal(r, scope, case, facts) is None]


async def load_facts(session: AsyncSession, case_ids: list[uuid.UUID]) -> dict[uuid.UUID, Facts]:
    facts = {cid: Facts() for cid in case_ids}
    if case_ids:
        rows = await session.execute(select(CaseEscalation.case_id, CaseEscalation.to_bureau).where(
            col(CaseEscalation.case_id).in_(case_ids), col(CaseEscalation.answered_at).is_(None)))
        for cid, bureau in rows:
            facts[cid].open_escalations.add(bureau)
        in_force = await session.execute(
            select(CaseMeasure.case_id, CaseMeasure.type, func.count()).where(
                col(CaseMeasure.case_id).in_(case_ids), col(CaseMeasure.released_at).is_(None),
                col(CaseMeasure.type).in_([*GOODS_MEASURES, MeasureType.close_premises]))
            .group_by(col(CaseMeasure.case_id), col(CaseMeasure.type)))
        for cid, kind, n in in_force:
            if kind in GOODS_MEASURES:
                facts[cid].goods_under_seal += n
            else:
                facts[cid].premises_closed += n
    return facts


def stage_deadline(settings: Settings, status: CaseStatus, entered: datetime) -> datetime | None:
    days = settings.case_stage_days.get(status.value)
    return entered + timedelta(days=days) if days else None


def snapshot(case: PenaltyCase) -> dict[str, Any]:
    """A case as its audit rows record it (filing and every action)."""
    return {"enterprise_id": str(case.enterprise_id),
            "inspection_id": str(case.inspection_id) if case.inspection_id else None,
            "kind": case.kind.value, "bureau_code": case.bureau_code, "source": case.source,
            "status": case.status.value, "possibly_criminal": case.possibly_criminal,
            "awaiting_bureau": case.awaiting_bureau, "decision": case.decision, "transfer": case.transfer,
            "version": case.version}


async def record_event(session: AsyncSession, scope: Scope, case: PenaltyCase, *, action: str,
                       from_status: CaseStatus | None, detail: dict[str, Any], at: datetime) -> None:
    session.add(CaseEvent(case_id=case.id, region_code=case.region_code, action=action,
                          from_status=from_status.value if from_status else None, to_status=case.status.value,
                          actor_id=scope.principal_id, actor=scope.username, actor_bureau=scope.region_code,
                          at=at, detail=detail))


async def perform(session: AsyncSession, *, scope: Scope, settings: Settings, case: PenaltyCase, action: str,
                  body: BaseModel) -> PenaltyCase:
    """Take ``action`` on ``case`` (already loaded FOR UPDATE and version-checked by the caller)."""
    rule = RULE_BY_ACTION[action]
    facts = (await load_facts(session, [case.id]))[case.id]
    refused = refusal(rule, scope, case, facts)
    if refused is not None:
        raise refused
    now = utcnow()
    before = snapshot(case)
    from_status = case.status
    ctx = Ctx(session=session, scope=scope, settings=settings, case=case, body=body, now=now,
              to_status=rule.target)
    await rule.effect(ctx)
    if ctx.to_status is not None and ctx.to_status != case.status:
        case.status = ctx.to_status
        case.stage_entered_at = now
        case.deadline = stage_deadline(settings, case.status, now)
    case.version += 1
    case.updated_at = now
    await session.flush()
    await notification_service.publish(session, ctx.notifications)
    await record_event(session, scope, case, action=action, from_status=from_status, detail=ctx.detail, at=now)
    await audit.record(session, action=f"penalty_case.{action}", entity_type="penalty_case", entity_id=str(case.id),
                       region_code=case.region_code, before=before, after=snapshot(case) | {"detail": ctx.detail})
    return case


# ---- rendering ---------------------------------------------------------------------------------

def _states(states: tuple[CaseStatus, ...]) -> str:
    return "any state" if states == ALL else ", ".join(f"`{s.value}`" for s in states)


def _guard_text(rule: Rule) -> str:
    """A guard's docstring is its description in the docs."""
    return (inspect.getdoc(rule.guard) or "") if rule.guard is not no_guard else ""


def markdown_table() -> str:
    lines = ["| action | from | to | who | guard | effect |", "|---|---|---|---|---|---|"]
    for r in RULES:
        to = f"`{r.target.value}`" if r.target else "(stays)"
        if r.action == "approve":
            to = "`decided` (last step) or stays `pending_approval` (next bureau)"
        lines.append(f"| `{r.action}` | {_states(r.sources)} | {to} | {r.who} | {_guard_text(r) or '-'} | "
                     f"{r.summary} |")
    return "\n".join(lines)


def mermaid() -> str:
    lines = ["stateDiagram-v2", "    [*] --> registered: file (POST /cases or inspection open_case)"]
    for r in RULES:
        if r.target is None:
            continue
        sources = tuple(s for s in r.sources if s not in (S.closed, S.transferred))
        for s in sources:
            label = r.action + (" [guarded]" if r.guard is not no_guard else "")
            lines.append(f"    {s.value} --> {r.target.value}: {label}")
        if r.action == "approve":
            lines.append("    pending_approval --> pending_approval: approve (next bureau in the chain)")
    lines += ["    closed --> [*]", "    transferred --> [*]"]
    return "\n".join(lines)


README_START = "<!-- workflow:start (generated by `python -m app.cli workflow-doc`; do not edit) -->"
README_END = "<!-- workflow:end -->"


def readme_block() -> str:
    return f"{README_START}\n```mermaid\n{mermaid()}\n```\n\n{markdown_table()}\n{README_END}"


def write_readme(path: str) -> bool:
    """Replace the generated block of the README with the table as it is now; True when it changed."""
    with open(path, encoding="utf-8") as f:
        text = f.read()
    start, end = text.index(README_START), text.index(README_END) + len(README_END)
    new = text[:start] + readme_block() + text[end:]
    if new != text:
        with open(path, "w", encoding="utf-8") as f:
            f.write(new)
    return new != text
