"""Field inspections (DOMAIN.md §5): the five checks, spot-check samples, the case an inspection can
open, client-made ids that replay, and the offline batch."""

from __future__ import annotations

import hashlib
import json
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy import Select
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from app import policy
from app.concurrency import check_version
from app.errors import AppError, Conflict, NotFound, PreconditionFailed, Unprocessable
from app.models.common import utcnow
from app.models.enterprise import Enterprise
from app.models.inspection import (
    Checks,
    Conclusion,
    Inspection,
    InspectionCreate,
    InspectionKind,
    InspectionPublic,
    InspectionUpdate,
    Sample,
)
from app.routing import db_error_to_problem, is_data_fault
from app.scope import Scope, get_visible
from app.services import audit, versioned
from app.services import case as case_service
from app.services import enterprise as enterprise_service

# A device clock a little ahead is tolerated; a date far in the future is a typo that would sit at
# the top of every newest-first list.
FUTURE_TOLERANCE = timedelta(days=1)
BATCH_MAX = 100




def to_public(i: Inspection) -> InspectionPublic:
    return InspectionPublic.model_validate({name: getattr(i, name) for name in InspectionPublic.model_fields})


def _snapshot(i: Inspection) -> dict[str, Any]:
    return to_public(i).model_dump(mode="json", exclude={"created_at", "updated_at"})


def body_hash(data: InspectionCreate) -> str:
    """sha256 of the canonical JSON of a create body (without its id): equal bodies, equal hashes,
    whatever the key order, omitted defaults or the offset `inspected_at` was written in."""
    doc = data.model_dump(mode="json", exclude={"id"})
    doc["inspected_at"] = data.inspected_at.astimezone(UTC).isoformat()
    canonical = json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


def _columns(values: dict[str, Any]) -> dict[str, Any]:
    """Typed body values as the columns store them (times in UTC, as they read back)."""
    def plain(v: Any) -> Any:
        if isinstance(v, datetime):
            return v.astimezone(UTC)
        if isinstance(v, BaseModel):
            return v.model_dump(mode="json")
        if isinstance(v, list):
            return [plain(x) for x in v]
        return v

    return {k: plain(v) for k, v in values.items()}


def _invalid(code: str, loc: list[str | int], msg: str) -> Unprocessable:
    return Unprocessable(msg, code=code, extra={"errors": [{"loc": ["body", *loc], "msg": msg}]})


def failures(checks: Checks, samples: list[Sample]) -> list[str]:
    """What the inspection found wrong: the failed checks by name, then the failed samples."""
    failed = [name for name in Checks.model_fields if not getattr(checks, name).ok]
    return failed + [f"sample {i + 1} ({s.product})" for i, s in enumerate(samples) if not s.passed]


def check_rules(*, kind: InspectionKind, checks: Checks, samples: list[Sample], conclusion: Conclusion,
                inspected_at: datetime) -> None:
    """The rules an inspection keeps, at creation and after every change (422 with a code each)."""
    if kind is InspectionKind.spot_check and not samples:
        raise _invalid("samples_required", ["samples"], "a spot check records at least one sample")
    if kind is not InspectionKind.spot_check and samples:
        raise _invalid("samples_not_allowed", ["samples"],
                       f"samples belong to spot checks; this is a {kind.value} inspection")
    for i, s in enumerate(samples):
        if s.passed and s.failed_items:
            raise _invalid("sample_inconsistent", ["samples", i, "failed_items"],
                           "a sample that passed has no failed items")
    found = failures(checks, samples)
    if found and conclusion is Conclusion.compliant:
        raise _invalid("conclusion_inconsistent", ["conclusion"],
                       f"{', '.join(found)} failed: the conclusion must be issues_found")
    if inspected_at > utcnow() + FUTURE_TOLERANCE:
        raise _invalid("inspected_in_future", ["inspected_at"], "inspected_at lies in the future")


def _check_case_request(data: InspectionCreate) -> None:
    if data.open_case and data.conclusion is not Conclusion.issues_found:
        raise _invalid("no_issues_for_case", ["open_case"], "a case is opened only when issues were found")
    if data.case_kind is not None and not data.open_case:
        raise _invalid("case_kind_without_case", ["case_kind"], "case_kind needs open_case: true")


