"""Focus lists (DOMAIN.md §3): key-enterprise flags computed from the records, plus manual flags.

The computed criteria have ONE SQL definition, the view ``pqs_key_facts_live`` (migration 0018: the
facts behind each criterion for one enterprise, with the figures its reason quotes). Its rows are kept
in ``enterprise_key_facts``, refreshed by a job for the enterprises a trigger marked as changed, and
read through ``pqs_key_facts`` (live while marked). The enterprise list joins it to its page for the
flags and filters on it for ``?key=`` (``key_sql``: a key enterprise is exactly one whose flags are not
empty); ``key_flags_for`` reads it for the enterprises it is given.

Manual flags are a bureau's own judgement, shown beside the computed ones (``source: manual``).
DELETE removes a manual flag only: a computed flag follows the records and goes away when they
change (a licence recorded, a later inspection finding the conditions met, ...).
"""

from __future__ import annotations

import json
import uuid
from collections import defaultdict
from collections.abc import Mapping
from datetime import date, datetime
from typing import Any

from sqlalchemy import ColumnClause, literal_column
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import select

from app.db import raw_fetch
from app.errors import Conflict, NotFound
from app.models.enterprise import (
    Enterprise,
    EnterpriseKeyFlag,
    KeyCriterion,
    KeyFlagCreate,
    KeyFlagPublic,
)
from app.models.focus import ManualKeyFlagPublic
from app.scope import Scope
from app.services import audit
from app.services import enterprise as enterprise_service
from app.services import license as license_service

UNLICENSED_REASON = "no valid production licence"
PASSED_SAMPLES: ColumnClause[Any] = literal_column("'$[*] ? (@.passed == true)'::jsonpath")


def two_years_before(day: date) -> date:
    """Criterion (3) looks back two years (the same calendar day; 29 February falls back to the 28th)."""
    try:
        return day.replace(year=day.year - 2)
    except ValueError:
        return day.replace(year=day.year - 2, day=28)


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


# The facts behind the computed criteria have ONE definition, the view ``pqs_key_facts_live``
# (migration 0018); their rows are kept in ``enterprise_key_facts`` and read through the view
# ``pqs_key_facts`` (the kept row, or the live one while a change is not yet refreshed), joined to the
# statement's enterprises as ``kf``. What depends on the day (a licence expired since, the two-year
# window) is decided here, when read. No row means no facts (no licence, inspection, case or flag).
FACT_COLUMNS = ("licence_valid_until", "latest_kind", "latest_inspected_at", "latest_conditions_ok",
                "latest_conditions_note", "failed_spot_checks", "cases", "last_case", "complaints", "last_complaint",
                "manual_flags")
# the jsonb lists come back NULL when empty (most are): nothing to decode
FACTS_SELECT = ", ".join(f"nullif(kf.{c}, '[]') AS {c}" if c in ("failed_spot_checks", "manual_flags") else f"kf.{c}"
                         for c in FACT_COLUMNS)


def facts_join(id_column: str) -> str:
    """SQL joining the facts of the enterprise whose id is ``id_column``, as ``kf``: one indexed lookup
    per row (OFFSET 0 keeps the planner from flattening it into a hash join over every kept row)."""
    return (f"LEFT JOIN LATERAL (SELECT * FROM pqs_key_facts k WHERE k.enterprise_id = {id_column} OFFSET 0) kf"  # noqa: S608
            " ON true")


_FLAGS_SQL = ("SELECT ids.id, " + FACTS_SELECT  # noqa: S608 - constant fragments
              + " FROM unnest($1::uuid[]) AS ids(id) " + facts_join("ids.id"))


def key_sql(day: str, since: str) -> str:
    """SQL condition: the enterprise joined to its facts as ``kf`` has a flag, computed or manual, on
    ``day`` (a date placeholder) with spot checks counted from ``since`` (epoch seconds placeholder):
    exactly the enterprises whose ``key_flags`` are not empty."""
    return (f"(kf.enterprise_id IS NULL OR kf.licence_valid_until IS NULL OR kf.licence_valid_until < {day}"  # noqa: S608
            " OR kf.latest_conditions_ok = 'false' OR kf.cases > 0 OR kf.complaints > 0"
            " OR kf.manual_flags <> '[]'::jsonb OR EXISTS (SELECT 1 FROM jsonb_array_elements(kf.failed_spot_checks)"
            f" AS x WHERE (x->>0)::float8 >= {since}))")


def facts_parameters() -> tuple[date, datetime]:
    """Today and the start of the two-year window of criterion (3), for reading the facts."""
    day = license_service.today()
    return day, license_service.start_of_day(two_years_before(day))


def _local(at: datetime) -> str:
    return license_service.local_date(at).isoformat()


