"""Liveness and readiness (Prometheus metrics are mounted in app.main)."""

from __future__ import annotations

import logging

from fastapi import Request
from fastapi.responses import JSONResponse
from sqlalchemy import text

from app.routers import open_router

log = logging.getLogger(__name__)

router = open_router(tags=["operations"])


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    """The process is alive."""
    return {"status": "ok"}


@router.get("/readyz", responses={503: {"description": "database unreachable or schema not at head"}})
async def readyz(request: Request) -> JSONResponse:
    """The database answers and its schema is at the migration head this code expects."""
    head = request.app.state.migration_head
    try:
        async with request.app.state.sessionmaker() as session:
            current = (await session.execute(text("SELECT version_num FROM alembic_version"))).scalar()
    except Exception as exc:  # noqa: BLE001 - any failure means not ready
        log.warning("readiness check failed: %s", type(exc).__name__)
        return JSONResponse({"status": "unavailable", "reason": "database unreachable"}, status_code=503)
    if current != head:
        return JSONResponse({"status": "unavailable", "reason": "migrations pending",
                             "database": current, "code": head}, status_code=503)
    return JSONResponse({"status": "ok", "migration": current})
