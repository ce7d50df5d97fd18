"""Shared enums, mixins and column helpers."""

from __future__ import annotations

import re
import typing
from collections.abc import Sequence
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from enum import Enum, StrEnum
from typing import Annotated, Any, Literal

from pydantic import (
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    FutureDate,
    FutureDatetime,
    GetJsonSchemaHandler,
    NaiveDatetime,
    PastDate,
    PastDatetime,
    Strict,
    StringConstraints,
    WithJsonSchema,
    model_validator,
)
from sqlalchemy import DateTime
from sqlmodel import Field, SQLModel


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

# Constrained strings for request bodies (sqlmodel's Field(regex=...) is not enforced by pydantic 2).
RegionCode = Annotated[str, StringConstraints(pattern=r"^[0-9]{6}$")]
Username = Annotated[str, StringConstraints(min_length=3, max_length=64, pattern=r"^[A-Za-z0-9_.@-]+$")]

# Dates and times in requests are ISO 8601 text, as the docs say (format date, date-time). Pydantic also
# reads a number, or text that is one, as seconds since 1970: {"as_of": 0} was 1970-01-01 and ?since=0
# a valid date. Such input is refused. Booleans and numbers in request bodies are JSON's for the same
# reason (0 was false, "5" was 5, true was 1): StrictBool, StrictFloat, and JsonInt, which takes 5.0 as
# JSON Schema's integer does (pydantic's StrictInt would not).
_NUMBER = re.compile(r"\s*[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?\s*")


def _not_a_number(value: Any) -> Any:
    if isinstance(value, int | float) or (isinstance(value, str) and _NUMBER.fullmatch(value)):
        raise ValueError("expected ISO 8601 text (a date as YYYY-MM-DD), not a number")
    return value


IsoText = BeforeValidator(_not_a_number)
Day = Annotated[date, IsoText]
Moment = Annotated[datetime, IsoText]
AwareMoment = Annotated[AwareDatetime, IsoText]


def _a_json_number(value: Any) -> Any:
    if isinstance(value, bool | str | bytes):
        raise ValueError("expected a JSON number")
    return value


JsonNumber = BeforeValidator(_a_json_number)
JsonInt = Annotated[int, JsonNumber]  # with bounds: Annotated[int, Field(ge=1), JsonNumber] (app.models.recall)
_DECIMAL_CHECKS: set[BeforeValidator] = set()  # positive_decimal's, one per kind


def positive_decimal(places: int, digits: int = 14, description: str | None = None) -> Any:
    """A positive decimal of at most ``digits`` digits, ``places`` of them after the point: a JSON number, or
    its digits as text ("12.50", no digit lost to a float), the text's form stated in the docs and checked
    (the docs offered any text, "" too, and pydantic's Decimal also reads " 5" and "1e3")."""
    pattern = rf"^(?=.*[1-9])[0-9]{{1,{digits - places}}}(\.[0-9]{{1,{places}}})?$"

    def check(value: Any) -> Any:
        if isinstance(value, bool) or (isinstance(value, str) and not re.fullmatch(pattern, value)):
            raise ValueError(f"expected a number above 0 with at most {places} decimal places, or its digits "
                             'as text ("12.50")')
        return value

    number = {"type": "number", "exclusiveMinimum": 0, "exclusiveMaximum": 10 ** (digits - places)}
    schema: dict[str, Any] = {"anyOf": [number, {"type": "string", "pattern": pattern}]}
    if description:
        schema["description"] = description
    checked = BeforeValidator(check)
    _DECIMAL_CHECKS.add(checked)
    return Annotated[Decimal, checked, Field(gt=0, max_digits=digits, decimal_places=places),
                     WithJsonSchema(schema, mode="validation")]


def refuse_nulls(data: Any) -> Any:
    """A PATCH body's rule: a field left out is unchanged; a field sent as null is a 422 (none of our
    patchable fields can be emptied that way)."""
    if isinstance(data, dict):
        nulls = sorted(k for k, v in data.items() if v is None)
        if nulls:
            raise ValueError(f"fields cannot be null: {', '.join(nulls)} (leave a field out to keep it)")
    return data


# pydantic's constrained times are classes of their own, no subclasses of date
_TIMES = (date, time, timedelta, AwareDatetime, NaiveDatetime, PastDate, FutureDate, PastDatetime, FutureDatetime)


