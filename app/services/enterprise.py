"""Enterprises (producers) and their quality archives."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from pydantic import Field
from sqlakeyset import serialize_bookmark, unserialize_bookmark
from sqlakeyset.types import Marker
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from app import json_rows, policy
from app.concurrency import check_version
from app.db import SqlParams, raw_fetch
from app.errors import Conflict, NotPermitted, Unprocessable
from app.models.common import Level, RegionCode, Role
from app.models.enterprise import (
    Enterprise,
    EnterpriseCreate,
    EnterprisePublic,
    EnterpriseSize,
    EnterpriseUpdate,
    KeyFlagPublic,
)
from app.models.reference import ProductCategory
from app.pagination import BAD_BOOKMARK, PageParams, decode_cursor, encode_cursor, invalid_cursor
from app.scope import Scope, get_visible, region_is_exact
from app.services import audit, focus, reference, uscc, versioned


def to_public(e: Enterprise, flags: list[KeyFlagPublic] | None = None) -> EnterprisePublic:
    return EnterprisePublic(
        id=e.id, uscc=e.uscc, name=e.name, legal_representative=e.legal_representative, address=e.address,
        region_code=e.region_code, size=e.size, category_codes=list(e.category_codes), licensed=e.licensed,
        key_flags=flags or [], version=e.version, created_at=e.created_at, updated_at=e.updated_at)


async def to_public_many(session: AsyncSession, items: list[Enterprise]) -> list[EnterprisePublic]:
    flags = await focus.key_flags_for(session, items)
    return [to_public(e, flags.get(e.id)) for e in items]


def _snapshot(e: Enterprise) -> dict[str, Any]:
    return to_public(e).model_dump(mode="json", exclude={"key_flags", "created_at", "updated_at"})


def require_writer(scope: Scope) -> None:
    policy.require(policy.can_keep_archives(scope))


async def check_categories(session: AsyncSession, codes: list[str]) -> None:
    if not codes:
        return
    found = set((await session.execute(
        select(ProductCategory.code).where(col(ProductCategory.code).in_(codes)))).scalars())
    missing = sorted(set(codes) - found)
    if missing:
        raise Unprocessable(f"unknown product categories: {', '.join(missing)}", code="unknown_category")


def _validate_uscc(scope: Scope, data: EnterpriseCreate) -> None:
    msg = uscc.problem(data.uscc)
    if msg is None:
        if data.uscc_check_override:
            raise Unprocessable("uscc_check_override is only for codes whose check character fails",
                                code="override_not_needed")
        return
    if not uscc.is_check_failure(data.uscc) or not data.uscc_check_override:
        raise Unprocessable(msg, code="invalid_uscc",
                            extra={"errors": [{"loc": ["body", "uscc"], "msg": msg}]})
    # Early pilot-area codes fail the check legitimately: a provincial (or national) admin accepts one.
    if not (Role.admin in scope.roles and scope.at_or_above(Level.provincial)):
        raise NotPermitted("only a provincial or national admin may accept a code whose check character fails",
                           code="uscc_override_not_permitted")


async def create(session: AsyncSession, *, scope: Scope, data: EnterpriseCreate) -> tuple[Enterprise, bool]:
    """Returns the enterprise and whether it was created (False: a replay of a client-supplied id)."""
    require_writer(scope)
    scope.require_region(data.region_code)
    existing = await versioned.replayed(
        session, Enterprise, data.id, scope=scope, what="enterprise",
        same=lambda e: (e.uscc, e.name, e.region_code) == (data.uscc, data.name, data.region_code))
    if existing is not None:
        return existing, False
    if not await reference.region_exists(session, data.region_code):
        raise Unprocessable(f"region_code {data.region_code} is not a GB/T 2260 code", code="unknown_region")
    _validate_uscc(scope, data)
    await check_categories(session, data.category_codes)
    taken = (await session.execute(
        select(Enterprise.id).where(Enterprise.uscc == data.uscc).execution_options(unscoped=True))).first()
    if taken:
        raise Conflict(f"an enterprise with uscc {data.uscc} exists", code="uscc_taken")
    e = Enterprise.model_validate(data.model_dump(exclude={"id"}) | ({"id": data.id} if data.id else {}))
    session.add(e)
    await session.flush()
    after = _snapshot(e)
    if data.uscc_check_override:
        after["uscc_check_override"] = data.uscc_check_override
    await audit.record(session, action="enterprise.create", entity_type="enterprise", entity_id=str(e.id),
                       region_code=e.region_code, after=after)
    return e, True


async def get(session: AsyncSession, *, scope: Scope, enterprise_id: uuid.UUID, for_update: bool = False) -> Enterprise:
    return await get_visible(session, Enterprise, enterprise_id, what="enterprise", for_update=for_update)


async def update(session: AsyncSession, *, scope: Scope, enterprise_id: uuid.UUID, data: EnterpriseUpdate,
                 expected_version: int) -> Enterprise:
    require_writer(scope)
    e = await get(session, scope=scope, enterprise_id=enterprise_id, for_update=True)
    check_version(e.version, expected_version, current_body=to_public(e).model_dump(mode="json"))
    changes = data.model_dump(exclude_unset=True)
    if not changes:  # an empty PATCH changes nothing: no new version, no audit row
        return e
    if "category_codes" in changes:
        changes["category_codes"] = sorted(set(changes["category_codes"]))
        await check_categories(session, changes["category_codes"])
    return await versioned.apply_changes(session, e, changes, entity_type="enterprise", snapshot=_snapshot)


_PUBLIC_FIELDS = tuple(EnterprisePublic.model_fields)
_LIST_COLUMNS = tuple(c for c in _PUBLIC_FIELDS if c != "key_flags")


def _place(cursor: str | None) -> tuple[datetime, uuid.UUID] | None:
    """The (created_at, id) after which a page starts, from a cursor of this list (sqlakeyset's bookmark
    format, so cursors issued before this list ran on its own statement stay valid)."""
    if cursor is None:
        return None
    try:
        marker = unserialize_bookmark(decode_cursor(cursor))
        created_at, eid = marker.place if marker.place is not None else (None, None)
    except BAD_BOOKMARK as exc:
        raise invalid_cursor() from exc
    if marker.backwards or not isinstance(created_at, datetime) or created_at.tzinfo is None \
            or not isinstance(eid, uuid.UUID):
        raise invalid_cursor()
    return created_at, eid


# The columns of EnterprisePublic a raw read selects (``e.``: the enterprise table), and how its rows,
# read through focus.with_kept_facts, become EnterprisePublic's JSON-ready dicts.
PUBLIC_COLUMNS_SQL = ", ".join(f"e.{c}" for c in _LIST_COLUMNS)


async def public_rows(session: AsyncSession, rows: list[Any], scope: Scope,
                      facts: Mapping[str, Any]) -> list[dict[str, Any]]:
    """EnterprisePublic of each row (PUBLIC_COLUMNS_SQL and the kept facts), key flags included
    (``facts``: as for focus.page_flags)."""
    flags = await focus.page_flags(session, rows, scope, facts)
    return [{c: f if c == "key_flags" else row[c] for c in _PUBLIC_FIELDS} for row, f in zip(rows, flags, strict=True)]


class EnterpriseListQuery(PageParams):
    """The enterprise list's filters with its page (``GET /api/v1/enterprises``), read in one
    validation (app/query.py)."""

    region: RegionCode | None = Field(None, description="inside this region (403 outside yours)")
    category: str | None = Field(None, max_length=16, description="category code, sub-products included")
    licensed: bool | None = None
    key: bool | None = Field(None, description="meets a key-enterprise criterion")
    size: EnterpriseSize | None = None
    q: str | None = Field(None, min_length=2, max_length=100,
                          description="name fragment (2+ characters) or uscc prefix (4+)")


def list_statement(*, scope: Scope, query: EnterpriseListQuery, facts: Mapping[str, Any]) -> tuple[str, SqlParams]:
    """The page statement of the enterprise list and its parameters (see ``list_page``; ``facts``:
    focus.facts_parameters(), one day for the filter, the kept facts and the flags).

    Each condition goes to one of two lists. PostgreSQL keeps one plan for a prepared statement only
    when it judges it no worse than planning each execution afresh, and with the LIMIT a parameter it
    never does: planning was about 40 % of the statement's time. So when every condition is in
    ``exact`` (equalities: a county, ``licensed``, ``size``, the cursor), whose best plan does not
    depend on the values, the LIMIT is written out and the statement keeps its plan. A condition in
    ``varying`` (a city's or a province's prefix, a category, a name, ``key``) keeps the LIMIT a
    parameter and a plan for its values: a generic plan for a name fragment walked the whole table
    when the fragment was rare (6 req/s, reverted in e45456f). A new filter says which it is."""
    params = SqlParams(scope)
    exact: list[str] = []
    varying: list[str] = []
    # the caller's jurisdiction (as the scope's session filter applies it), then the region asked for
    (exact if region_is_exact(scope.region_code) else varying).extend(params.inside("e.region_code"))
    if query.region is not None:
        (exact if region_is_exact(query.region) else varying).extend(params.within("e.region_code", query.region))
    if query.category:
        # a category also finds enterprises filed under its sub-products (GIN-indexed overlap)
        p = params.add(query.category)
        varying.append(f"e.category_codes && (ARRAY[{p}]::varchar[]"  # noqa: S608 - a placeholder
                       f" || ARRAY(SELECT c.code::varchar FROM product_category c WHERE c.parent_code = {p}))")
    if query.licensed is not None:
        exact.append(f"e.licensed = {params.add(query.licensed)}")
    if query.size is not None:
        exact.append(f"e.size = {params.add(query.size.value)}")
    if query.q:
        varying.append(_name_match(query.q.strip(), params))
    place = _place(query.cursor)
    if place is not None:
        exact.append(f"(e.created_at, e.id) < ({params.add(place[0])}, {params.add(place[1])})")
    key_join = ""
    if query.key is not None:
        key_join, is_key = focus.key_filter(params, facts)
        varying.append(is_key if query.key else f"NOT {is_key}")
    limit = params.add(query.limit + 1) if varying else str(int(query.limit) + 1)
    where = [*exact, *varying]
    # only constant fragments, $n placeholders and the int above are joined here
    sql = (f"SELECT {PUBLIC_COLUMNS_SQL} FROM enterprise e {key_join}"  # noqa: S608
           f" {'WHERE ' + ' AND '.join(where) if where else ''}"
           f" ORDER BY e.created_at DESC, e.id DESC LIMIT {limit}")
    return focus.with_kept_facts(sql, params, facts), params


def _name_match(term: str, params: SqlParams) -> str:
    """The condition of a ``q`` search: a name fragment, or the beginning of a uscc."""
    if len(term) == 2:
        # pg_trgm cannot index two characters (most Chinese trade names): the name's stored
        # character pairs with their GIN index can (migration 0006)
        name_match = f"e.name_bigrams @> ARRAY[{params.add(term.lower())}::text]"
    else:
        escaped = term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        # ILIKE only when case can matter: on Chinese text it costs twice LIKE, in the planner's
        # estimate (tried on 1,000 names, migration 0022) and on every candidate row
        like = "LIKE" if term.lower() == term.upper() else "ILIKE"
        name_match = f"e.name {like} {params.add('%' + escaped + '%')}"
    if len(term) >= 4 and uscc.could_begin(term.upper()):
        name_match = f"({name_match} OR e.uscc LIKE {params.add(term.upper() + '%')})"
    return name_match


async def list_page(session: AsyncSession, *, scope: Scope, query: EnterpriseListQuery) -> bytes:
    """One page of the enterprise list, newest first, as the JSON of ``Page[EnterprisePublic]``.

    The hottest read of the service runs as one raw statement on the session's connection, with no
    ORM entities and no response model on the way: the page (``list_statement``: jurisdiction and
    filters, keyset after the cursor; ``?key=`` filters on focus.key_filter) with each enterprise's
    kept key facts (focus.with_kept_facts), from which focus.page_flags makes its flags. The statement
    states the caller's jurisdiction itself, with the same conditions as the scope's session filter
    (app/scope.py), and a test checks that every item equals what GET /enterprises/{id} answers (whose
    flags focus.flags_of computes from the records)."""
    facts = focus.facts_parameters()
    sql, params = list_statement(scope=scope, query=query, facts=facts)
    rows = await raw_fetch(session, sql, params)
    items = await public_rows(session, rows[:query.limit], scope, facts)
    nxt = None
    if len(rows) > query.limit:
        last = rows[query.limit - 1]
        nxt = encode_cursor(serialize_bookmark(Marker((last["created_at"], last["id"]), False)))
    # five times faster than pydantic_core.to_json on these rows, the same bytes; a test compares every
    # item with GET /enterprises/{id}
    return json_rows.dumps({"items": items, "next_cursor": nxt})
