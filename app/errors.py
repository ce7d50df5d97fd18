"""AppError hierarchy rendered as RFC 9457 problem details; every error goes through one handler."""

from __future__ import annotations

import functools
import logging
import re
from typing import Any

from asgi_correlation_id import correlation_id
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

log = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"
TYPE_BASE = "https://pqs.example.gov.cn/problems/"


class AppError(Exception):
    """An error a client can act on. ``commit=True`` keeps the request's writes (e.g. a failed-login
    counter or a refresh-token family revocation) although the answer is an error."""

    status: int = 400
    code: str = "bad_request"
    title: str = "Bad request"

    def __init__(
        self,
        detail: str | None = None,
        *,
        code: str | None = None,
        title: str | None = None,
        status: int | None = None,
        extra: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
        commit: bool = False,
    ) -> None:
        self.detail = detail or self.title
        if code:
            self.code = code
        if title:
            self.title = title
        if status:
            self.status = status
        self.extra = extra or {}
        self.headers = headers or {}
        self.commit = commit
        super().__init__(self.detail)

    def to_problem(self, request: Request | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {
            "type": TYPE_BASE + self.code,
            "title": self.title,
            "status": self.status,
            "detail": self.detail,
            "code": self.code,
        }
        if request is not None:
            body["instance"] = request.url.path
        request_id = correlation_id.get()
        if request_id:
            body["request_id"] = request_id
        body.update(self.extra)
        return body


class Unauthenticated(AppError):
    status, code, title = 401, "unauthenticated", "Authentication required"

    def __init__(self, detail: str | None = None, **kw: Any) -> None:
        kw.setdefault("headers", {"WWW-Authenticate": "Bearer"})
        super().__init__(detail, **kw)


class NotPermitted(AppError):
    status, code, title = 403, "forbidden", "Not permitted"


class NotFound(AppError):
    status, code, title = 404, "not_found", "Not found"


class Conflict(AppError):
    status, code, title = 409, "conflict", "Conflict"


class InvalidTransition(AppError):
    status, code, title = 409, "transition_not_allowed", "Transition not allowed"


class PreconditionFailed(AppError):
    status, code, title = 412, "precondition_failed", "Precondition failed"


class PreconditionRequired(AppError):
    status, code, title = 428, "precondition_required", "If-Match header required"


class Unprocessable(AppError):
    status, code, title = 422, "validation_error", "Invalid input"


class RateLimited(AppError):
    status, code, title = 429, "rate_limited", "Too many requests"


class ServiceUnavailable(AppError):
    status, code, title = 503, "unavailable", "Service unavailable"


def problem_response(request: Request | None, err: AppError) -> JSONResponse:
    return JSONResponse(err.to_problem(request), status_code=err.status, headers=err.headers,
                        media_type=PROBLEM_JSON)


_HTTP_CODES = {
    400: ("bad_request", "Bad request"),
    401: ("unauthenticated", "Authentication required"),
    403: ("forbidden", "Not permitted"),
    404: ("not_found", "Not found"),
    405: ("method_not_allowed", "Method not allowed"),
    406: ("not_acceptable", "Not acceptable"),
    413: ("payload_too_large", "Payload too large"),
    415: ("unsupported_media_type", "Unsupported media type"),
}


def _loc(loc: Any) -> list[Any]:
    return [p for p in loc] if isinstance(loc, list | tuple) else [loc]


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(AppError)
    async def _app_error(request: Request, exc: AppError) -> JSONResponse:
        return problem_response(request, exc)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        if any(_loc(e.get("loc", ()))[:1] == ["path"] for e in exc.errors()):
            # a path parameter the route refused may be a literal segment of another resource:
            # PATCH /inspections/batch matched /inspections/{inspection_id}, whose id "batch" is no
            # uuid, but the resource is /inspections/batch, which has no PATCH
            allowed = allowed_methods(request)
            if allowed and request.method not in allowed:
                return await _http(request, StarletteHTTPException(405))  # as the router's own 405
        errors = [{"loc": _loc(e.get("loc", ())), "msg": e.get("msg", ""), "type": e.get("type", "")}
                  for e in exc.errors()]
        first = errors[0] if errors else {"loc": [], "msg": "invalid"}
        detail = f"{'.'.join(str(p) for p in first['loc'])}: {first['msg']}"
        err = Unprocessable(detail, extra={"errors": errors})
        return problem_response(request, err)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 400 and isinstance(exc.__cause__, UnicodeDecodeError):
            # FastAPI answers a JSON body it cannot decode (json.loads reads UTF-8, -16 and -32) with a
            # bare 400 and malformed JSON with a 422: one rule for clients, a body that cannot be read
            # is invalid input
            return await _validation(request, RequestValidationError([
                {"loc": ("body",), "msg": "the body cannot be decoded: send JSON in UTF-8", "type": "json_invalid"}]))
        code, title = _HTTP_CODES.get(exc.status_code, ("http_error", "HTTP error"))
        detail = exc.detail if isinstance(exc.detail, str) else title
        if exc.status_code == 404 and detail == "Not Found":
            detail = f"No route or resource at {request.url.path}"
        headers = dict(exc.headers or {})
        if exc.status_code == 405 and (allowed := allowed_methods(request)):
            headers["Allow"] = ", ".join(allowed)
        err = AppError(detail, code=code, title=title, status=exc.status_code, headers=headers)
        return problem_response(request, err)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        request_id = correlation_id.get()
        err = AppError("An unexpected error occurred; it has been logged with the request id.",
                       code="internal_error", title="Internal server error", status=500,
                       headers={"X-Request-ID": request_id} if request_id else None)
        return problem_response(request, err)


def allowed_methods(request: Request) -> list[str]:
    """The methods the docs give the request's path, and HEAD with GET (RFC 9110 §15.5.6: Allow lists
    the methods the resource supports). Starlette's 405 names the methods of the first route whose path
    matched, and each method of a resource here is a route of its own. Of the documented paths that
    match, those naming most segments word for word are the resource: /inspections/batch, not an id
    of /inspections/{inspection_id}, which the router also tries. Paths outside the docs keep
    Starlette's answer."""
    root, path = request.scope.get("root_path", ""), request.scope["path"]
    path = path[len(root):] if root and path.startswith(root) else path
    paths: dict[str, dict[str, Any]] = request.app.openapi()["paths"]
    matching = [t for t in paths if _template(t).fullmatch(path)]
    literal = max(map(_literal_segments, matching), default=0)
    methods = {m.upper() for t in matching if _literal_segments(t) == literal for m in paths[t]}
    return sorted(methods | ({"HEAD"} if "GET" in methods else set()))  # app.routing.HeadAsGet


def _literal_segments(template: str) -> int:
    return template.count("/") - template.count("{")


@functools.cache
def _template(path: str) -> re.Pattern[str]:
    return re.compile(re.sub(r"\\{[^/]+?\\}", "[^/]+", re.escape(path)))


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses=`` entries for the listed problem statuses."""
    described = {
        401: "Not authenticated or token invalid", 403: "Authenticated but not allowed",
        404: "Not found or outside the caller's jurisdiction", 409: "Conflict",
        412: "Stale If-Match", 422: "Invalid input", 428: "If-Match required", 429: "Rate limited",
    }
    return {
        s: {"description": described.get(s, "Problem"),
            "content": {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}}}}
        for s in statuses
    }
