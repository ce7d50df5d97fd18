"""HTTP routers. ``secured_router`` requires a valid access token for every route (and, from a machine
client, the router's scope); ``open_router`` serves routes that authenticate by their own means (the
token endpoints) or not at all (health, the public API)."""

from fastapi import APIRouter, Depends

from app.deps import current_scope, require_scope
from app.routing import AppRoute


def secured_router(*, machine_scope: str | None, **kw: object) -> APIRouter:
    """A router whose every route needs a valid access token, and, from a machine client, the scope
    ``machine_scope`` (e.g. ``cases:read``). Every router says which: ``None`` only where machine
    clients are refused by policy (user and audit administration) or each operation checks its own
    scope in its service (notifications, webhooks, the event feed)."""
    # require_scope depends on current_scope itself: listing both would solve current_scope's node twice
    dependencies = [Depends(current_scope)] if machine_scope is None else [require_scope(machine_scope)]
    return APIRouter(route_class=AppRoute, dependencies=dependencies, **kw)  # type: ignore[arg-type]


def open_router(**kw: object) -> APIRouter:
    return APIRouter(route_class=AppRoute, **kw)  # type: ignore[arg-type]
