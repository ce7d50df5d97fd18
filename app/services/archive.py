"""The quality archive (质量监管信息档案, DOMAIN.md §5), assembled on each request from the records
themselves, so an inspection shows the moment it is committed and nothing is typed twice.

Queries are bounded whatever the enterprise's history, and the common archive (no case, bad record
or recall) reads in four raw statements: the enterprise with its kept key facts and whether it has
any case, bad record or recall; its licences; its inspections (split into spot checks, annual reviews
and the others here); the names of its categories. Cases, when it has any, are one more raw
statement; bad records and recalls one ORM query each; its flags one more when its kept facts cannot
serve every caller (focus.page_flags). The raw statements state the caller's
jurisdiction themselves (``SqlParams.inside``, the conditions of the scope's session filter); the ORM
queries go through that filter. The JSON is written without building the models (app.json_rows),
in the fields and order of ``Archive``: a test checks that every archive answered is byte for byte
what the model writes."""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Mapping
from types import SimpleNamespace
from typing import Any, cast

from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from app import json_rows
from app.db import SqlParams, raw_fetch
from app.errors import NotFound
from app.models.case import BadRecord, PenaltyCase
from app.models.common import utcnow
from app.models.enterprise import LicensePublic, LicenseStatus
from app.models.inspection import InspectionKind, InspectionPublic
from app.models.recall import Recall
from app.scope import Scope
from app.services import case as case_service
from app.services import enterprise as enterprise_service
from app.services import focus
from app.services import license as license_service
from app.services import recall as recall_service

_INSPECTION = json_rows.RowShape(InspectionPublic)
_LICENCE = json_rows.RowShape(LicensePublic)
_GROUPS = {InspectionKind.spot_check.value: "spot_checks", InspectionKind.annual_review.value: "annual_reviews"}


def _summary(licences: list[dict[str, Any]]) -> dict[str, Any]:
    by = Counter(x["status"] for x in licences)
    valid = [x["expires_on"] for x in licences if x["status"] is LicenseStatus.valid]
    return {"total": len(licences), **{s.value: by[s] for s in (LicenseStatus.valid, LicenseStatus.expired,
                                                                  LicenseStatus.suspended, LicenseStatus.revoked,
                                                                  LicenseStatus.cancelled)},
            "next_expiry": min(valid, default=None)}


