"""The ONE place that turns a caller into a jurisdiction filter.

Every ORM SELECT/UPDATE/DELETE that touches a table marked ``RegionOwned`` is filtered here, by a
session event, with the scope the request put in ``session.info["scope"]``. Routers and services
cannot forget it: a query of a region-owned table on a session without a scope raises, unless the
statement says ``execution_options(unscoped=True)`` (login, token checks, background jobs).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from sqlalchemy import Table, event
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import ORMExecuteState, Session, with_loader_criteria
from sqlalchemy.sql import visitors
from sqlmodel import SQLModel, select

from app.errors import NotFound, NotPermitted, Unprocessable
from app.models.common import LEVEL_RANK, NATIONAL_CODE, Level, RegionOwned, level_of, prefix_of


def _region_match(region: str) -> tuple[str, str] | None:
    """How rows inside ``region`` are matched: equality for a county (keeps an index's order), a
    prefix above it, nothing for the national root."""
    prefix = prefix_of(region)
    if not prefix:
        return None
    return ("=", region) if len(prefix) == 6 else ("LIKE", prefix + "%")


def region_is_exact(region: str) -> bool:
    """Whether rows inside ``region`` are matched by equality (a county) or not at all (the national
    root): a condition whose best plan does not depend on the value, unlike a prefix's LIKE."""
    match = _region_match(region)
    return match is None or match[0] == "="


def region_condition(column: Any, region: str) -> Any:
    """Rows inside ``region``, as a SQLAlchemy condition on ``column``."""
    match = _region_match(region)
    if match is None:
        return column.is_not(None)
    return column == match[1] if match[0] == "=" else column.like(match[1])


def region_sql(column: str, region: str, add: Callable[[Any], str]) -> str | None:
    """Rows inside ``region``, as raw SQL on ``column`` for app.db.raw_fetch (``add`` makes the value
    a parameter and answers its placeholder); None when every row is inside."""
    match = _region_match(region)
    return None if match is None else f"{column} {match[0]} {add(match[1])}"


class ScopeMissing(RuntimeError):
    """A region-owned table was queried on a session that carries no scope."""


@dataclass(frozen=True)
class Scope:
    principal_id: uuid.UUID
    principal_type: str  # "user" | "service"
    username: str
    region_code: str
    roles: frozenset[str] = field(default_factory=frozenset)
    scopes: frozenset[str] = field(default_factory=frozenset)
    agency: str | None = None  # service accounts: the kind of recipient they speak for

    @property
    def level(self) -> Level:
        return level_of(self.region_code)

    @property
    def prefix(self) -> str:
        return prefix_of(self.region_code)

    @property
    def is_national(self) -> bool:
        return self.region_code == NATIONAL_CODE

    def contains(self, region_code: str) -> bool:
        return region_code.startswith(self.prefix)

    def at_or_above(self, level: Level) -> bool:
        return LEVEL_RANK[self.level] <= LEVEL_RANK[level]

    def inside(self, column: Any, region: str) -> Any:
        """The condition for a ``region=CODE`` filter ("inside CODE"), refused with 403 when CODE lies
        outside the jurisdiction: a list cannot filter by region without that check."""
        self.require_region(region)
        return region_condition(column, region)

    def require_region(self, region_code: str, *, what: str = "region") -> None:
        """A ``region=`` filter or a target region outside the jurisdiction is a 403."""
        if not self.contains(region_code):
            raise NotPermitted(
                f"{what} {region_code} is outside your jurisdiction ({self.region_code})",
                code="not_in_jurisdiction",
            )


T = TypeVar("T")


async def get_visible(session: AsyncSession, model: type[T], pk: Any, *, what: str,
                      for_update: bool = False) -> T:
    """One record by primary key through the jurisdiction filter: outside it, or absent, is the same
    404 (``<what>_not_found``), so a record elsewhere is never revealed."""
    stmt = select(model).where(model.id == pk)  # type: ignore[attr-defined]
    if for_update:
        stmt = stmt.with_for_update()
    row = (await session.execute(stmt)).scalar_one_or_none()
    if row is None:
        raise NotFound(f"No {what.replace('_', ' ')} {pk}", code=f"{what}_not_found")
    return row


async def get_linked(session: AsyncSession, model: type[T], pk: Any, *, what: str, enterprise_id: uuid.UUID) -> T:
    """A record another one links to (a case's inspection, a recall's case): visible like any record
    (404 otherwise) and about the same enterprise (422 ``<what>_of_other_enterprise`` otherwise)."""
    row = await get_visible(session, model, pk, what=what)
    if row.enterprise_id != enterprise_id:  # type: ignore[attr-defined]
        raise Unprocessable(f"{what} {pk} is not of enterprise {enterprise_id}", code=f"{what}_of_other_enterprise")
    return row


def attach(session: Session, scope: Scope) -> None:
    session.info["scope"] = scope


def current(session: Session) -> Scope | None:
    s = session.info.get("scope")
    return s if isinstance(s, Scope) else None


def _region_owned_in(statement: Any) -> list[type[Any]]:
    """The region-owned classes whose tables appear anywhere in the statement (subqueries, EXISTS,
    CTEs and unions included)."""
    tables = {el.name for el in visitors.iterate(statement) if isinstance(el, Table)}
    return [cls for cls in _region_owned_classes() if cls.__table__.name in tables]


@event.listens_for(Session, "do_orm_execute")
def _apply_jurisdiction(state: ORMExecuteState) -> None:
    if not (state.is_select or state.is_update or state.is_delete) or state.execution_options.get("unscoped"):
        return
    scope = current(state.session)
    if scope is not None and scope.is_national:
        return
    owned = _region_owned_in(state.statement)
    if not owned:
        return
    if scope is None:
        raise ScopeMissing("query of a region-owned table without a jurisdiction scope")
    # with_loader_criteria applies wherever the entity appears; the lambda form is cached by
    # SQLAlchemy (the prefix becomes a bound parameter), so the filter costs next to nothing.
    pattern = scope.prefix + "%"
    state.statement = state.statement.options(*(
        with_loader_criteria(cls, lambda c: c.region_code.like(pattern), include_aliases=True)
        for cls in owned
    ))


def _region_owned_classes() -> tuple[type[Any], ...]:
    """Every mapped class marked RegionOwned (criteria go on each: the mixin itself is unmapped).
    Recomputed when the registry grows, so a model imported late is never left unfiltered."""
    mappers = SQLModel._sa_registry.mappers
    if _cache.get("n") != len(mappers):
        _cache["classes"] = tuple(m.class_ for m in mappers if issubclass(m.class_, RegionOwned))
        _cache["n"] = len(mappers)
    classes: tuple[type[Any], ...] = _cache["classes"]
    return classes


_cache: dict[str, Any] = {}