@dataclass
class Lookups:
    """What a batch loads once for all its items: the enterprises inside the caller's jurisdiction
    and the inspections that already carry one of the items' ids."""

    enterprises: dict[uuid.UUID, Enterprise] = field(default_factory=dict)
    existing: dict[uuid.UUID, Inspection] = field(default_factory=dict)


async def _prefetch(session: AsyncSession, items: list[InspectionCreate]) -> Lookups:
    ent_ids = {d.enterprise_id for d in items}
    ids = {d.id for d in items if d.id is not None}
    lookups = Lookups()
    if ent_ids:
        rows = (await session.execute(select(Enterprise).where(col(Enterprise.id).in_(ent_ids)))).scalars()
        lookups.enterprises = {e.id: e for e in rows}
    if ids:
        rows2 = (await session.execute(select(Inspection).where(col(Inspection.id).in_(ids))
                                       .execution_options(unscoped=True))).scalars()
        lookups.existing = {i.id: i for i in rows2}
    return lookups


async def _existing(session: AsyncSession, inspection_id: uuid.UUID, lookups: Lookups | None) -> Inspection | None:
    # Unscoped: an id taken outside the jurisdiction is still taken (409, not a second row).
    if lookups is not None:
        return lookups.existing.get(inspection_id)
    return (await session.execute(select(Inspection).where(Inspection.id == inspection_id)
                                  .execution_options(unscoped=True))).scalar_one_or_none()


def _replay_or_conflict(existing: Inspection, scope: Scope, digest: str) -> Inspection:
    if existing.body_hash == digest and scope.contains(existing.region_code):
        return existing
    raise Conflict(f"the id {existing.id} is taken by an inspection with another body", code="id_conflict")


async def _enterprise(session: AsyncSession, scope: Scope, enterprise_id: uuid.UUID,
                      lookups: Lookups | None) -> Enterprise:
    if lookups is None:
        return await enterprise_service.get(session, scope=scope, enterprise_id=enterprise_id)
    e = lookups.enterprises.get(enterprise_id)
    if e is None:
        raise NotFound(f"No enterprise {enterprise_id}", code="enterprise_not_found")
    return e


async def create(session: AsyncSession, *, scope: Scope, data: InspectionCreate,
                 lookups: Lookups | None = None) -> tuple[Inspection, bool]:
    """Record an inspection of an enterprise inside the jurisdiction (its region is the
    enterprise's), and its case when `open_case`. Returns it and whether it was created: False is a
    replay of a client id sent before with the same body. The inspection and its audit row are added
    to the session and written at its next flush (at once when it opens a case, which refers to it)."""
    policy.require(policy.can_record_inspections(scope))
    digest = body_hash(data)
    if data.id is not None:
        existing = await _existing(session, data.id, lookups)
        if existing is not None:
            return _replay_or_conflict(existing, scope, digest), False
    enterprise = await _enterprise(session, scope, data.enterprise_id, lookups)
    check_rules(kind=data.kind, checks=data.checks, samples=data.samples, conclusion=data.conclusion,
                inspected_at=data.inspected_at)
    _check_case_request(data)
    values = _columns({k: getattr(data, k) for k in
                       ("kind", "inspected_at", "officers", "location", "checks", "samples", "conclusion", "notes")})
    ins = Inspection(**values, id=data.id or uuid.uuid4(), enterprise_id=enterprise.id,
                     region_code=enterprise.region_code, body_hash=digest, created_by=scope.principal_id)
    session.add(ins)
    if data.open_case:
        await session.flush()
        await case_service.open_from_inspection(
            session, scope=scope, inspection=ins,
            kind=data.case_kind or case_service.derive_kind(data.checks, data.samples))
    await audit.record(session, action="inspection.create", entity_type="inspection", entity_id=str(ins.id),
                       region_code=ins.region_code, after=_snapshot(ins))
    return ins, True


