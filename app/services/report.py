"""Periodic progress reports (DOMAIN.md §9): a draft computed from the records for a bureau's region
and period, edited (notes), submitted to the bureau above, approved (then locked) or returned;
lateness against `due_at`; the level above sees missing and late reports and each bureau's on-time
rate; exports to XLSX and CSV with Chinese headers."""

from __future__ import annotations

import calendar
import csv
import io
import uuid
from datetime import date, datetime, timedelta
from typing import Any

from openpyxl import Workbook
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from app import policy
from app.concurrency import check_version
from app.config import get_settings
from app.errors import Conflict, InvalidTransition, NotPermitted, Unprocessable
from app.models.common import NATIONAL_CODE, Role, prefix_of, utcnow
from app.models.reference import Region
from app.models.report import BureauReporting, Report, ReportCreate, ReportPublic, ReportStatus
from app.scope import Scope, get_visible
from app.services import audit
from app.services import campaign as campaign_service
from app.services.license import CHINA_TZ as CST
from app.services.license import start_of_day

# the tallies of DOMAIN.md §9, in the order and with the labels of the exports
FIGURES: tuple[tuple[str, str], ...] = (
    ("producers_inspected", "检查生产企业数"),
    ("inspections", "检查次数"),
    ("archives_built", "新建质量档案数"),
    ("unlicensed_found", "查处无证生产案件数"),
    ("unlicensed_dealt_with", "无证生产案件办结（含移送）数"),
    ("cases_opened", "立案数"),
    ("cases_closed", "结案数"),
    ("cases_transferred", "移送（移交）案件数"),
    ("fines_yuan", "罚款金额（元）"),
    ("confiscated_gains_yuan", "没收违法所得（元）"),
    ("goods_sealed", "封存扣押次数"),
    ("licences_suspended", "暂扣许可证数"),
    ("revocations_proposed", "提请吊销许可证数"),
    ("recalls_opened", "责令（主动）召回数"),
    ("units_recalled", "召回产品数量"),
    ("key_regions", "重点地区数"),
)

_PERIOD_SQL = text("""
WITH p AS (SELECT CAST(:start AS timestamptz) AS lo, CAST(:end AS timestamptz) AS hi, CAST(:pattern AS text) AS pat),
-- one pass over the period's inspections; an archive is built by an enterprise's first inspection ever
i AS (SELECT count(*) AS inspections, count(DISTINCT i.enterprise_id) AS producers_inspected,
             count(DISTINCT i.enterprise_id) FILTER (WHERE NOT EXISTS (
               SELECT 1 FROM inspection j WHERE j.enterprise_id = i.enterprise_id AND j.inspected_at < p.lo))
               AS archives_built
      FROM inspection i, p WHERE i.region_code LIKE p.pat AND i.inspected_at >= p.lo AND i.inspected_at < p.hi)
SELECT
 (SELECT producers_inspected FROM i) AS producers_inspected,
 (SELECT inspections FROM i) AS inspections,
 (SELECT archives_built FROM i) AS archives_built,
 (SELECT count(*) FROM penalty_case, p WHERE region_code LIKE pat AND kind = 'unlicensed_production'
    AND created_at >= lo AND created_at < hi) AS unlicensed_found,
 (SELECT count(*) FROM case_event e JOIN penalty_case c ON c.id = e.case_id, p WHERE e.region_code LIKE pat
    AND c.kind = 'unlicensed_production' AND e.action IN ('close', 'transfer') AND e.at >= lo AND e.at < hi)
    AS unlicensed_dealt_with,
 (SELECT count(*) FROM penalty_case, p WHERE region_code LIKE pat AND created_at >= lo AND created_at < hi)
    AS cases_opened,
 (SELECT count(*) FROM case_event, p WHERE region_code LIKE pat AND action = 'close' AND at >= lo AND at < hi)
    AS cases_closed,
 (SELECT count(*) FROM case_event, p WHERE region_code LIKE pat AND action = 'transfer' AND at >= lo AND at < hi)
    AS cases_transferred,
 (SELECT coalesce(sum((x->>'amount')::numeric) FILTER (WHERE x->>'type' = 'fine'), 0)
    FROM case_event e JOIN penalty_case c ON c.id = e.case_id, p, jsonb_array_elements(c.decision->'penalties') x
    WHERE e.region_code LIKE pat AND e.action = 'approve' AND e.to_status = 'decided' AND e.at >= lo AND e.at < hi)
    AS fines_yuan,
 (SELECT coalesce(sum((x->>'amount')::numeric) FILTER (WHERE x->>'type' = 'confiscate_gains'), 0)
    FROM case_event e JOIN penalty_case c ON c.id = e.case_id, p, jsonb_array_elements(c.decision->'penalties') x
    WHERE e.region_code LIKE pat AND e.action = 'approve' AND e.to_status = 'decided' AND e.at >= lo AND e.at < hi)
    AS confiscated_gains_yuan,
 (SELECT count(*) FROM case_measure, p WHERE region_code LIKE pat AND type IN ('seal_goods', 'seize_goods')
    AND created_at >= lo AND created_at < hi) AS goods_sealed,
 (SELECT count(*) FROM case_event e JOIN penalty_case c ON c.id = e.case_id, p WHERE e.region_code LIKE pat
    AND e.action = 'approve' AND e.to_status = 'decided' AND e.at >= lo AND e.at < hi
    AND c.decision->'penalties' @> '[{"type": "suspend_license"}]') AS licences_suspended,
 (SELECT count(*) FROM case_event, p WHERE region_code LIKE pat AND action = 'propose_decision'
    AND detail->'penalties' ? 'revoke_license' AND at >= lo AND at < hi) AS revocations_proposed,
 (SELECT count(*) FROM recall, p WHERE region_code LIKE pat AND created_at >= lo AND created_at < hi)
    AS recalls_opened,
 (SELECT coalesce(sum(units_recalled), 0) FROM recall_progress, p WHERE region_code LIKE pat AND created_at >= lo
    AND created_at < hi) AS units_recalled,
 (SELECT count(DISTINCT region_code) FROM key_region, p WHERE region_code LIKE pat) AS key_regions
""")


