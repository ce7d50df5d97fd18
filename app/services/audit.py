"""Append-only audit log with a SHA-256 chain.

Write path: ``record()`` adds one row, in the caller's transaction, with ``row_hash`` over its
content. No lock, no chain head: concurrent writers do not wait on each other.
Chain: ``seal()`` (background job, and before every verification) takes the committed rows not yet
chained, in id order, under an advisory lock, and gives each ``seq`` and
``chain_hash = sha256(previous chain_hash + row_hash)``. A trigger refuses UPDATE and DELETE except
that one-time sealing, so tampering needs a superuser, and ``verify()`` then names the first broken link.
"""

from __future__ import annotations

import hashlib
import json
import logging
from datetime import datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import select

from app import scope as scope_mod
from app.config import get_settings
from app.models.audit import AuditEvent
from app.models.common import NATIONAL_CODE, utcnow

log = logging.getLogger(__name__)

GENESIS = "0" * 64
SEAL_LOCK_KEY = 0x5A_0D17_C4A1  # advisory lock id for the sealer
HASHED_FIELDS = ("occurred_at", "actor_type", "actor_id", "actor_name", "actor_region", "action",
                 "entity_type", "entity_id", "region_code", "before", "after", "request_id")


def _canonical(values: dict[str, Any]) -> bytes:
    def norm(v: Any) -> Any:
        return v.isoformat() if isinstance(v, datetime) else v

    return json.dumps({k: norm(values.get(k)) for k in HASHED_FIELDS}, sort_keys=True,
                      separators=(",", ":"), ensure_ascii=False, default=str).encode()


def row_hash(values: dict[str, Any]) -> str:
    return hashlib.sha256(_canonical(values)).hexdigest()


def link(prev_chain: str, rhash: str) -> str:
    return hashlib.sha256((prev_chain + rhash).encode()).hexdigest()


async def record(
    session: AsyncSession,
    *,
    action: str,
    entity_type: str,
    entity_id: str,
    region_code: str | None,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
    actor_type: str | None = None,
    actor_name: str | None = None,
) -> AuditEvent | None:
    """Append one audit row for a write, in the same transaction as the write (its ``id``, the event id
    of the change in the feed, is set at the next flush)."""
    if not get_settings().audit_log_enabled:
        return None
    from asgi_correlation_id import correlation_id

    who = scope_mod.current(session.sync_session)
    values: dict[str, Any] = {
        "occurred_at": utcnow(),
        "actor_type": actor_type or (who.principal_type if who else "system"),
        "actor_id": str(who.principal_id) if who else None,
        "actor_name": actor_name or (who.username if who else None),
        "actor_region": who.region_code if who else None,
        "action": action,
        "entity_type": entity_type,
        "entity_id": entity_id,
        "region_code": region_code or NATIONAL_CODE,
        "before": _jsonable(before),
        "after": _jsonable(after),
        "request_id": correlation_id.get(),
    }
    event = AuditEvent(**values, row_hash=row_hash(values))
    session.add(event)
    return event


def _jsonable(d: dict[str, Any] | None) -> dict[str, Any] | None:
    return None if d is None else json.loads(json.dumps(d, default=str, ensure_ascii=False))


