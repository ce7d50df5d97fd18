"""The pull feed: every change a caller may see, in commit order, resumable from a cursor.

It is the audit log read forward, a pure read: the chain sealer (the background job, every
``APP_BACKGROUND_INTERVAL_SECONDS``) gives committed rows their ``seq`` in the order
they became visible, so a reader that resumes after ``seq`` N never misses a change that committed
later with a smaller row id. The event ``id`` is the audit row's id, the same id a webhook delivery
carries in ``X-Event-Id``. Accounts and credentials (users, service accounts, webhooks) are not in it.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import and_, or_
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from app import pagination, policy
from app.errors import Unprocessable
from app.models.audit import AuditEvent
from app.models.integration import FeedEvent
from app.scope import Scope

# each kind of change, and the scope a machine client needs to see it
FEED_SCOPES = {"enterprise": "enterprises:read", "license": "enterprises:read", "key_region": "enterprises:read",
               "bad_record": "enterprises:read", "inspection": "inspections:read", "attachment": "inspections:read",
               "penalty_case": "cases:read", "notification": "notifications:read", "recall": "recalls:read"}
FEED_TYPES = tuple(FEED_SCOPES)


def encode_cursor(seq: int) -> str:
    return pagination.encode_cursor(f"seq:{seq}")


def decode_cursor(cursor: str) -> int:
    kind, _, value = pagination.decode_cursor(cursor).partition(":")
    try:
        seq = int(value)
        if kind != "seq" or seq < 0 or seq > 2**62:
            raise ValueError(value)
    except ValueError as exc:
        raise Unprocessable("cursor is not a cursor of this feed", code="invalid_cursor") from exc
    return seq


async def feed(session: AsyncSession, *, scope: Scope, cursor: str | None, limit: int,
               entity_type: str | None) -> tuple[list[FeedEvent], str]:
    policy.require(policy.has_scope(scope, "events:read"), code="scope_missing")
    after = decode_cursor(cursor) if cursor else 0
    stmt = select(AuditEvent).where(col(AuditEvent.seq).is_not(None), col(AuditEvent.seq) > after,
                                    col(AuditEvent.entity_type).in_(FEED_TYPES))
    if entity_type is not None:
        stmt = stmt.where(AuditEvent.entity_type == entity_type)
    if scope.principal_type == "service":  # the kinds its scopes name, and the 通报 of its own agency only
        stmt = stmt.where(col(AuditEvent.entity_type).in_([t for t, s in FEED_SCOPES.items() if s in scope.scopes]))
        stmt = stmt.where(or_(col(AuditEvent.entity_type) != "notification",
                              and_(AuditEvent.after["recipient"].astext == (scope.agency or ""),  # type: ignore[index]
                                   or_(AuditEvent.after["recipient_account"].astext.is_(None),  # type: ignore[index]
                                       AuditEvent.after["recipient_account"].astext  # type: ignore[index]
                                       == str(scope.principal_id)))))
    rows = (await session.execute(stmt.order_by(col(AuditEvent.seq)).limit(limit))).scalars().all()
    items = [FeedEvent(id=e.id, seq=e.seq, type=e.action, entity_type=e.entity_type, entity_id=e.entity_id,
                       region_code=e.region_code, occurred_at=e.occurred_at,
                       data=policy.redact_people(_data(e), scope))  # type: ignore[arg-type]
             for e in rows if e.id is not None and e.seq is not None]
    return items, encode_cursor(items[-1].seq if items else after)


def _data(e: AuditEvent) -> dict[str, Any] | None:
    return e.after if e.after is not None else ({"before": e.before} if e.before else None)