def _auto_reasons(row: Mapping[Any, Any], day: date, since: datetime) -> dict[KeyCriterion, str]:
    reasons: dict[KeyCriterion, str] = {}
    until = row["licence_valid_until"]
    if until is None or until < day:
        reasons[KeyCriterion.unlicensed] = UNLICENSED_REASON
    elif not (row["latest_conditions_ok"] == "false" or row["failed_spot_checks"] or row["cases"]
              or row["complaints"]):
        return reasons  # most enterprises: nothing else to look at
    if row["latest_conditions_ok"] == "false":
        note = row["latest_conditions_note"]
        reasons[KeyCriterion.lowered_conditions] = (
            f"licensing conditions not met at the latest inspection ({row['latest_kind']} on "
            f"{_local(row['latest_inspected_at'])}){': ' + note if note else ''}")
    start = since.timestamp()
    spot = [int(failed) for at, failed in _json(row["failed_spot_checks"]) if float(at) >= start]
    if spot:
        reasons[KeyCriterion.spot_check_problems] = (
            f"{_plural(sum(spot), 'failed spot-check sample')} in {_plural(len(spot), 'spot check')} since "
            f"{license_service.local_date(since).isoformat()}")
    past = []
    if row["cases"]:
        past.append(f"{_plural(int(row['cases']), 'penalty case')} (latest {_local(row['last_case'])})")
    if row["complaints"]:
        past.append(f"{_plural(int(row['complaints']), 'complaint')} with issues found "
                    f"(latest {_local(row['last_complaint'])})")
    if past:
        reasons[KeyCriterion.past_violations] = "; ".join(past)
    return reasons


def _json(value: Any) -> list[Any]:
    """A jsonb array as read: decoded by the connection's codec, or text without one; NULL is empty."""
    if value is None:
        return []
    return list(json.loads(value) if isinstance(value, str) else value)


def flags_from_facts(row: Mapping[Any, Any], day: date, since: datetime) -> list[dict[str, str]]:
    """The flags of one enterprise from its facts (the FACT_COLUMNS of a row, NULL when it has none):
    computed and manual, criterion by criterion, each ``{criterion, reason, source}`` (KeyFlagPublic)."""
    auto = _auto_reasons(row, day, since)
    manual = _json(row["manual_flags"])
    out: list[dict[str, str]] = []
    for criterion in KeyCriterion:
        if criterion in auto:
            out.append({"criterion": criterion.value, "reason": auto[criterion], "source": "auto"})
        out.extend({"criterion": c, "reason": r, "source": "manual"} for c, r in manual if c == criterion.value)
    return out


async def key_flags_for(session: AsyncSession, enterprises: list[Enterprise]) -> dict[uuid.UUID, list[KeyFlagPublic]]:
    """Flags of each of ``enterprises`` (already read through the caller's jurisdiction), in one statement."""
    if not enterprises:
        return defaultdict(list)
    day, since = facts_parameters()
    rows = await raw_fetch(session, _FLAGS_SQL, [e.id for e in enterprises])
    return defaultdict(list, {row["id"]: [KeyFlagPublic.model_validate(f) for f in flags_from_facts(row, day, since)]
                              for row in rows})


def manual_public(flag: EnterpriseKeyFlag) -> ManualKeyFlagPublic:
    return ManualKeyFlagPublic(enterprise_id=flag.enterprise_id, criterion=flag.criterion, reason=flag.reason,
                               set_by=flag.set_by, set_at=flag.set_at)


async def _manual(session: AsyncSession, enterprise_id: uuid.UUID, criterion: KeyCriterion) -> EnterpriseKeyFlag | None:
    stmt = select(EnterpriseKeyFlag).where(EnterpriseKeyFlag.enterprise_id == enterprise_id,
                                           EnterpriseKeyFlag.criterion == criterion)
    return (await session.execute(stmt)).scalar_one_or_none()


async def set_manual_flag(session: AsyncSession, *, scope: Scope, enterprise_id: uuid.UUID,
                          data: KeyFlagCreate) -> EnterpriseKeyFlag:
    """Put a manual flag on an enterprise inside the jurisdiction. The same flag with the same reason
    again is a replay; with another reason a 409 (clear it first)."""
    enterprise_service.require_writer(scope)
    e = await enterprise_service.get(session, scope=scope, enterprise_id=enterprise_id)
    existing = await _manual(session, e.id, data.criterion)
    if existing is not None:
        if existing.reason == data.reason:
            return existing
        raise Conflict(f"a manual {data.criterion.value} flag is already set with another reason; delete it first",
                       code="key_flag_exists")
    flag = EnterpriseKeyFlag(enterprise_id=e.id, criterion=data.criterion, region_code=e.region_code,
                             reason=data.reason, set_by=scope.principal_id)
    session.add(flag)
    await session.flush()
    await audit.record(session, action="key_flag.set", entity_type="enterprise", entity_id=str(e.id),
                       region_code=e.region_code, after=manual_public(flag).model_dump(mode="json"))
    return flag


async def clear_manual_flag(session: AsyncSession, *, scope: Scope, enterprise_id: uuid.UUID,
                            criterion: KeyCriterion) -> None:
    """Remove a manual flag (404 when there is none); computed flags are not touched."""
    enterprise_service.require_writer(scope)
    e = await enterprise_service.get(session, scope=scope, enterprise_id=enterprise_id)
    flag = await _manual(session, e.id, criterion)
    if flag is None:
        raise NotFound(f"enterprise {e.id} has no manual {criterion.value} flag", code="key_flag_not_found")
    before = manual_public(flag).model_dump(mode="json")
    await session.delete(flag)
    await session.flush()
    await audit.record(session, action="key_flag.clear", entity_type="enterprise", entity_id=str(e.id),
                       region_code=e.region_code, before=before)
