"""Database rows as a public model's JSON without building the model, for the hot reads that answer
JSON bytes from raw statements (app.db.raw_fetch): building and validating SQLModel instances cost
more than the statements.

A public model's plain fields (ids, text, numbers, times, enum values) come from typed columns and
pass as they are; ``dumps`` writes them as pydantic does (UTC as "Z", ids as text). Fields typed by a
nested model (an inspection's checks, samples and place, kept as JSON) are validated and dumped by
that model, so a column's JSON comes out in the model's shape: its key order, its defaults filled.
Tests compare each such answer with the same record read through its model."""

from __future__ import annotations

import functools
import typing
from collections.abc import Callable, Mapping
from typing import Any

import orjson
from pydantic import BaseModel, TypeAdapter


def dumps(doc: Any) -> bytes:
    """JSON bytes as pydantic writes them: UTC as "Z", asyncpg's UUIDs as text."""
    return orjson.dumps(doc, option=orjson.OPT_UTC_Z, default=str)


def _has_model(annotation: Any) -> bool:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return True
    return any(_has_model(a) for a in typing.get_args(annotation))


_KEPT_TEXT_CHARS = 1024  # longer texts (many samples) seldom repeat: 256 kept texts a field stay small


def _writer(adapter: TypeAdapter[Any]) -> Callable[[str], orjson.Fragment]:
    """The JSON text of a column written by its model, for the short texts seen last: the same text is
    always written the same way, and many repeat (a compliant inspection's five checks, no samples),
    each about 7 µs to validate and write again; 24 inspections are 0.25 ms of an archive's 3 ms."""

    def write(text: str) -> orjson.Fragment:
        return orjson.Fragment(adapter.dump_json(adapter.validate_json(text)))

    kept = functools.lru_cache(maxsize=256)(write)
    return lambda text: kept(text) if len(text) <= _KEPT_TEXT_CHARS else write(text)


class RowShape:
    """The JSON-ready dict of ``model`` (a public model) from a row of ``select_sql``'s columns."""

    def __init__(self, model: type[BaseModel]) -> None:
        self.fields = tuple(model.model_fields)
        self.nested: dict[str, TypeAdapter[Any]] = {
            name: TypeAdapter(f.annotation) for name, f in model.model_fields.items()
            if f.annotation is not None and _has_model(f.annotation)}
        self._written = {name: _writer(adapter) for name, adapter in self.nested.items()}

    def select_sql(self, alias: str) -> str:
        """The select list of the model's fields from table ``alias``: nested-model fields as the JSON
        text the column holds, which their model reads and writes in one step each."""
        return ", ".join(f"{alias}.{name}::text AS {name}" if name in self.nested else f"{alias}.{name}"
                         for name in self.fields)

    def __call__(self, row: Mapping[str, Any], **values: Any) -> dict[str, Any]:
        """The row's fields, ``values`` replacing some (a status computed for today, ...)."""
        out = {name: values[name] if name in values else row[name] for name in self.fields}
        for name, adapter in self.nested.items():
            value = out[name]
            if isinstance(value, str):  # the column's JSON text: validated and written by the model
                out[name] = self._written[name](value)
            else:  # NULL, or a value already decoded
                out[name] = adapter.dump_python(adapter.validate_python(value), mode="json")
        return out