def loosely_read(annotation: Any, metadata: Sequence[Any] = (), *, text: bool, where: str = "",
                 seen: frozenset[type] = frozenset()) -> list[str]:
    """Where a request value typed ``annotation`` (with its field's ``metadata``) would be read more loosely
    than the docs type it: a date or a time without IsoText; in a JSON body (not ``text``, which a query
    string is) a boolean or a number that is not strict (StrictBool, StrictFloat, JsonInt,
    positive_decimal). AppRoute refuses a route whose body or query has one, so a new field cannot skip
    these types."""
    origin = typing.get_origin(annotation)
    if origin is Annotated:
        base, *more = typing.get_args(annotation)
        return loosely_read(base, [*metadata, *more], text=text, where=where, seen=seen)
    if origin is not None:  # a union, a list, a dict ...: each of its types (a Literal's values are fixed)
        args = () if origin is Literal else typing.get_args(annotation)
        return [w for a in args for w in loosely_read(a, metadata, text=text, where=where, seen=seen)]
    if not isinstance(annotation, type) or issubclass(annotation, Enum):
        return []
    if issubclass(annotation, BaseModel):
        if annotation in seen:
            return []
        return [w for name, f in annotation.model_fields.items()
                for w in loosely_read(f.annotation, f.metadata, text=text, where=f"{where}.{name}".lstrip("."),
                                      seen=seen | {annotation})]
    strict = any(isinstance(m, Strict) and m.strict for m in metadata)
    if issubclass(annotation, _TIMES):
        loose = IsoText not in metadata
    elif text:
        loose = False
    elif issubclass(annotation, bool):
        loose = not strict
    elif issubclass(annotation, int | float):
        loose = not strict and JsonNumber not in metadata
    elif issubclass(annotation, Decimal):
        loose = not _DECIMAL_CHECKS.intersection(m for m in metadata if isinstance(m, BeforeValidator))
    else:
        loose = False
    return [f"{where or 'the value'} ({annotation.__name__})"] if loose else []


def without_nulls(schema: dict[str, Any]) -> dict[str, Any]:
    """A PATCH body's JSON schema as ``refuse_nulls`` reads it: its fields are optional (``X | None =
    None`` in Python), but null is not a value, so the docs offer none."""
    for prop in schema.get("properties", {}).values():
        variants = prop.get("anyOf")
        if variants and {"type": "null"} in variants:
            rest = [v for v in prop.pop("anyOf") if v != {"type": "null"}]
            prop.update(rest[0] if len(rest) == 1 else {"anyOf": rest})
        if "default" in prop and prop["default"] is None:
            del prop["default"]
    return schema


class PatchModel(SQLModel):
    """Base of the SQLModel PATCH bodies (see ``refuse_nulls``)."""

    @model_validator(mode="before")
    @classmethod
    def _no_nulls(cls, data: Any) -> Any:
        return refuse_nulls(data)

    @classmethod
    def __get_pydantic_json_schema__(cls, core_schema: Any, handler: GetJsonSchemaHandler) -> dict[str, Any]:
        return without_nulls(handler.resolve_ref_schema(handler(core_schema)))


class StrictPatch(BaseModel):
    """Base of the pydantic PATCH bodies: unknown fields and nulls are 422 (see ``refuse_nulls``)."""

    model_config = ConfigDict(extra="forbid")

    @model_validator(mode="before")
    @classmethod
    def _no_nulls(cls, data: Any) -> Any:
        return refuse_nulls(data)

    @classmethod
    def __get_pydantic_json_schema__(cls, core_schema: Any, handler: GetJsonSchemaHandler) -> dict[str, Any]:
        return without_nulls(handler.resolve_ref_schema(handler(core_schema)))


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


def unrequire_replay_omits(schema: dict[str, Any], model: type) -> None:
    """``json_schema_extra`` of a create's response with ``replay_omits`` (a secret shown once): a replay
    of the create (the same Idempotency-Key) leaves those fields out (app.routing.AppRoute reads
    ``replay_omits``), so the docs do not require them."""
    omits = getattr(model, "replay_omits", ())
    schema["required"] = [f for f in schema.get("required", []) if f not in omits]
    for f in omits:
        field = schema["properties"][f]
        field["description"] = (field.get("description", "") + " Absent when a retry with the same "
                                "Idempotency-Key replays the create.").strip()