def period_of(period_end: date, kind: str) -> date:
    """The first day of the period ending on ``period_end`` (422 when it is no reporting day)."""
    if kind == "final":
        if (period_end.month, period_end.day) != (12, 31):
            raise Unprocessable("the final summary ends on 31 December", code="invalid_period_end")
        return date(period_end.year, 1, 1)
    last = calendar.monthrange(period_end.year, period_end.month)[1]
    starts = {10: 1, 20: 11, last: 21}
    if period_end.day not in starts:
        raise Unprocessable("a report period ends on the 10th, the 20th or the last day of a month",
                            code="invalid_period_end")
    return period_end.replace(day=starts[period_end.day])


def due_at(period_end: date) -> datetime:
    """Due by the end of the period's last day (China Standard Time) plus the configured grace."""
    return start_of_day(period_end + timedelta(days=1 + get_settings().report_due_days))


def is_late(r: Report, now: datetime | None = None) -> bool:
    if r.submitted_at is not None:
        return r.submitted_at > r.due_at
    return (now or utcnow()) > r.due_at


def to_public(r: Report) -> ReportPublic:
    return ReportPublic(id=r.id, region_code=r.region_code, kind=r.kind, period_start=r.period_start,
                        period_end=r.period_end, status=r.status, figures=r.figures, notes=r.notes, due_at=r.due_at,
                        submitted_at=r.submitted_at, approved_at=r.approved_at, late=is_late(r),
                        returned_comment=r.returned_comment, version=r.version, created_at=r.created_at,
                        updated_at=r.updated_at)


async def compute(session: AsyncSession, scope: Scope, region: str, start: date, end: date) -> dict[str, Any]:
    """The period's tallies for the region, and the campaign's targets as the dashboard shows them now."""
    row = (await session.execute(_PERIOD_SQL, {"start": start_of_day(start),
                                               "end": start_of_day(end + timedelta(days=1)),
                                               "pattern": prefix_of(region) + "%"})).mappings().one()
    counts: dict[str, Any] = {}
    for key, _label in FIGURES:
        value = row[key]
        counts[key] = f"{value:.2f}" if key.endswith("_yuan") else int(value)
    c = (await session.execute(text("SELECT id FROM campaign WHERE code = :c"),
                               {"c": campaign_service.DEFAULT_CODE})).scalar()
    targets = []
    if c is not None:
        board = await campaign_service.dashboard(session, scope=scope, campaign_id=c, region=region)
        targets = [t.model_dump(mode="json") for t in board.targets]
    return {"counts": counts, "targets": targets, "campaign_id": str(c) if c else None}


