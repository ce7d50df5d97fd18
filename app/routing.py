"""The route class every router uses: one session per request, committed before the response is
sent, database constraint errors turned into problems, and Idempotency-Key handling for creates."""

from __future__ import annotations

import functools
import inspect
import typing
from collections.abc import Callable, Coroutine
from typing import Any

import asyncpg
from fastapi import Request, Response, params
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from fastapi.security.base import SecurityBase
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.concurrency import if_match_dependency, require_if_match
from app.db import ConnectionLost, has_changes, request_session
from app.errors import AppError, Conflict, ServiceUnavailable, Unprocessable, problem_responses
from app.models.common import loosely_read
from app.services import idempotency

Handler = Callable[[Request], Coroutine[Any, Any, Response]]

_PG_CODES: dict[str, tuple[type[AppError], str, str]] = {
    "23505": (Conflict, "unique_violation", "A record with the same unique value already exists"),
    "23503": (Unprocessable, "reference_not_found", "A referenced record does not exist"),
    "23514": (Unprocessable, "check_violation", "A value violates a rule of the database"),
    "23502": (Unprocessable, "missing_value", "A required value is missing"),
    "22001": (Unprocessable, "value_too_long", "A value is too long"),
    "40001": (Conflict, "retry_conflict", "A concurrent change conflicted with this one; retry"),
    "40P01": (Conflict, "retry_conflict", "A concurrent change conflicted with this one; retry"),
    "55P03": (Conflict, "retry_conflict", "The record is locked by another change; retry"),
    "57014": (ServiceUnavailable, "statement_timeout", "The database took too long; retry later"),
}
_RETRYABLE = {"40001", "40P01", "55P03", "57014"}
# Constraints whose violation has a meaning of its own (a concurrent duplicate that passed the service's
# own check, a rule the database also holds): their problem instead of the generic one of the SQLSTATE.
_CONSTRAINTS: dict[str, tuple[type[AppError], str, str]] = {
    "uq_report_region_code_period_end_kind": (Conflict, "report_exists", "A report exists for this bureau and period"),
    "uq_acceptance_campaign_id_region_code": (Conflict, "already_accepted",
                                              "The city was already accepted in this campaign"),
    "ck_recall_units": (Unprocessable, "exceeds_units_sold", "Units recalled cannot exceed units sold, nor units "
                                                             "sold units made"),
}


DRIVER_ERRORS = (DBAPIError, asyncpg.PostgresError, asyncpg.exceptions.DataError)


def _driver_error(exc: Exception) -> tuple[Any, Any]:
    """asyncpg's exception behind a database error and its SQLSTATE (None when the driver refused a
    value before sending it)."""
    driver = getattr(getattr(exc, "orig", None), "__cause__", None) if isinstance(exc, DBAPIError) else exc
    return driver, getattr(getattr(exc, "orig", None), "sqlstate", None) or getattr(driver, "sqlstate", None)


def is_data_fault(exc: Exception) -> bool:
    """A database error the written values cause (SQLSTATE classes 22 and 23: a value out of range, a
    constraint; or a value the driver cannot encode), not the database's state (a timeout, a lost
    connection, a deadlock)."""
    driver, sqlstate = _driver_error(exc)
    return (isinstance(exc, IntegrityError) or str(sqlstate)[:2] in ("22", "23")
            or isinstance(driver, asyncpg.exceptions.DataError))


def connection_lost_problem() -> AppError:
    return ServiceUnavailable("The database connection was lost; retry", code="database_unavailable",
                              headers={"Retry-After": "1"})


def db_error_to_problem(exc: Exception) -> AppError:
    """The problem for a database error: one raised through SQLAlchemy (a DBAPIError) or straight by
    asyncpg (app.db.raw_fetch)."""
    driver, sqlstate = _driver_error(exc)
    cls, code, detail = _PG_CODES.get(str(sqlstate), (None, None, None))
    if cls is None and isinstance(driver, asyncpg.exceptions.DataError):
        # the driver refused to encode a value (a date beyond what the database stores, ...)
        cls, code, detail = Unprocessable, "invalid_value", "A value cannot be stored as given"
    if cls is None and str(sqlstate).startswith("22"):  # data exceptions: NUL bytes, out of range, bad encoding
        cls, code, detail = Unprocessable, "invalid_value", "A value cannot be stored as given"
    if cls is None and getattr(exc, "connection_invalidated", False):
        return connection_lost_problem()
    if cls is None:
        if isinstance(exc, IntegrityError):
            return Conflict("The change conflicts with stored data", code="integrity_error")
        raise exc
    constraint = getattr(driver, "constraint_name", None)
    if constraint in _CONSTRAINTS:
        cls, code, detail = _CONSTRAINTS[constraint]
        return cls(detail, code=code)
    headers = {"Retry-After": "1"} if str(sqlstate) in _RETRYABLE else None
    return cls(f"{detail}{f' ({constraint})' if constraint else ''}", code=code, headers=headers)


