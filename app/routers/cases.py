"""/api/v1/cases: penalty cases from filing to closing; /api/v1/inbox; goods under seal.

The action routes are generated from the workflow table (app/services/case_workflow.py): one route
and one typed body per action, each documented from its row of the table."""

from __future__ import annotations

import inspect
import uuid
from typing import Annotated, Any

from fastapi import Body, Query, Response

from app import policy
from app.concurrency import IfMatchDep, set_etag
from app.deps import ScopeDep, SessionDep, SettingsDep
from app.errors import problem_responses
from app.models.case import (
    CaseCreate,
    CaseEventPublic,
    CaseKind,
    CasePublic,
    CaseStatus,
    InboxItem,
    MeasurePublic,
)
from app.models.common import RegionCode
from app.pagination import Page, PageDep, paginate
from app.routers import secured_router
from app.routing import autocommit_reads
from app.services import case as case_service
from app.services import case_workflow as workflow

router = secured_router(machine_scope="cases:read", tags=["cases"])

WORKFLOW_DOC = f"""The workflow, as the service executes it (generated from its table):

{workflow.markdown_table()}

`allowed_actions` on every case lists what **you** may do next by this table."""


async def _view(session: Any, scope: Any, case: Any, response: Response) -> CasePublic:
    set_etag(response, case.version)
    return (await case_service.to_public_many(session, scope, [case]))[0]


@router.post("/api/v1/cases", status_code=201, response_model=CasePublic,
             responses=problem_responses(401, 403, 404, 409, 422))
async def create_case(body: CaseCreate, scope: ScopeDep, session: SessionDep, settings: SettingsDep,
                      response: Response) -> CasePublic:
    """File a case (立案) against an enterprise inside your jurisdiction (inspectors and officers), from
    an inspection, a complaint or a referral. Your bureau handles it (`bureau_code`); the case takes the
    enterprise's `region_code` and starts `registered` with the stage's deadline. An inspection with
    `open_case: true` files one the same way."""
    case, _ = await case_service.create(session, scope=scope, settings=settings, data=body)
    response.headers["Location"] = f"/api/v1/cases/{case.id}"
    return await _view(session, scope, case, response)


@router.get("/api/v1/cases", response_model=Page[CasePublic], responses=problem_responses(401, 403, 422),
            description="Cases inside your jurisdiction, newest first. `overdue=true` lists the cases past their "
                        "stage's time limit in every bureau below you (overdue cases are visible upward).\n\n"
                        + WORKFLOW_DOC)
@autocommit_reads
async def list_cases(
    scope: ScopeDep, session: SessionDep, page: PageDep,
    region: Annotated[RegionCode | None, Query(description="inside this region (403 outside yours)")] = None,
    status: CaseStatus | None = None, kind: CaseKind | None = None, enterprise_id: uuid.UUID | None = None,
    overdue: Annotated[bool | None, Query(description="past the time limit of its stage")] = None,
    possibly_criminal: bool | None = None,
) -> Page[CasePublic]:
    """Cases inside your jurisdiction, newest first. `overdue=true` lists the cases past their stage's
    time limit in every bureau below you (overdue cases are visible upward)."""
    stmt = case_service.list_query(scope, region=region, status=status, kind=kind, enterprise_id=enterprise_id,
                                   overdue=overdue, possibly_criminal=possibly_criminal)
    items, nxt = await paginate(session, stmt, page)
    return Page[CasePublic](items=await case_service.to_public_many(session, scope, items), next_cursor=nxt)


@router.get("/api/v1/cases/revocation-times", responses=problem_responses(401, 403, 422))
@autocommit_reads
async def revocation_times(
    scope: ScopeDep, session: SessionDep,
    region: Annotated[RegionCode | None, Query(description="inside this region (403 outside yours)")] = None,
) -> dict[str, Any]:
    """How long licence revocations took from proposal to national approval (即收即批), in seconds:
    count, mean, median, 90th percentile and maximum over the revoked cases you can see."""
    return await case_service.revocation_times(session, region=region, scope=scope)


@router.get("/api/v1/cases/{case_id}", response_model=CasePublic, responses=problem_responses(401, 404))
@autocommit_reads
async def get_case(case_id: uuid.UUID, scope: ScopeDep, session: SessionDep, response: Response) -> CasePublic:
    """One case with its measures, decision and `allowed_actions` for you (404 outside your jurisdiction)."""
    return await _view(session, scope, await case_service.get(session, case_id=case_id), response)


