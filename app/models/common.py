"""Shared enums, mixins and column helpers."""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import DateTime
from sqlmodel import Field


class Level(StrEnum):
    national = "national"
    provincial = "provincial"
    city = "city"
    county = "county"


LEVEL_RANK = {Level.national: 0, Level.provincial: 1, Level.city: 2, Level.county: 3}


class Role(StrEnum):
    inspector = "inspector"
    officer = "officer"
    leader = "leader"
    admin = "admin"


NATIONAL_CODE = "000000"


def level_of(code: str) -> Level:
    if code == NATIONAL_CODE:
        return Level.national
    if code.endswith("0000"):
        return Level.provincial
    if code.endswith("00"):
        return Level.city
    return Level.county


def prefix_of(code: str) -> str:
    """The region-code prefix that every code inside ``code``'s jurisdiction starts with."""
    return {Level.national: "", Level.provincial: code[:2], Level.city: code[:4]}.get(level_of(code), code)


def utcnow() -> datetime:
    return datetime.now(UTC)


def tz_field(**kw: Any) -> Any:
    """A timestamptz column."""
    return Field(sa_type=DateTime(timezone=True), **kw)  # type: ignore[call-overload]


class RegionOwned:
    """Marker mixin: the table has ``region_code`` and every ORM query of it is filtered by the
    caller's jurisdiction (app/scope.py). A subclass cannot opt out."""

    region_code: str


def enum_column_type(enum_cls: type[StrEnum]) -> Any:
    """VARCHAR storage of a StrEnum (no native PostgreSQL enum type to migrate)."""
    from sqlalchemy import Enum as SAEnum

    return SAEnum(enum_cls, native_enum=False, length=32, create_constraint=False,
                  values_callable=lambda e: [m.value for m in e])