def is_idempotent_create(route: APIRoute) -> bool:
    """Every POST that answers 201 creates something, so it takes an Idempotency-Key."""
    return route.methods == {"POST"} and route.status_code == 201


IDEMPOTENCY_PARAMETER = {
    "name": "Idempotency-Key", "in": "header", "required": False,
    "schema": {"type": "string", "minLength": 1, "maxLength": 255, "pattern": r"\S"},
    "description": "Repeat-safe create: the same key and body replay the first response for 30 days; "
                   "another body is 422 `idempotency_key_reused`, a concurrent repeat 409.",
}


def autocommit_reads(endpoint: Any) -> Any:
    """Mark a GET endpoint that only reads and may run each statement on its own: its session is in
    autocommit mode, which saves the BEGIN and COMMIT round trips a transaction costs. Only for
    endpoints that need no snapshot across statements and write nothing."""
    endpoint.autocommit_reads = True
    return endpoint


def needs_if_match(route: APIRoute) -> bool:
    """Changes of versioned resources: every PATCH and every workflow action."""
    return "PATCH" in (route.methods or set()) or "/actions/" in route.path


def _parameter_depending_on(endpoint: Any, dependency: Any) -> str | None:
    """The endpoint's parameter whose Annotated metadata is ``Depends(dependency)``."""
    hints = typing.get_type_hints(endpoint, include_extras=True)
    for name in inspect.signature(endpoint).parameters:
        for meta in typing.get_args(hints.get(name, None))[1:]:
            if getattr(meta, "dependency", None) is dependency:
                return name
    return None


def _declared(dependant: Dependant, attribute: str) -> list[Any]:
    """What the route's dependencies declare for OpenAPI under ``attribute`` (a list each), in order."""
    found: list[Any] = []
    for sub in dependant.dependencies:
        for item in [*getattr(sub.call, attribute, ()), *_declared(sub, attribute)]:
            if item not in found:
                found.append(item)
    return found


def _fields(dependant: Dependant, kind: str) -> list[Any]:
    """The route's parameters of ``kind`` (``body_params``, ``query_params``), its dependencies' too."""
    return [*getattr(dependant, kind), *(f for sub in dependant.dependencies for f in _fields(sub, kind))]


def _has_own_parameters(dependant: Dependant) -> bool:
    """FastAPI reads query or path parameters for the route or one of its dependencies."""
    return bool(dependant.query_params or dependant.path_params) or any(
        _has_own_parameters(sub) for sub in dependant.dependencies)


def _has_security_dependency(dependant: Dependant) -> bool:
    """A FastAPI security scheme is among the dependencies (FastAPI then documents the security)."""
    return any(isinstance(sub.call, SecurityBase) or _has_security_dependency(sub) for sub in dependant.dependencies)


def _checking_if_match(endpoint: Callable[..., Any], name: str) -> Callable[..., Any]:
    """``endpoint``, which answers a missing or malformed If-Match (its parameter ``name``,
    app.concurrency.require_if_match) once FastAPI has validated the request, before it runs. FastAPI
    reads the signature and the type hints through functools.wraps (inspect.unwrap)."""
    if not inspect.iscoroutinefunction(endpoint):
        raise TypeError(f"{endpoint.__qualname__} takes If-Match: it must be `async def`")

    @functools.wraps(endpoint)
    async def checked(*args: Any, **kwargs: Any) -> Any:
        require_if_match(kwargs[name])
        return await endpoint(*args, **kwargs)

    return checked


