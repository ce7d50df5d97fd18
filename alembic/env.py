"""Alembic environment: async engine on asyncpg; the URL comes from the caller or the settings."""

from __future__ import annotations

import asyncio

from sqlalchemy import pool, text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

import app.models  # noqa: F401 - registers every table
from alembic import context
from app.config import get_settings
from app.db import metadata, resolve_database_url

config = context.config
target_metadata = metadata


def _url() -> str:
    url = config.attributes.get("database_url")
    return url or asyncio.run(resolve_database_url(get_settings()))


def _run(connection: Connection) -> None:
    context.configure(connection=connection, target_metadata=target_metadata, compare_type=True)
    with context.begin_transaction():
        # Replicas starting together: the first migrates, the others wait here and then find the head.
        connection.execute(text("SELECT pg_advisory_xact_lock(7215330106)"))
        context.run_migrations()


async def _run_async(url: str) -> None:
    engine = create_async_engine(url, poolclass=pool.NullPool)
    async with engine.connect() as connection:
        await connection.run_sync(_run)
    await engine.dispose()


if context.is_offline_mode():
    context.configure(url=_url(), target_metadata=target_metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()
else:
    asyncio.run(_run_async(_url()))