async def create_or_replay(session: AsyncSession, *, scope: Scope, data: InspectionCreate,
                           lookups: Lookups | None = None) -> tuple[Inspection, bool]:
    """``create`` inside a savepoint, written when it is released. When another request created the
    same client id meanwhile (its INSERT hit the primary key after that request committed), this is a
    replay or a 409."""
    try:
        async with session.begin_nested():
            return await create(session, scope=scope, data=data, lookups=lookups)
    except IntegrityError:
        if data.id is None:
            raise
        existing = await _existing(session, data.id, None)
        if existing is None:
            raise
        return _replay_or_conflict(existing, scope, body_hash(data)), False


async def get(session: AsyncSession, *, scope: Scope, inspection_id: uuid.UUID,
              for_update: bool = False) -> Inspection:
    return await get_visible(session, Inspection, inspection_id, what="inspection", for_update=for_update)


async def update(session: AsyncSession, *, scope: Scope, inspection_id: uuid.UUID, data: InspectionUpdate,
                 expected_version: int) -> Inspection:
    """Change an inspection from the version the client started from. A stale version is a 412
    whose body carries the server's copy (`current`) and the client's changes (`yours`)."""
    policy.require(policy.can_record_inspections(scope))
    ins = await get(session, scope=scope, inspection_id=inspection_id, for_update=True)
    current = to_public(ins)
    try:
        check_version(ins.version, expected_version, current_body=current.model_dump(mode="json"))
    except PreconditionFailed as err:
        err.extra["yours"] = data.model_dump(mode="json", exclude_unset=True)
        raise
    changes = {k: getattr(data, k) for k in data.model_fields_set}
    merged = current.model_copy(update=changes)
    check_rules(kind=merged.kind, checks=merged.checks, samples=merged.samples, conclusion=merged.conclusion,
                inspected_at=merged.inspected_at)
    if ins.case_id is not None and merged.conclusion is Conclusion.compliant:
        raise Conflict(f"this inspection opened case {ins.case_id}; its conclusion stays issues_found",
                       code="case_opened")
    return await versioned.apply_changes(session, ins, _columns(changes), entity_type="inspection",
                                         snapshot=_snapshot)


def list_query(*, scope: Scope, enterprise_id: uuid.UUID | None, region: str | None, kind: InspectionKind | None,
               conclusion: Conclusion | None, since: datetime | None, until: datetime | None) -> Select[Any]:
    """Inspections inside the jurisdiction, newest first (`inspected_at`, then id)."""
    stmt = select(Inspection)
    if region is not None:
        stmt = stmt.where(scope.inside(col(Inspection.region_code), region))
    if enterprise_id is not None:
        stmt = stmt.where(Inspection.enterprise_id == enterprise_id)
    if kind is not None:
        stmt = stmt.where(Inspection.kind == kind)
    if conclusion is not None:
        stmt = stmt.where(Inspection.conclusion == conclusion)
    if since is not None and until is not None and since >= until:
        raise _invalid("invalid_period", ["from"], "from must lie before to")
    if since is not None:
        stmt = stmt.where(col(Inspection.inspected_at) >= since)
    if until is not None:
        stmt = stmt.where(col(Inspection.inspected_at) < until)
    return stmt.order_by(col(Inspection.inspected_at).desc(), col(Inspection.id).desc())


# --- the offline batch ----------------------------------------------------------------------------


class InspectionBatch(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"example": {"items": [
        InspectionCreate.model_config["json_schema_extra"]["example"],  # type: ignore[index]
        {"id": "5d0c7a52-1f7e-4c1e-9a43-2b8f4c6d9e01", "enterprise_id": "6f1c2d9e-2b1a-4c55-9a59-7f0c1b1a2d3e",
         "kind": "spot_check", "inspected_at": "2026-11-20T14:10:00+08:00", "officers": ["王芳", "李强"],
         "checks": {k: {"ok": True} for k in Checks.model_fields},
         "samples": [{"product": "BV 2.5mm² 电线", "batch": "20261101", "standard": "GB/T 5023.3-2008",
                      "lab": "浙江省产品质量检验研究院", "passed": True, "failed_items": []}],
         "conclusion": "compliant"}]}})

    items: list[Any] = Field(
        min_length=1, max_length=BATCH_MAX,
        description="1..100 inspection create bodies; each is validated on its own",
        json_schema_extra={"items": {"$ref": "#/components/schemas/InspectionCreate"}})