class AppRoute(APIRoute):
    def __init__(self, path: str, endpoint: Callable[..., Any], **kwargs: Any) -> None:
        if_match = _parameter_depending_on(endpoint, if_match_dependency)
        super().__init__(path, endpoint if if_match is None else _checking_if_match(endpoint, if_match), **kwargs)
        if needs_if_match(self) and if_match is None:
            # optimistic concurrency cannot be forgotten: a new PATCH or action without it does not start
            raise TypeError(f"{sorted(self.methods or [])} {self.path} changes a versioned resource: it must "
                            "take `if_match: IfMatchDep` (app/concurrency.py)")
        # What the docs cannot learn from FastAPI: the Idempotency-Key header, and what dependencies that
        # read the request themselves declare (app.query's parameters, app.deps.current_scope's security).
        extra = dict(self.openapi_extra or {})
        parameters = list(extra.get("parameters", []))
        declared = _declared(self.dependant, "openapi_parameters")
        if declared and _has_own_parameters(self.dependant):
            # FastAPI validates its own parameters only after the dependencies: a bad value read by the
            # query model would hide theirs, and the 422 would not name every bad parameter
            raise TypeError(f"{sorted(self.methods or [])} {self.path} reads a query model (app/query.py): it "
                            "can take no other query or path parameters (put its query parameters in the model)")
        for parameter in [*declared, *([IDEMPOTENCY_PARAMETER] if is_idempotent_create(self) else [])]:
            if parameter not in parameters:
                parameters.append(parameter)
        if parameters:
            extra["parameters"] = parameters
        # the problems these conventions answer with, where the route did not list them itself: a bad
        # parameter of a query model (FastAPI documents its own), a concurrent repeat of a create and a
        # reused key, a stale or missing If-Match
        self._document_problems(*([422] if declared else []),
                                *([409, 422] if is_idempotent_create(self) else []),
                                *([412, 428] if needs_if_match(self) else []))
        security = _declared(self.dependant, "openapi_security")
        if security and not _has_security_dependency(self.dependant):
            extra.setdefault("security", security)
        self.openapi_extra = extra or None
        # Fields a stored create response must not keep (a secret is shown once, never replayed): the
        # response model's ``replay_omits`` (whose docs then do not require them, app.models.common)
        self.replay_redact: tuple[str, ...] = tuple(getattr(self.response_model, "replay_omits", ()))
        if self.replay_redact:
            if set(self.replay_redact) & set(self.response_model.model_json_schema().get("required", ())):
                raise TypeError(f"{self.response_model.__name__}: the fields a replay leaves out must not be "
                                "required in its docs: model_config json_schema_extra=unrequire_replay_omits "
                                "(app/models/common.py)")
            self.openapi_extra = {**(self.openapi_extra or {}), "x-replay-omits": list(self.replay_redact)}
        loose = [*(w for f in _fields(self.dependant, "body_params")  # a form's fields are text
                   for w in loosely_read(f.field_info.annotation, f.field_info.metadata,
                                         text=isinstance(f.field_info, params.Form), where=f.name)),
                 *(w for kind in ("query_params", "path_params") for f in _fields(self.dependant, kind)
                   for w in loosely_read(f.field_info.annotation, f.field_info.metadata, text=True, where=f.name)),
                 *(w for m in _declared(self.dependant, "query_models") for w in loosely_read(m, text=True))]
        if loose:
            # every request value is read as the docs type it: not a number for a date, not 0 for false
            raise TypeError(f"{sorted(self.methods or [])} {self.path} reads {', '.join(loose)} more loosely than "
                            "its docs type it: use Day, Moment, AwareMoment, JsonInt, positive_decimal, "
                            "StrictBool or StrictFloat (app/models/common.py)")
        reads_only = (self.methods or set()) <= {"GET", "HEAD"}
        self.autocommit = bool(getattr(self.endpoint, "autocommit_reads", False)) and reads_only

    def _document_problems(self, *statuses: int) -> None:
        missing = [s for s in dict.fromkeys(statuses) if s not in self.responses and str(s) not in self.responses]
        if missing:
            self.responses = {**self.responses, **problem_responses(*missing)}

    def get_route_handler(self) -> Handler:
        inner = super().get_route_handler()
        idempotent = is_idempotent_create(self)

        async def handler(request: Request) -> Response:
            state = request.app.state
            maker = state.read_sessionmaker if self.autocommit else state.sessionmaker
            async with request_session(maker) as session:
                request.state.session = session
                try:
                    claim = None
                    if idempotent and request.headers.get("idempotency-key") is not None:
                        claim = await idempotency.begin(session, request)
                        if claim is not None and claim.replay is not None:
                            return claim.replay
                    response = await inner(request)
                    if claim is not None and 200 <= response.status_code < 300:
                        await idempotency.store(session, claim, response, redact=self.replay_redact)
                    if session.in_transaction() or has_changes(session):
                        await session.commit()  # (one that never began has nothing to commit)
                    return response
                except AppError as err:
                    if err.commit:
                        await session.commit()
                    else:
                        await session.rollback()
                    raise
                except DRIVER_ERRORS as exc:
                    await session.rollback()
                    raise db_error_to_problem(exc) from exc
                except ConnectionLost as exc:  # under a raw statement (app.db.raw_fetch)
                    await session.rollback()
                    raise connection_lost_problem() from exc
                except PoolTimeoutError as exc:
                    raise ServiceUnavailable("All database connections are busy; retry shortly",
                                             code="database_busy", headers={"Retry-After": "1"}) from exc

        return handler


class HeadAsGet:
    """HEAD is served by every GET route (RFC 9110 §9.3.2: the GET's status and headers, no content),
    so a client reads an ETag before a PATCH, or checks that a record exists, without its body. FastAPI
    routes serve only the methods they declare, and declaring HEAD on each would double the docs. The
    route sees a GET; the body is dropped here, whatever the server does, and Content-Length kept."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "HEAD":
            await self.app(scope, receive, send)
            return

        async def without_content(message: Message) -> None:
            if message["type"] == "http.response.body":
                message = {**message, "body": b""}
            await send(message)

        await self.app({**scope, "method": "GET"}, receive, without_content)
