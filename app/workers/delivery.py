"""The webhook delivery worker: sends the outbox (``webhook_delivery``) to subscribers.

Each round claims due deliveries with ``FOR UPDATE SKIP LOCKED`` and a lease (so several workers or
replicas share the queue and a crashed worker's claims come back), commits, POSTs them without
holding a transaction, then records each result: delivered, or retried with exponential backoff and
jitter, or failed after ``delivery_max_attempts`` (kept, and redeliverable). Delivery is at least
once; the ``X-Event-Id`` header (the same id as in ``/api/v1/events``) lets the receiver drop repeats.

Runs inside the service by default (``APP_RUN_DELIVERY_WORKER``), or as ``python -m app.cli deliver``.
Retries are scheduled in the database rather than with an in-process retry library (tenacity and the
like retry inside one process's memory, which a restart would lose).
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import time
from typing import Any

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.config import Settings
from app.db import session_scope
from app.services import notification as notification_service

log = logging.getLogger(__name__)
LEASE_SECONDS = 60

_CLAIM = text("""
UPDATE webhook_delivery d SET next_attempt_at = now() + make_interval(secs => :lease), attempts = d.attempts + 1
FROM notification n, webhook_subscription w
WHERE d.id IN (SELECT q.id FROM webhook_delivery q
               JOIN webhook_subscription qw ON qw.id = q.subscription_id AND qw.active
               JOIN service_account qs ON qs.id = qw.service_account_id AND qs.active
               WHERE q.status = 'pending' AND q.next_attempt_at <= now()
               ORDER BY q.next_attempt_at LIMIT :n FOR UPDATE OF q SKIP LOCKED)
  AND n.id = d.notification_id AND w.id = d.subscription_id
RETURNING d.id, d.attempts, w.id AS subscription_id, w.url, n.id AS notification_id
""")


def backoff(settings: Settings, attempts: int) -> float:
    base = min(settings.delivery_backoff_base_seconds * 2 ** max(attempts - 1, 0),
               settings.delivery_backoff_max_seconds)
    return base * random.uniform(0.8, 1.2)  # noqa: S311 - jitter, not a secret


def payload(n: dict[str, Any]) -> dict[str, Any]:
    event_id = n["event_id"] if n["event_id"] is not None else str(n["id"])
    return {"event_id": event_id, "type": "notification.created", "notification": n}


async def _send(client: httpx.AsyncClient, settings: Settings, claim: Any, body: bytes,
                event_id: str) -> str | None:
    """POST one delivery; None when the receiver took it (2xx), else the reason."""
    ts = str(int(time.time()))
    headers = {"Content-Type": "application/json", "X-Event-Id": event_id, "X-Timestamp": ts,
               "X-Signature": notification_service.signature(
                   notification_service.secret_for(settings, claim.subscription_id), ts, body),
               "User-Agent": "pqs-regulator-webhooks/1"}
    try:
        r = await client.post(claim.url, content=body, headers=headers, timeout=settings.delivery_timeout_seconds)
    except Exception as exc:  # noqa: BLE001 - any failure of one delivery is that delivery's, never the round's
        return f"{type(exc).__name__}: {exc}"[:500]
    return None if 200 <= r.status_code < 300 else f"HTTP {r.status_code}"


async def run_once(maker: async_sessionmaker[AsyncSession], settings: Settings, client: httpx.AsyncClient,
                   *, batch: int = 50) -> dict[str, int]:
    """One round: claim, send, record. Returns counts."""
    async with session_scope(maker) as session:
        claims = (await session.execute(_CLAIM, {"lease": LEASE_SECONDS, "n": batch})).all()
        if not claims:
            return {"delivered": 0, "retried": 0, "failed": 0}
        rows = (await session.execute(text(
            "SELECT * FROM notification WHERE id = ANY(:ids)"), {"ids": [c.notification_id for c in claims]}
        )).mappings().all()
    views = {r["id"]: notification_service.to_public_row(r) for r in rows}

    async def one(claim: Any) -> tuple[Any, str | None]:
        view = views[claim.notification_id]
        body = payload(view)
        return claim, await _send(client, settings, claim, json.dumps(body, ensure_ascii=False).encode(),
                                  str(body["event_id"]))

    results = await asyncio.gather(*(one(c) for c in claims))  # _send returns failures, it does not raise
    counts = {"delivered": 0, "retried": 0, "failed": 0}
    async with session_scope(maker) as session:
        for claim, error in results:
            if error is None:
                counts["delivered"] += 1
                # only while the claim is still ours (a worker past its lease must not overwrite a newer result)
                await session.execute(text(
                    "UPDATE webhook_delivery SET status = 'delivered', delivered_at = now(), last_error = NULL"
                    " WHERE id = :id AND status = 'pending' AND attempts = :a"), {"id": claim.id, "a": claim.attempts})
            elif claim.attempts >= settings.delivery_max_attempts:
                counts["failed"] += 1
                await session.execute(text("UPDATE webhook_delivery SET status = 'failed', last_error = :e"
                                           " WHERE id = :id AND status = 'pending' AND attempts = :a"),
                                      {"id": claim.id, "e": error, "a": claim.attempts})
            else:
                counts["retried"] += 1
                await session.execute(text(
                    "UPDATE webhook_delivery SET next_attempt_at = now() + make_interval(secs => :s), last_error = :e"
                    " WHERE id = :id AND status = 'pending' AND attempts = :a"),
                    {"id": claim.id, "e": error, "s": backoff(settings, claim.attempts), "a": claim.attempts})
        # a notification reads delivered once one delivery succeeded, failed once all of them failed
        await session.execute(text("""
            UPDATE notification n SET
              attempts = (SELECT coalesce(sum(d.attempts), 0) FROM webhook_delivery d WHERE d.notification_id = n.id),
              status = CASE
                WHEN n.receipt_at IS NOT NULL OR EXISTS (SELECT 1 FROM webhook_delivery d
                     WHERE d.notification_id = n.id AND d.status = 'delivered') THEN 'delivered'
                WHEN NOT EXISTS (SELECT 1 FROM webhook_delivery d
                     WHERE d.notification_id = n.id AND d.status <> 'failed') THEN 'failed'
                ELSE 'pending' END,
              delivered_at = coalesce(n.delivered_at, (SELECT min(d.delivered_at) FROM webhook_delivery d
                                                       WHERE d.notification_id = n.id))
            WHERE n.id = ANY(:ids)
        """), {"ids": list({c.notification_id for c, _ in results})})
    for claim, error in results:
        if error is not None:
            log.warning("webhook delivery %s to %s failed (attempt %s): %s", claim.id, claim.url, claim.attempts, error)
    return counts


async def run_forever(maker: async_sessionmaker[AsyncSession], settings: Settings) -> None:
    async with httpx.AsyncClient(follow_redirects=False) as client:
        while True:
            try:
                counts = await run_once(maker, settings, client)
                if sum(counts.values()):
                    continue  # more may be due: no pause while the queue drains
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("webhook delivery round failed; retrying next round")
            await asyncio.sleep(settings.delivery_poll_seconds)
