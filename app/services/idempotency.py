"""Idempotency-Key (IETF httpapi draft semantics), stored in PostgreSQL.

The key is claimed with a transaction-scoped advisory lock, so a concurrent repeat gets 409 at
once; the stored response is written in the same transaction as the create, so a create and its
record commit or vanish together."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import timedelta

from fastapi import Request, Response
from sqlalchemy import func, text
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import select

from app.config import get_settings
from app.errors import Conflict, Unprocessable
from app.models.common import utcnow
from app.models.idempotency import IdempotencyRecord
from app.security import TokenError, decode_token

REPLAYED_HEADERS = ("content-type", "location", "etag")
MAX_KEY_LENGTH = 255


@dataclass
class Claim:
    owner: str
    key: str
    request_hash: str
    path: str
    replay: Response | None = None


async def _owner(session: AsyncSession, request: Request) -> str | None:
    """The authenticated caller, checked as fully as the route will check it (a deactivated user
    or a revoked token gets no replay)."""
    auth = request.headers.get("authorization", "")
    scheme, _, token = auth.partition(" ")
    if scheme.lower() != "bearer" or not token:
        return None
    try:
        claims = decode_token(request.app.state.settings, token, expected_typ="access")
    except TokenError:
        return None
    from app.services.auth import load_principal

    principal = await load_principal(session, claims)
    return f"{principal.principal_type}:{principal.principal_id}"


def lock_key(owner: str, key: str) -> int:
    """The advisory-lock id that serialises requests of one caller with one key."""
    return int.from_bytes(hashlib.sha256(f"{owner}\x00{key}".encode()).digest()[:8], "big", signed=True)


async def begin(session: AsyncSession, request: Request) -> Claim | None:
    """Claim the key, or return the stored response to replay. None: no authenticated owner, so the
    request goes on and fails authentication as usual."""
    key = request.headers["idempotency-key"].strip()
    if not key or len(key) > MAX_KEY_LENGTH:
        raise Unprocessable(f"Idempotency-Key must be 1..{MAX_KEY_LENGTH} characters",
                            code="invalid_idempotency_key")
    owner = await _owner(session, request)
    if owner is None:
        return None
    body = await request.body()
    digest = hashlib.sha256()
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    for part in (request.method.encode(), request.url.path.encode(), request.url.query.encode(),
                 media_type.encode(), body):
        digest.update(part + b"\x00")
    claim = Claim(owner=owner, key=key, request_hash=digest.hexdigest(), path=request.url.path)

    got = (await session.execute(text("SELECT pg_try_advisory_xact_lock(:k)"), {"k": lock_key(owner, key)})).scalar()
    if not got:
        raise Conflict("A request with this Idempotency-Key is still being processed; retry later",
                       code="idempotency_in_progress", headers={"Retry-After": "1"})
    record = (await session.execute(
        select(IdempotencyRecord).where(
            IdempotencyRecord.owner == owner, IdempotencyRecord.key == key,
            IdempotencyRecord.expires_at > func.now(),
        ).with_for_update()
    )).scalar_one_or_none()
    if record is None:
        return claim
    if record.request_hash != claim.request_hash:
        raise Unprocessable("This Idempotency-Key was used with another request body or path",
                            code="idempotency_key_reused")
    headers = {k: str(v) for k, v in record.response_headers.items()}
    headers["Idempotent-Replayed"] = "true"
    claim.replay = Response(content=record.response_body, status_code=record.response_status,
                            headers=headers)
    return claim


async def store(session: AsyncSession, claim: Claim, response: Response, *, redact: tuple[str, ...] = ()) -> None:
    now = utcnow()
    body = bytes(response.body)
    if redact:
        data = json.loads(body)
        body = json.dumps({k: v for k, v in data.items() if k not in redact}, ensure_ascii=False,
                          separators=(",", ":")).encode()
    headers = {k: v for k, v in response.headers.items() if k.lower() in REPLAYED_HEADERS}
    stmt = text(
        "INSERT INTO idempotency_record (owner, key, method, path, request_hash, response_status,"
        " response_headers, response_body, created_at, expires_at)"
        " VALUES (:owner, :key, 'POST', :path, :h, :status, CAST(:headers AS jsonb), :body, :now, :exp)"
        " ON CONFLICT (owner, key) DO UPDATE SET request_hash = EXCLUDED.request_hash,"
        " response_status = EXCLUDED.response_status, response_headers = EXCLUDED.response_headers,"
        " response_body = EXCLUDED.response_body, created_at = EXCLUDED.created_at,"
        " expires_at = EXCLUDED.expires_at"
    )
    await session.execute(stmt, {
        "owner": claim.owner, "key": claim.key, "path": claim.path[:512], "h": claim.request_hash,
        "status": response.status_code, "headers": json.dumps(headers), "body": body,
        "now": now, "exp": now + timedelta(days=get_settings().idempotency_ttl_days),
    })


async def purge_expired(session: AsyncSession) -> int:
    result = await session.execute(text("DELETE FROM idempotency_record WHERE expires_at < now()"))
    return int(result.rowcount or 0)  # type: ignore[attr-defined]