class BatchItemResult(BaseModel):
    id: uuid.UUID | None = Field(description="the inspection's id (server-made when the item had none); "
                                             "null for a rejected item without a usable id")
    status: Literal["created", "replayed", "rejected"]
    problem: dict[str, Any] | None = Field(
        default=None, description="problem details of a rejected item (null otherwise)",
        json_schema_extra={"anyOf": [{"$ref": "#/components/schemas/Problem"}, {"type": "null"}]})


class BatchResults(BaseModel):
    results: list[BatchItemResult]


def _raw_id(raw: Any) -> uuid.UUID | None:
    try:
        return uuid.UUID(str(raw["id"])) if isinstance(raw, dict) and raw.get("id") is not None else None
    except ValueError:
        return None


def _parse(raw: Any, index: int) -> InspectionCreate | BatchItemResult:
    try:
        return InspectionCreate.model_validate(raw)
    except ValidationError as exc:
        errors = [{"loc": ["body", "items", index, *e["loc"]], "msg": e["msg"], "type": e["type"]}
                  for e in exc.errors(include_url=False)]
        first = errors[0]
        detail = f"{'.'.join(str(p) for p in first['loc'])}: {first['msg']}"
        problem = Unprocessable(detail, extra={"errors": errors}).to_problem()
        return BatchItemResult(id=_raw_id(raw), status="rejected", problem=problem)


async def create_batch(session: AsyncSession, *, scope: Scope, items: list[Any]) -> list[BatchItemResult]:
    """Create, replay or reject each item, in order. One bad item (invalid, outside the jurisdiction,
    a conflicting id, a database error) loses nothing else; the request commits once.

    The items are written together, in one savepoint and one flush. When that cannot be (an item
    opens a case, which needs its inspection's row first) or the database refuses a value or a
    constraint (a faulty item, or another request creating one of the ids meanwhile), each item is
    written in its own savepoint instead, which finds the faulty one and keeps the rest. Other
    database errors (a timeout, a lost connection, a deadlock) are the whole batch's problem."""
    policy.require(policy.can_record_inspections(scope))
    parsed = [_parse(raw, i) for i, raw in enumerate(items)]
    lookups = await _prefetch(session, [p for p in parsed if isinstance(p, InspectionCreate)])
    if not any(isinstance(p, InspectionCreate) and p.open_case for p in parsed):
        # the items written together learn of each other in a copy: nothing of it is left if it fails
        together = Lookups(enterprises=lookups.enterprises, existing=dict(lookups.existing))
        try:
            async with session.begin_nested():
                return await _each(session, scope, parsed, together, one_by_one=False)
        except DBAPIError as exc:
            if not is_data_fault(exc):  # a timeout, a lost connection, a deadlock: the whole batch's
                raise
            # rolled back to the savepoint, nothing of the batch is left: one by one below
    return await _each(session, scope, parsed, lookups, one_by_one=True)


async def _each(session: AsyncSession, scope: Scope, parsed: list[InspectionCreate | BatchItemResult],
                lookups: Lookups, *, one_by_one: bool) -> list[BatchItemResult]:
    """Each item's result, in order: ``create`` for each, in a savepoint of its own when ``one_by_one``
    (a database error rejects that item alone), else all added to the session, where a database error
    is the caller's to handle. A later item with an id created here replays it."""
    results: list[BatchItemResult] = []
    write = create_or_replay if one_by_one else create
    for p in parsed:
        if isinstance(p, BatchItemResult):
            results.append(p)
            continue
        try:
            try:
                ins, created = await write(session, scope=scope, data=p, lookups=lookups)
            except DBAPIError as exc:
                if not one_by_one:
                    raise
                raise db_error_to_problem(exc) from exc
        except AppError as err:
            results.append(BatchItemResult(id=p.id, status="rejected", problem=err.to_problem()))
            continue
        if created:
            lookups.existing[ins.id] = ins
        results.append(BatchItemResult(id=ins.id, status="created" if created else "replayed"))
    return results
