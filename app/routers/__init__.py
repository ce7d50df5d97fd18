"""HTTP routers. ``api_router`` requires authentication for every route; ``public_auth_router`` holds
the token endpoints, which authenticate by their own means."""

from fastapi import APIRouter, Depends

from app.deps import current_scope
from app.routing import AppRoute


def secured_router(**kw: object) -> APIRouter:
    """A router whose every route needs a valid access token (authentication on by default)."""
    return APIRouter(route_class=AppRoute, dependencies=[Depends(current_scope)], **kw)  # type: ignore[arg-type]


def open_router(**kw: object) -> APIRouter:
    return APIRouter(route_class=AppRoute, **kw)  # type: ignore[arg-type]
