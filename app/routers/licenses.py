"""Routes for licences (being built)."""

from __future__ import annotations

from app.routers import secured_router

router = secured_router(prefix="/api/v1/licenses", tags=["licences"])