async def seal(session: AsyncSession, *, batch: int = 5000) -> int:
    """Chain the committed, not yet chained rows. Returns how many were sealed."""
    got = (await session.execute(text("SELECT pg_try_advisory_xact_lock(:k)"), {"k": SEAL_LOCK_KEY})).scalar()
    if not got:
        return 0
    # Continue from the anchor, not from the newest row: if the newest links were deleted, the next
    # sealed row still follows the anchor and the gap stays visible to verify().
    head = (await session.execute(text("SELECT seq, chain_hash FROM audit_chain_head WHERE id = 1"))).first()
    seq, prev = (int(head[0]), str(head[1])) if head else (0, GENESIS)
    rows = (await session.execute(text(
        "SELECT id, row_hash FROM audit_event WHERE seq IS NULL ORDER BY id LIMIT :n"), {"n": batch}
    )).all()
    if not rows:
        return 0
    ids, seqs, chains = [], [], []
    for rid, rhash in rows:
        seq += 1
        prev = link(prev, rhash)
        ids.append(rid)
        seqs.append(seq)
        chains.append(prev)
    await session.execute(text(
        "UPDATE audit_event AS a SET seq = v.seq, chain_hash = v.chain"
        " FROM unnest(CAST(:ids AS bigint[]), CAST(:seqs AS bigint[]), CAST(:chains AS varchar[]))"
        " AS v(id, seq, chain) WHERE a.id = v.id"
    ), {"ids": ids, "seqs": seqs, "chains": chains})
    # The head anchor (a forward-only row) is what makes removing the newest links visible; the log
    # line lets an auditor keep the head outside the database as well.
    await session.execute(text(
        "INSERT INTO audit_chain_head (id, seq, chain_hash, sealed_at) VALUES (1, :seq, :h, now())"
        " ON CONFLICT (id) DO UPDATE SET seq = EXCLUDED.seq, chain_hash = EXCLUDED.chain_hash,"
        " sealed_at = EXCLUDED.sealed_at"), {"seq": seq, "h": prev})
    log.info("audit chain sealed to seq %d, head %s", seq, prev)
    return len(rows)


async def verify(session: AsyncSession, *, batch: int = 5000) -> dict[str, Any]:
    """Seal what is pending, then walk the whole chain; name the first broken link."""
    while await seal(session, batch=batch) == batch:
        pass
    checked, expected_seq, prev = 0, 1, GENESIS
    stmt = select(AuditEvent).execution_options(unscoped=True)
    while True:
        page = (await session.execute(
            stmt.where(AuditEvent.seq.is_not(None), AuditEvent.seq >= expected_seq)  # type: ignore[union-attr,operator]
            .order_by(AuditEvent.seq).limit(batch)  # type: ignore[arg-type]
        )).scalars().all()
        if not page:
            break
        for ev in page:
            values = {k: getattr(ev, k) for k in HASHED_FIELDS}
            if ev.seq != expected_seq:
                return _broken(checked, ev.id, f"link {expected_seq} is missing before seq {ev.seq}: "
                                                "a row was deleted")
            if row_hash(values) != ev.row_hash:
                return _broken(checked, ev.id, "content does not match its row_hash: the row was edited")
            if link(prev, ev.row_hash) != ev.chain_hash:
                return _broken(checked, ev.id, "chain_hash does not follow from the previous link: a row "
                                                "was inserted, edited or re-hashed")
            prev, expected_seq, checked = ev.chain_hash, expected_seq + 1, checked + 1
    head = (await session.execute(text("SELECT seq, chain_hash FROM audit_chain_head WHERE id = 1"))).first()
    if head is not None and (int(head[0]), str(head[1])) != (expected_seq - 1, prev):
        return _broken(checked, None, f"the chain ends at seq {expected_seq - 1} but its head anchor says "
                                      f"seq {head[0]}: the newest links were removed or replaced")
    pending = (await session.execute(
        stmt.where(AuditEvent.seq.is_(None)).order_by(AuditEvent.id)  # type: ignore[union-attr,arg-type]
    )).scalars().all()
    for ev in pending:  # rows written by transactions still open while we sealed
        if row_hash({k: getattr(ev, k) for k in HASHED_FIELDS}) != ev.row_hash:
            return _broken(checked, ev.id, "content does not match its row_hash: the row was edited")
        checked += 1
    return {"ok": True, "checked": checked, "first_broken": None,
            "head": {"seq": expected_seq - 1, "chain_hash": prev} if expected_seq > 1 else None}


def _broken(checked: int, event_id: int | None, reason: str) -> dict[str, Any]:
    return {"ok": False, "checked": checked, "first_broken": {"id": event_id, "reason": reason}}
