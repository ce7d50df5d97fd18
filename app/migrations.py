"""Alembic from code: upgrade/downgrade and the head revision this code expects."""

from __future__ import annotations

from collections.abc import Sequence

from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import text

from alembic import command, op
from app.config import PROJECT_ROOT


def alembic_config(url: str | None = None) -> Config:
    cfg = Config(str(PROJECT_ROOT / "alembic.ini"))
    cfg.set_main_option("script_location", str(PROJECT_ROOT / "alembic"))
    if url:
        cfg.attributes["database_url"] = url
    return cfg


def head_revision() -> str | None:
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def upgrade(url: str, revision: str = "head") -> None:
    command.upgrade(alembic_config(url), revision)


def downgrade(url: str, revision: str = "base") -> None:
    command.downgrade(alembic_config(url), revision)


def patch_function(signature: str, patches: Sequence[tuple[str, str]], *, forward: bool) -> None:
    """Inside a migration: redefine the database function ``signature`` from its current definition
    (pg_get_functiondef), each ``(old, new)`` text replaced (``forward``) or put back, so the revision
    changes exactly those lines and copies nothing else of the function."""
    bind = op.get_bind()
    source: str = bind.execute(text("SELECT pg_get_functiondef(CAST(:f AS regprocedure))"),
                               {"f": signature}).scalar_one()
    for old, new in patches:
        a, b = (old, new) if forward else (new, old)
        if a not in source:
            raise RuntimeError(f"{signature} does not contain the text to change: {a!r}")
        source = source.replace(a, b, 1)
    op.execute(source)
