"""The yardstick for the enterprise list: a bare Starlette + asyncpg endpoint that does the least any
such endpoint must do, so the service's figure can be put in context (issue 3, "Done means").

GET /bare/enterprises?region=330106 with `Authorization: Bearer <access token>`:

1. verifies the service's own JWT with python-jose exactly as app/security.py does (HS256 pinned, the
   `kid` looked up in APP_JWT_KEYS, signature, exp/nbf/iat, issuer and audience from the settings,
   the required claims, `typ == "access"`); no database lookup of the principal;
2. runs one indexed query returning 20 rows: the county's 20 newest enterprises
   (`region_code = $1 ORDER BY created_at DESC, id DESC LIMIT 20`, index ix_enterprise_region_created),
   a prepared statement on an asyncpg pool;
3. answers them as JSON.

Beside it, the least each other read the archive benchmark measures must do, the same way:
GET /bare/enterprises?region=330106&limit=50 (the default page of the service's list) and
GET /bare/search?q=<name fragment> (the newest 50 names containing it: ``name LIKE '%fragment%'``
through the trigram index, planned for each fragment as the service's search is; no key flags, no
cursor, no uscc prefix).

Run (bench_archives.py does this): DATABASE_URL=postgresql+asyncpg://... \
    .venv/bin/uvicorn bench.bare_app:app --workers 2 --port 8001 --no-access-log
"""

from __future__ import annotations

import contextlib
import gc
import os
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
from jose import JWTError, jwt
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from app.config import get_settings

SETTINGS = get_settings()
KEYS = SETTINGS.key_set
REQUIRED = {f"require_{c}": True for c in ("exp", "iat", "iss", "aud", "sub", "jti")}
COLUMNS = ("id, uscc, name, legal_representative, address, region_code, size, category_codes, licensed,"
           " version, created_at, updated_at")
QUERY = f"SELECT {COLUMNS} FROM enterprise WHERE region_code = $1 ORDER BY created_at DESC, id DESC LIMIT {{limit}}"
# planned for each fragment, as the service's search is: with the LIMIT a parameter PostgreSQL keeps
# no generic plan, which would walk the newest enterprises for a fragment that few names contain
SEARCH = f"SELECT {COLUMNS} FROM enterprise WHERE name LIKE $1 ORDER BY created_at DESC, id DESC LIMIT $2"


def dsn() -> str:
    url = os.environ.get("DATABASE_URL") or SETTINGS.database_url
    if not url:
        raise RuntimeError("set DATABASE_URL")
    return url.replace("postgresql+asyncpg://", "postgresql://", 1)


def verify(request: Request) -> dict[str, Any] | None:
    auth = request.headers.get("authorization", "")
    if not auth.lower().startswith("bearer "):
        return None
    token = auth[7:]
    try:
        header = jwt.get_unverified_header(token)
        key = KEYS.get(header.get("kid", ""))
        if header.get("alg") != "HS256" or key is None:
            return None
        claims: dict[str, Any] = jwt.decode(token, key, algorithms=["HS256"], audience=SETTINGS.jwt_audience,
                                            issuer=SETTINGS.jwt_issuer, options=REQUIRED | {"leeway": 5})
    except JWTError:
        return None
    return claims if claims.get("typ") == "access" else None


async def enterprises(request: Request) -> JSONResponse:
    if verify(request) is None:
        return JSONResponse({"title": "Unauthorized", "status": 401}, status_code=401)
    region = request.query_params.get("region", "")
    if len(region) != 6 or not region.isdigit():
        return JSONResponse({"title": "region must be a 6-digit code", "status": 422}, status_code=422)
    limit = request.query_params.get("limit", "20")
    if not limit.isdigit() or not 1 <= int(limit) <= 200:
        return JSONResponse({"title": "limit must be 1..200", "status": 422}, status_code=422)
    pool: asyncpg.Pool = request.app.state.pool
    rows = await pool.fetch(QUERY.format(limit=int(limit)), region)  # a statement per limit, each kept planned
    return JSONResponse({"items": _items(rows), "next_cursor": None})


def _items(rows: list[Any]) -> list[dict[str, Any]]:
    return [{**dict(r), "id": str(r["id"]), "created_at": r["created_at"].isoformat(),
             "updated_at": r["updated_at"].isoformat()} for r in rows]


async def search(request: Request) -> JSONResponse:
    if verify(request) is None:
        return JSONResponse({"title": "Unauthorized", "status": 401}, status_code=401)
    term = request.query_params.get("q", "")
    if not 3 <= len(term) <= 100:
        return JSONResponse({"title": "q must have 3 to 100 characters", "status": 422}, status_code=422)
    escaped = term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    pool: asyncpg.Pool = request.app.state.pool
    rows = await pool.fetch(SEARCH, f"%{escaped}%", 50)
    return JSONResponse({"items": _items(rows), "next_cursor": None})


@contextlib.asynccontextmanager
async def lifespan(app: Starlette) -> AsyncIterator[None]:
    app.state.pool = await asyncpg.create_pool(dsn(), min_size=2, max_size=SETTINGS.db_pool_size)
    gc.collect()
    gc.freeze()  # as the service's workers do (app/main.py), so the comparison stays like for like
    try:
        yield
    finally:
        await app.state.pool.close()


app = Starlette(routes=[Route("/bare/enterprises", enterprises), Route("/bare/search", search)], lifespan=lifespan)