async def create(session: AsyncSession, *, scope: Scope, data: ReportCreate) -> Report:
    policy.require_role(scope, Role.officer, Role.leader, doing="draft, edit and submit reports")
    region = data.region_code or scope.region_code
    if region != scope.region_code:
        raise NotPermitted("a bureau drafts its own report (region_code is your bureau's)", code="not_your_bureau")
    start = period_of(data.period_end, data.kind)
    if start > utcnow().astimezone(CST).date():
        raise Unprocessable("the period has not begun", code="period_in_future")
    taken = (await session.execute(select(Report.id).where(
        Report.region_code == region, Report.period_end == data.period_end, Report.kind == data.kind))).first()
    if taken:
        raise Conflict(f"report {taken[0]} exists for this bureau and period", code="report_exists",
                       extra={"report_id": str(taken[0])})
    r = Report(region_code=region, kind=data.kind, period_start=start, period_end=data.period_end,
               figures=await compute(session, scope, region, start, data.period_end), due_at=due_at(data.period_end),
               created_by=scope.principal_id)
    session.add(r)
    await session.flush()  # a concurrent draft of the same period: 409 report_exists (app/routing.py)
    await audit.record(session, action="report.create", entity_type="report", entity_id=str(r.id),
                       region_code=r.region_code, after=to_public(r).model_dump(mode="json"))
    return r


async def get(session: AsyncSession, *, report_id: uuid.UUID, for_update: bool = False) -> Report:
    return await get_visible(session, Report, report_id, what="report", for_update=for_update)


async def _change(session: AsyncSession, r: Report, action: str, before: dict[str, Any]) -> Report:
    r.version += 1
    r.updated_at = utcnow()
    await session.flush()
    await audit.record(session, action=f"report.{action}", entity_type="report", entity_id=str(r.id),
                       region_code=r.region_code, before=before, after=to_public(r).model_dump(mode="json"))
    return r


async def update_notes(session: AsyncSession, *, scope: Scope, report_id: uuid.UUID, notes: str,
                       expected_version: int) -> Report:
    r = await get(session, report_id=report_id, for_update=True)
    check_version(r.version, expected_version, current_body=to_public(r).model_dump(mode="json"))
    policy.require_role(scope, Role.officer, Role.leader, doing="draft, edit and submit reports")
    if scope.region_code != r.region_code:
        raise NotPermitted("only the reporting bureau edits its report", code="not_your_bureau")
    if r.status is ReportStatus.approved:
        raise Conflict("an approved report is locked", code="report_locked")
    before = to_public(r).model_dump(mode="json")
    r.notes = notes
    return await _change(session, r, "notes", before)


async def act(session: AsyncSession, *, scope: Scope, report_id: uuid.UUID, action: str, comment: str | None,
              expected_version: int) -> Report:
    """submit: the reporting bureau (draft → submitted); approve / return: a leader of a bureau above it
    (the national bureau approves its own), submitted → approved (locked) or back to draft."""
    r = await get(session, report_id=report_id, for_update=True)
    check_version(r.version, expected_version, current_body=to_public(r).model_dump(mode="json"))
    before = to_public(r).model_dump(mode="json")
    now = utcnow()
    if action == "submit":
        policy.require_role(scope, Role.officer, Role.leader, doing="draft, edit and submit reports")
        if scope.region_code != r.region_code:
            raise NotPermitted("only the reporting bureau submits its report", code="not_your_bureau")
        if r.status is not ReportStatus.draft:
            raise InvalidTransition(f"a {r.status.value} report cannot be submitted")
        r.status, r.submitted_at, r.returned_comment = ReportStatus.submitted, now, None
    else:
        policy.require_role(scope, Role.leader, doing="approve or return reports")
        above = scope.region_code != r.region_code and r.region_code.startswith(scope.prefix)
        if not (above or (r.region_code == NATIONAL_CODE and scope.is_national)):
            raise NotPermitted("a leader of a bureau above the reporting one approves or returns it",
                               code="not_a_superior_bureau")
        if r.status is not ReportStatus.submitted:
            raise InvalidTransition(f"a {r.status.value} report cannot be {action}ed")
        if action == "approve":
            r.status, r.approved_at = ReportStatus.approved, now
        else:  # back to the bureau: it is on time again only if resubmitted in time
            r.status, r.returned_comment, r.submitted_at = ReportStatus.draft, comment, None
    return await _change(session, r, action, before)