def _categories(codes: list[str], rows: Mapping[str, Mapping[str, Any]],
                licences: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The enterprise's categories; a valid licence covers its own category, the sub-products of it,
    and counts for the parent of a licensed sub-product."""
    valid = {x["category_code"] for x in licences if x["status"] is LicenseStatus.valid}

    def parent(code: str) -> str | None:
        row = rows.get(code)
        return row["parent_code"] if row else None

    def covered(code: str) -> bool:
        return code in valid or parent(code) in valid or any(parent(v) == code for v in valid)

    return [{"code": c, "name": rows[c]["name"] if c in rows else c, "parent_code": parent(c),
             "key": rows[c]["key"] if c in rows else False, "licensed": covered(c)} for c in codes]


def enterprise_statement(scope: Scope, enterprise_id: uuid.UUID, facts: Mapping[str, Any]) -> tuple[str, SqlParams]:
    """The enterprise inside the jurisdiction with its kept key facts (for ``facts``, as in
    focus.with_kept_facts), and whether it has any case, bad record or recall inside the jurisdiction."""
    params = SqlParams(scope)
    where = [f"e.id = {params.add(enterprise_id)}", *params.inside("e.region_code")]
    mine = "".join(f" AND {c}" for c in params.inside("x.region_code"))
    present = ", ".join(f"EXISTS (SELECT 1 FROM {table} x WHERE x.enterprise_id = e.id{mine})"  # noqa: S608
                        f" AS any_{table}" for table in ("penalty_case", "bad_record", "recall"))
    # constant fragments and placeholders only
    sql = f"SELECT {enterprise_service.PUBLIC_COLUMNS_SQL}, {present} FROM enterprise e WHERE {' AND '.join(where)}"  # noqa: S608
    return focus.with_kept_facts(sql, params, facts), params


def rows_statement(scope: Scope, enterprise_id: uuid.UUID, table: str,
                   columns: json_rows.RowShape | tuple[str, ...], order: str) -> tuple[str, SqlParams]:
    """The enterprise's rows in ``table`` (``x``): ``columns``, or those a RowShape reads, inside the
    jurisdiction, in ``order``."""
    params = SqlParams(scope)
    where = [f"x.enterprise_id = {params.add(enterprise_id)}", *params.inside("x.region_code")]
    select_sql = columns.select_sql("x") if isinstance(columns, json_rows.RowShape) else \
        ", ".join(f"x.{c}" for c in columns)
    # constant names and placeholders only
    return (f"SELECT {select_sql} FROM {table} x WHERE {' AND '.join(where)} ORDER BY {order}",  # noqa: S608
            params)


# rows_statement's last three arguments for each section read as raw rows
LICENCES = ("license", _LICENCE, "x.issued_on DESC, x.created_at DESC, x.id DESC")
INSPECTIONS = ("inspection", _INSPECTION, "x.inspected_at DESC, x.id DESC")
CASES = ("penalty_case", tuple(c.name for c in PenaltyCase.__table__.columns),  # type: ignore[attr-defined]
         "x.created_at DESC, x.id DESC")


async def _rows_of(session: AsyncSession, scope: Scope, enterprise_id: uuid.UUID, table: str,
                   columns: json_rows.RowShape | tuple[str, ...], order: str) -> list[Any]:
    return await raw_fetch(session, *rows_statement(scope, enterprise_id, table, columns, order))


async def build(session: AsyncSession, *, scope: Scope, enterprise_id: uuid.UUID) -> bytes:
    """The archive of one enterprise inside the jurisdiction (404 outside), as the JSON of ``Archive``."""
    facts = focus.facts_parameters()
    found = await raw_fetch(session, *enterprise_statement(scope, enterprise_id, facts))
    if not found:
        raise NotFound(f"No enterprise {enterprise_id}", code="enterprise_not_found")
    e = found[0]
    basic = (await enterprise_service.public_rows(session, found, scope, facts))[0]
    day = facts["day"]  # the day the flags were computed for, so that a licence's status agrees with them
    licences = [_LICENCE(row, status=license_service.status_on(row["status"], row["expires_on"], day))
                for row in await _rows_of(session, scope, e["id"], *LICENCES)]
    sections: dict[str, list[Any]] = {"spot_checks": [], "annual_reviews": [], "inspections": []}
    for row in await _rows_of(session, scope, e["id"], *INSPECTIONS):
        sections[_GROUPS.get(row["kind"], "inspections")].append(_INSPECTION(row))
    codes = sorted({*e["category_codes"], *(x["category_code"] for x in licences)})
    names: dict[str, Any] = {}
    if codes:  # the category tree is the same for every caller
        tree = SqlParams()
        sql = f"SELECT code, name, parent_code, key FROM product_category WHERE code = ANY({tree.add(codes)})"  # noqa: S608
        names = {row["code"]: row for row in await raw_fetch(session, sql, tree, unscoped=True)}
    # a case's view is computed from its row (overdue, ...): case.to_public reads the row's fields; a
    # machine client sees it without staff names, as GET /cases/{id} shows it
    rows = await _rows_of(session, scope, e["id"], *CASES) if e["any_penalty_case"] else []
    cases = [case_service.for_caller(case_service.to_public(cast(PenaltyCase, SimpleNamespace(**row))), scope)
             .model_dump(mode="json") for row in rows]
    bad = (await session.execute(
        select(BadRecord).where(BadRecord.enterprise_id == e["id"])
        .order_by(col(BadRecord.decided_at).desc(), col(BadRecord.id).desc()))).scalars().all() \
        if e["any_bad_record"] else []
    recalls = (await session.execute(
        select(Recall).where(Recall.enterprise_id == e["id"])
        .order_by(col(Recall.created_at).desc(), col(Recall.id).desc()))).scalars().all() \
        if e["any_recall"] else []
    # the fields of Archive, in its order (a test validates every archive answered against the model)
    return json_rows.dumps({
        "enterprise_id": e["id"], "generated_at": utcnow(), "basic": basic,
        "production": {"size": e["size"], "licensed": any(x["status"] is LicenseStatus.valid for x in licences),
                       "categories": _categories(e["category_codes"], names, licences),
                       "licenses": _summary(licences)},
        "licenses": licences, **sections, "cases": cases,
        "bad_records": [{"id": str(r.id), "case_id": str(r.case_id), "violation": r.violation.value,
                         "penalties": r.penalties, "decided_at": r.decided_at.isoformat(),
                         "published": r.published, "published_at": r.published_at.isoformat()} for r in bad],
        "recalls": [recall_service.to_public(r).model_dump(mode="json", exclude={"by_batch", "by_region"})
                    for r in recalls]})
