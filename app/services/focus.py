"""Focus lists (DOMAIN.md §3): key-enterprise flags computed from the records, plus manual flags.

The computed criteria have ONE SQL definition, ``FACTS_LATERAL`` (the facts behind each criterion for
one enterprise, with the figures its reason quotes): ``key_flags_for`` asks it of a page of ids in one
query. The database keeps those facts per enterprise (migration 0020), and the enterprise list reads
the kept ones for its flags (``page_flags``) and for ``?key=`` (``key_filter``), falling back to
FACTS_LATERAL where they cannot serve the caller. ``KEY_EXPR`` decides on either: a key enterprise
is exactly one whose flags are not empty.

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

from app import scope as scope_mod
from app.db import SqlParams, raw_fetch
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


# The ONE definition of the computed criteria: a LATERAL subquery of the facts behind them for the
# enterprise whose id is ``{eid}``, read through the caller's jurisdiction (``{pattern}``, the scope's
# region prefix and '%', applied to every table it reads). ``key_flags_for`` asks it of a page of ids;
# key_filter, of the enterprises whose kept facts cannot serve the caller. It is plain SQL: the ORM's
# per-statement cost dominated a page.
FACTS_LATERAL = """LEFT JOIN LATERAL (
SELECT NOT EXISTS (SELECT 1 FROM license l WHERE l.enterprise_id = {eid} AND l.region_code LIKE {pattern}
                   AND l.status = 'valid' AND l.expires_on >= {day}) AS unlicensed,
       lc.kind, lc.inspected_at, lc.ok, lc.note,
       sc.checks, sc.samples, pc.n AS cases, pc.last AS last_case, cp.n AS complaints, cp.last AS last_complaint,
       mf.flags
FROM (SELECT 1) AS one
LEFT JOIN LATERAL (
  SELECT i.kind, i.inspected_at, i.checks->'conditions_met'->>'ok' AS ok, i.checks->'conditions_met'->>'note' AS note
  FROM inspection i WHERE i.enterprise_id = {eid} AND i.region_code LIKE {pattern}
  ORDER BY i.inspected_at DESC, i.id DESC LIMIT 1) lc ON true
LEFT JOIN LATERAL (
  SELECT count(*) AS checks,
         sum(jsonb_array_length(jsonb_path_query_array(i.samples, '$[*] ? (@.passed == false)'))) AS samples
  FROM inspection i WHERE i.enterprise_id = {eid} AND i.region_code LIKE {pattern} AND i.kind = 'spot_check'
   AND i.samples @> '[{{"passed": false}}]' AND i.inspected_at >= {since}) sc ON true
LEFT JOIN LATERAL (
  SELECT count(*) AS n, max(c.created_at) AS last FROM penalty_case c
  WHERE c.enterprise_id = {eid} AND c.region_code LIKE {pattern}) pc ON true
LEFT JOIN LATERAL (
  SELECT count(*) AS n, max(i.inspected_at) AS last FROM inspection i
  WHERE i.enterprise_id = {eid} AND i.region_code LIKE {pattern} AND i.kind = 'complaint'
   AND i.conclusion = 'issues_found') cp ON true
LEFT JOIN LATERAL (
  SELECT jsonb_agg(jsonb_build_array(f.criterion, f.reason) ORDER BY f.criterion) AS flags
  FROM enterprise_key_flag f WHERE f.enterprise_id = {eid} AND f.region_code LIKE {pattern}) mf ON true
) {alias} ON true"""

# A key enterprise is one with a computed or a manual flag: the facts of FACTS_LATERAL (as ``{alias}``).
# No manual flag is NULL ``flags``, in FACTS_LATERAL and in KEPT_AS_FACTS alike.
KEY_EXPR = ("({a}.unlicensed OR coalesce({a}.ok = 'false', false) OR {a}.checks > 0 OR {a}.cases > 0"
            " OR {a}.complaints > 0 OR {a}.flags IS NOT NULL)")

# The kept facts of an enterprise (``kf``, table enterprise_key_facts, migration 0020) as the columns of
# FACTS_LATERAL, for the day ``{day}`` and the two-year window from ``{since}``: the one mapping from
# the kept facts to the facts, which KEY_EXPR and flags_from_facts read either way.
KEPT_AS_FACTS = """LEFT JOIN LATERAL (
SELECT (kf.licence_until IS NULL OR kf.licence_until < {day}) AS unlicensed,
       kf.last_kind AS kind, kf.last_at AS inspected_at, kf.last_ok AS ok, kf.last_note AS note,
       w.checks, w.samples, kf.cases, kf.last_case, kf.complaints, kf.last_complaint,
       NULLIF(kf.flags, '[]'::jsonb) AS flags
FROM (SELECT count(*) AS checks, sum(t.n) AS samples
      FROM unnest(kf.check_times, kf.check_samples) AS t(at, n) WHERE t.at >= {since}) AS w
) {alias} ON true"""


def key_filter(params: SqlParams, facts: Mapping[str, Any]) -> tuple[str, str]:
    """Whether the enterprise ``e`` of a statement is a key enterprise for the caller it is built for
    (``params``), as the joins and the condition to put in it: from its kept facts where they serve
    every caller (``uniform``, as in page_flags), from its records (FACTS_LATERAL) where they do not or
    none are kept. Either way KEY_EXPR decides. ``facts``: the statement's facts_parameters() (one day
    for all its parts)."""
    pattern, day, since = params.region_pattern(), params.add(facts["day"]), params.add(facts["since"])
    joins = ("LEFT JOIN enterprise_key_facts kf ON kf.enterprise_id = e.id "
             + KEPT_AS_FACTS.format(day=day, since=since, alias="kk"))
    live = ("EXISTS (SELECT 1 FROM (SELECT 1) AS one "  # noqa: S608 - constant fragments and placeholders
            + FACTS_LATERAL.format(eid="e.id", alias="k", pattern=pattern, day=day, since=since)
            + " WHERE " + KEY_EXPR.format(a="k") + ")")
    # CASE evaluates the records' subquery only for the enterprises whose kept facts cannot serve
    return joins, f"(CASE WHEN kf.uniform THEN {KEY_EXPR.format(a='kk')} ELSE {live} END)"


# The flags' facts of a page of enterprises ($1, uuid[]), for a caller ($2 pattern, $3 day, $4 since): a
# statement of its own, not joined to the page's, because its plan does not depend on the values and
# PostgreSQL reuses it (a generic plan), where the joined statement was planned afresh every time.
# Only enterprises with a flag come back (most have none).
FLAGS_SQL = ("SELECT ids.id, f.* FROM unnest($1::uuid[]) AS ids(id) "  # noqa: S608 - constant fragments
             + FACTS_LATERAL.format(eid="ids.id", pattern="$2", day="$3", since="$4", alias="f")
             + " WHERE " + KEY_EXPR.format(a="f"))


def facts_parameters() -> dict[str, Any]:
    """The day and the start of the two-year window FACTS_LATERAL and KEPT_AS_FACTS read today (the
    caller's region pattern comes from SqlParams.region_pattern)."""
    day = license_service.today()
    return {"day": day, "since": license_service.start_of_day(two_years_before(day))}


def _local(at: datetime) -> str:
    return license_service.local_date(at).isoformat()


def _auto_reasons(row: Mapping[Any, Any], since: date) -> dict[KeyCriterion, str]:
    reasons: dict[KeyCriterion, str] = {}
    if row["unlicensed"]:
        reasons[KeyCriterion.unlicensed] = UNLICENSED_REASON
    if row["ok"] == "false":
        reasons[KeyCriterion.lowered_conditions] = (
            f"licensing conditions not met at the latest inspection ({row['kind']} on {_local(row['inspected_at'])})"
            f"{': ' + row['note'] if row['note'] else ''}")
    if row["checks"]:
        reasons[KeyCriterion.spot_check_problems] = (
            f"{_plural(int(row['samples'] or 0), 'failed spot-check sample')} in "
            f"{_plural(int(row['checks']), 'spot check')} since {since.isoformat()}")
    past = []
    if row["cases"]:
        past.append(f"{_plural(int(row['cases']), 'penalty case')} (latest {_local(row['last_case'])})")
    if row["complaints"]:
        past.append(f"{_plural(int(row['complaints']), 'complaint')} with issues found "
                    f"(latest {_local(row['last_complaint'])})")
    if past:
        reasons[KeyCriterion.past_violations] = "; ".join(past)
    return reasons


def flags_from_facts(row: Mapping[Any, Any], since: date) -> list[dict[str, str]]:
    """The flags of one enterprise from its FACTS_LATERAL row: computed and manual, criterion by
    criterion, each ``{criterion, reason, source}`` (the shape of KeyFlagPublic)."""
    auto = _auto_reasons(row, since)
    manual = row["flags"] or ()  # none is NULL (KEY_EXPR): nothing for the driver to decode
    if isinstance(manual, str):  # jsonb as text, on a connection without the json codec
        manual = json.loads(manual)
    out: list[dict[str, str]] = []
    if not auto and not manual:  # most enterprises
        return out
    for criterion in KeyCriterion:
        if criterion in auto:
            out.append({"criterion": criterion.value, "reason": auto[criterion], "source": "auto"})
        out.extend({"criterion": c, "reason": r, "source": "manual"} for c, r in manual if c == criterion.value)
    return out


# The kept facts joined to a page: ``with_kept_facts`` puts each row's facts beside it (KEPT_AS_FACTS,
# whose column names an enterprise row does not use), ``page_flags`` turns the page's rows into flags.
# Kept facts serve every caller only when ``uniform`` (all the enterprise's records lie in its own
# region); for the other rows, and rows with none kept yet, page_flags computes the flags from the
# records through the caller's jurisdiction.
def with_kept_facts(page_sql: str, params: SqlParams, facts: Mapping[str, Any]) -> str:
    """``page_sql`` (a statement of enterprise rows with ``id``, ``created_at``, already cut to its page)
    with each row's kept facts beside it, in the same order (``params``: the page's). They are joined
    once the page is cut: inside it their estimated cost made PostgreSQL plan a parallel worker for the
    q search (8 ms to start one for a 1 ms query). ``facts`` as for key_filter."""
    return (f"SELECT p.*, kf.uniform AS kf_uniform, kk.* FROM ({page_sql}) p"  # noqa: S608 - constant fragments
            " LEFT JOIN enterprise_key_facts kf ON kf.enterprise_id = p.id "
            + KEPT_AS_FACTS.format(day=params.add(facts["day"]), since=params.add(facts["since"]), alias="kk")
            + " ORDER BY p.created_at DESC, p.id DESC")


async def page_flags(session: AsyncSession, rows: list[Any], scope: Scope,
                     facts: Mapping[str, Any]) -> list[list[dict[str, str]]]:
    """The flags of each row of a page read through ``with_kept_facts``: from the kept facts where they
    serve every caller, from the records (flags_of, one statement) for the others. ``facts``: those the
    page's statement was built with, so that its counts and the reasons quote the same window."""
    live = await flags_of(session, [row["id"] for row in rows if not row["kf_uniform"]], scope, facts)
    since = facts["since"].date()
    return [flags_from_facts(row, since) if row["kf_uniform"] else live.get(row["id"], []) for row in rows]


async def flags_of(session: AsyncSession, ids: list[uuid.UUID], scope: Scope | None,
                   facts: Mapping[str, Any] | None = None) -> dict[uuid.UUID, list[dict[str, str]]]:
    """The flags of each of ``ids`` with their reasons, computed and manual, in one statement
    (``facts``: facts_parameters(), when the caller has them)."""
    if not ids:
        return {}
    facts = facts or facts_parameters()
    params = SqlParams(scope)
    # FLAGS_SQL's $1..$4, in order
    params.add(ids), params.region_pattern(), params.add(facts["day"]), params.add(facts["since"])
    rows = await raw_fetch(session, FLAGS_SQL, params)
    since = facts["since"].date()
    return {row["id"]: flags_from_facts(row, since) for row in rows}


async def key_flags_for(session: AsyncSession, enterprises: list[Enterprise]) -> dict[uuid.UUID, list[KeyFlagPublic]]:
    """Flags of each enterprise of a page as KeyFlagPublic."""
    flags = await flags_of(session, [e.id for e in enterprises], scope_mod.current(session.sync_session))
    return defaultdict(list, {eid: [KeyFlagPublic.model_validate(f) for f in fs] for eid, fs in flags.items()})


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