def list_query(scope: Scope, *, region: str | None, period_end: date | None, status: ReportStatus | None) -> Any:
    stmt = select(Report)
    if region is not None:
        stmt = stmt.where(scope.inside(col(Report.region_code), region))
    if period_end is not None:
        stmt = stmt.where(Report.period_end == period_end)
    if status is not None:
        stmt = stmt.where(Report.status == status)
    return stmt.order_by(col(Report.period_end).desc(), col(Report.region_code), col(Report.id))


async def oversight(session: AsyncSession, *, scope: Scope, period_end: date, kind: str) -> list[BureauReporting]:
    """For the bureaus directly below the caller's: their report for the period (or missing), late or
    not, and each bureau's on-time rate over the periods already due for which any of them reported."""
    period_of(period_end, kind)
    children = (await session.execute(select(Region.code, Region.name).where(
        Region.parent_code == scope.region_code).order_by(Region.code))).all()
    codes = [c for c, _ in children]
    reports = (await session.execute(select(Report).where(col(Report.region_code).in_(codes),
                                                          Report.kind == kind))).scalars().all()
    now = utcnow()
    periods = sorted({r.period_end for r in reports if r.due_at < now})
    by = {(r.region_code, r.period_end): r for r in reports}
    out = []
    for code, name in children:
        mine = by.get((code, period_end))
        on_time = sum(1 for p in periods if (x := by.get((code, p))) is not None
                      and x.status is not ReportStatus.draft and x.submitted_at is not None
                      and x.submitted_at <= x.due_at)
        out.append(BureauReporting(
            region_code=code, name=name, report_id=mine.id if mine else None,
            status=mine.status.value if mine else "missing",
            late=is_late(mine, now) if mine else now > due_at(period_end),
            on_time_rate=round(on_time / len(periods), 4) if periods else None, reports_due=len(periods)))
    return out


def export_rows(r: Report) -> tuple[list[str], list[list[Any]]]:
    header = ["指标", "数值"]
    rows: list[list[Any]] = [["地区代码", r.region_code], ["报告期", f"{r.period_start} 至 {r.period_end}"],
                             ["类型", "总结" if r.kind == "final" else "进展报告"], ["状态", r.status.value],
                             ["截止时间", r.due_at.astimezone(CST).strftime("%Y-%m-%d %H:%M")],
                             ["是否迟报", "是" if is_late(r) else "否"]]
    counts = r.figures.get("counts", {})
    rows += [[label, counts.get(key)] for key, label in FIGURES]
    for t in r.figures.get("targets", []):
        figure = "" if t["figure"] is None else f"{t['figure']:.2%}"
        rows.append([f"目标：{t['name']}", f"{figure}（{t['numerator']}/{t['denominator']}，目标 {t['target']:.0%}）"])
    if r.notes:
        rows.append(["说明", r.notes])
    return header, [[_cell(v) for v in row] for row in rows]


def _cell(value: Any) -> Any:
    """Text that a spreadsheet would run as a formula is written as text (a leading apostrophe)."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@"):
        return "'" + value
    return value


def to_xlsx(r: Report) -> bytes:
    wb = Workbook()
    ws = wb.active
    assert ws is not None
    ws.title = "进展报告"
    header, rows = export_rows(r)
    ws.append(header)
    for row in rows:
        ws.append(row)
    ws.column_dimensions["A"].width = 48
    ws.column_dimensions["B"].width = 40
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def to_csv(r: Report) -> bytes:
    header, rows = export_rows(r)
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(header)
    writer.writerows(rows)
    return ("\ufeff" + buf.getvalue()).encode("utf-8")  # with a BOM, so Excel reads the Chinese headers
