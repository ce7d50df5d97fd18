"""/api/v1/reports: periodic progress reports, their workflow, the upward view and exports."""

from __future__ import annotations

import uuid
from typing import Annotated, Literal

from fastapi import Query, Response

from app.concurrency import IfMatchDep, set_etag
from app.deps import ScopeDep, SessionDep
from app.errors import problem_responses
from app.models.common import Day, RegionCode
from app.models.report import (
    BureauReporting,
    ReportCreate,
    ReportDay,
    ReportPublic,
    ReportStatus,
    ReportUpdate,
    ReturnBody,
)
from app.pagination import Page, PageDep, paginate
from app.routers import secured_router
from app.routing import autocommit_reads
from app.services import report as report_service

router = secured_router(machine_scope="reports:read", prefix="/api/v1/reports", tags=["reports"])


def _etag(response: Response, r: report_service.Report) -> ReportPublic:
    set_etag(response, r.version)
    return report_service.to_public(r)


@router.post("", status_code=201, response_model=ReportPublic, responses=problem_responses(401, 403, 409, 422))
async def create_report(body: ReportCreate, scope: ScopeDep, session: SessionDep, response: Response) -> ReportPublic:
    """Compute the draft of your bureau's report for a period ending on the 10th, the 20th or the last
    day of a month (`kind: final`: the year's summary, ending 31 December): the tallies of DOMAIN.md §9
    for the period (`figures.counts`) and the campaign's targets as the dashboard shows them now
    (`figures.targets`). `due_at` is the end of the period's last day (China Standard Time) plus
    `APP_REPORT_DUE_DAYS`. One report per bureau, period and kind (409 `report_exists`)."""
    r = await report_service.create(session, scope=scope, data=body)
    response.headers["Location"] = f"/api/v1/reports/{r.id}"
    return _etag(response, r)


@router.get("", response_model=Page[ReportPublic], responses=problem_responses(401, 403, 422))
@autocommit_reads
async def list_reports(
    scope: ScopeDep, session: SessionDep, page: PageDep,
    region: Annotated[RegionCode | None, Query(description="inside this region (403 outside yours)")] = None,
    period_end: Day | None = None, status: ReportStatus | None = None,
) -> Page[ReportPublic]:
    """Reports inside your jurisdiction, newest period first."""
    items, nxt = await paginate(session, report_service.list_query(scope, region=region, period_end=period_end,
                                                                   status=status), page)
    return Page[ReportPublic](items=[report_service.to_public(r) for r in items], next_cursor=nxt)


@router.get("/oversight", response_model=list[BureauReporting],
            responses=problem_responses(401, 403, 422))
@autocommit_reads
async def oversight(scope: ScopeDep, session: SessionDep,
                    period_end: Annotated[ReportDay, Query()],
                    kind: Literal["periodic", "final"] = "periodic") -> list[BureauReporting]:
    """The bureaus directly below yours for one period: their report's status (`missing` when none),
    whether it is late, and each bureau's on-time rate over the periods already due."""
    return await report_service.oversight(session, scope=scope, period_end=period_end, kind=kind)


@router.get("/{report_id}", response_model=ReportPublic, responses=problem_responses(401, 404))
@autocommit_reads
async def get_report(report_id: uuid.UUID, scope: ScopeDep, session: SessionDep, response: Response) -> ReportPublic:
    return _etag(response, await report_service.get(session, report_id=report_id))


@router.patch("/{report_id}", response_model=ReportPublic,
              responses=problem_responses(401, 403, 404, 409, 412, 422, 428))
async def edit_notes(report_id: uuid.UUID, body: ReportUpdate, if_match: IfMatchDep, scope: ScopeDep,
                     session: SessionDep, response: Response) -> ReportPublic:
    """Edit the notes (the reporting bureau, until the report is approved: then 409 `report_locked`)."""
    return _etag(response, await report_service.update_notes(session, scope=scope, report_id=report_id,
                                                             notes=body.notes, expected_version=if_match))


@router.post("/{report_id}/actions/submit", response_model=ReportPublic,
             responses=problem_responses(401, 403, 404, 409, 412, 428))
async def submit(report_id: uuid.UUID, if_match: IfMatchDep, scope: ScopeDep, session: SessionDep,
                 response: Response) -> ReportPublic:
    """Submit the draft to the bureau above (the reporting bureau's officers and leaders); past
    `due_at` it is marked `late`."""
    return _etag(response, await report_service.act(session, scope=scope, report_id=report_id, action="submit",
                                                    comment=None, expected_version=if_match))


@router.post("/{report_id}/actions/approve", response_model=ReportPublic,
             responses=problem_responses(401, 403, 404, 409, 412, 428))
async def approve(report_id: uuid.UUID, if_match: IfMatchDep, scope: ScopeDep, session: SessionDep,
                  response: Response) -> ReportPublic:
    """Approve a submitted report (a leader of a bureau above); it is then locked."""
    return _etag(response, await report_service.act(session, scope=scope, report_id=report_id, action="approve",
                                                    comment=None, expected_version=if_match))


@router.post("/{report_id}/actions/return", response_model=ReportPublic,
             responses=problem_responses(401, 403, 404, 409, 412, 422, 428))
async def return_report(report_id: uuid.UUID, body: ReturnBody, if_match: IfMatchDep, scope: ScopeDep,
                        session: SessionDep, response: Response) -> ReportPublic:
    """Send a submitted report back to draft with a comment (a leader of a bureau above)."""
    return _etag(response, await report_service.act(session, scope=scope, report_id=report_id, action="return",
                                                    comment=body.comment, expected_version=if_match))


@router.get("/{report_id}/export", responses={
    200: {"content": {"application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": {},
                      "text/csv": {}}, "description": "the report as a spreadsheet, headers in Chinese"},
    **problem_responses(401, 404, 422)})
@autocommit_reads
async def export(report_id: uuid.UUID, scope: ScopeDep, session: SessionDep,
                 format: Literal["xlsx", "csv"] = "xlsx") -> Response:  # noqa: A002 - the contract's name
    """The report as XLSX (openpyxl) or CSV (UTF-8 with a BOM), one row per figure, headers in Chinese."""
    r = await report_service.get(session, report_id=report_id)
    name = f"report-{r.region_code}-{r.period_end}.{format}"
    if format == "xlsx":
        return Response(report_service.to_xlsx(r), headers={"Content-Disposition": f'attachment; filename="{name}"'},
                        media_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")
    return Response(report_service.to_csv(r), media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="{name}"'})
