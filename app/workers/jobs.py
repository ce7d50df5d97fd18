"""Scheduled jobs, run inside the service by default. Each takes an advisory lock or is idempotent,
so several workers or replicas can run them side by side."""

from __future__ import annotations

import asyncio
import logging

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.config import get_settings
from app.db import session_scope
from app.services import audit, idempotency
from app.services import campaign as campaign_service
from app.services import license as license_service
from app.services import recall as recall_service

log = logging.getLogger(__name__)


async def run_once(maker: async_sessionmaker[AsyncSession]) -> dict[str, int]:
    done: dict[str, int] = {}
    async with session_scope(maker) as session:
        done["licenses_expired"] = await license_service.expire_due(session)
    async with session_scope(maker) as session:
        done["recalls_overdue"] = await recall_service.mark_overdue(session)
    async with session_scope(maker) as session:
        done["campaign_deltas_folded"] = await campaign_service.compact(session)
    async with session_scope(maker) as session:
        done["audit_sealed"] = await audit.seal(session)
    async with session_scope(maker) as session:
        done["idempotency_purged"] = await idempotency.purge_expired(session)
        await session.execute(text("DELETE FROM revoked_access_token WHERE expires_at < now()"))
        await session.execute(text("DELETE FROM refresh_token WHERE expires_at < now() - interval '1 day'"))
        await session.execute(text(
            "DELETE FROM login_throttle WHERE last_failed_at < now() - make_interval(secs => :w)"
            " AND (locked_until IS NULL OR locked_until < now())"), {"w": get_settings().login_failure_window_seconds})
    return done


async def run_forever(maker: async_sessionmaker[AsyncSession], interval: float) -> None:
    while True:
        try:
            await run_once(maker)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("background job failed; retrying next round")
        await asyncio.sleep(interval)