@router.get("/api/v1/cases/{case_id}/timeline", response_model=Page[CaseEventPublic],
            responses=problem_responses(401, 404))
@autocommit_reads
async def case_timeline(case_id: uuid.UUID, scope: ScopeDep, session: SessionDep,
                        page: PageDep) -> Page[CaseEventPublic]:
    """Every transition, measure, approval, notification and escalation answer of the case, oldest
    first, with who (and from which bureau) and when."""
    await case_service.get(session, case_id=case_id)
    items, nxt = await paginate(session, case_service.timeline_query(case_id), page)
    events = [CaseEventPublic.model_validate(e, from_attributes=True) for e in items]
    if scope.principal_type != "user":  # machine clients see which bureau acted, not who
        events = [e.model_copy(update={"actor": e.actor_bureau,
                                       "detail": policy.redact_people(e.detail, scope)}) for e in events]
    return Page[CaseEventPublic](items=events, next_cursor=nxt)


@router.get("/api/v1/inbox", response_model=list[InboxItem], responses=problem_responses(401))
@autocommit_reads
async def inbox(scope: ScopeDep, session: SessionDep,
                limit: Annotated[int, Query(ge=1, le=200, description="per kind")] = 200) -> list[InboxItem]:
    """What waits for you: decisions your bureau must approve and questions escalated to it (leaders),
    and cases past their stage's time limit inside your jurisdiction (leaders and officers)."""
    return await case_service.inbox(session, scope=scope, limit=limit)


@router.get("/api/v1/sealed-goods", response_model=Page[MeasurePublic], responses=problem_responses(401, 403, 422))
@autocommit_reads
async def sealed_goods(
    scope: ScopeDep, session: SessionDep, page: PageDep,
    region: Annotated[RegionCode | None, Query(description="inside this region (403 outside yours)")] = None,
) -> Page[MeasurePublic]:
    """Goods sealed or seized and not yet released, inside your jurisdiction, oldest first."""
    items, nxt = await paginate(session, case_service.sealed_goods_query(region, scope), page)
    return Page[MeasurePublic](items=[case_service.measure_public(m) for m in items], next_cursor=nxt)


def _action_route(rule: workflow.Rule) -> None:
    optional = not any(f.is_required() for f in rule.body.model_fields.values())

    async def endpoint(case_id: uuid.UUID, body: Any, if_match: IfMatchDep, scope: ScopeDep, session: SessionDep,
                       settings: SettingsDep, response: Response) -> CasePublic:
        case = await case_service.act(session, scope=scope, settings=settings, case_id=case_id, action=rule.action,
                                      body=body if body is not None else rule.body(), expected_version=if_match)
        return await _view(session, scope, case, response)

    # FastAPI reads the body's type from the signature: give each action its own model
    # (an action whose fields are all optional may be sent without a body)
    annotation = Annotated[rule.body | None, Body()] if optional else Annotated[rule.body, Body()]
    params = [p.replace(annotation=annotation, default=None if optional else p.default,
                        kind=inspect.Parameter.KEYWORD_ONLY) if p.name == "body" else
              p.replace(kind=inspect.Parameter.KEYWORD_ONLY)
              for p in inspect.signature(endpoint).parameters.values()]
    endpoint.__signature__ = inspect.Signature(params, return_annotation=CasePublic)  # type: ignore[attr-defined]
    endpoint.__name__ = f"case_{rule.action}"
    to = rule.target.value if rule.target else "unchanged"
    router.add_api_route(
        f"/api/v1/cases/{{case_id}}/actions/{rule.action}", endpoint, methods=["POST"], response_model=CasePublic,
        summary=f"Case action: {rule.action}", operation_id=f"case_action_{rule.action}",
        responses=problem_responses(401, 403, 404, 409, 412, 422, 428),
        description=(f"{rule.summary}\n\n- from: {', '.join(s.value for s in rule.sources)}\n- to: {to}\n"
                     f"- who: {rule.who}\n" + (f"- guard: {workflow._guard_text(rule)}\n" if workflow._guard_text(rule)
                                                else "")
                     + "\nNeeds `If-Match` with the case's ETag; answers 200 with the updated case. The "
                       "whole table is in the description of `GET /api/v1/cases`."))


for _rule in workflow.RULES:
    _action_route(_rule)
