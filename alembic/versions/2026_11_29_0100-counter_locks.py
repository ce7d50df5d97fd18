"""Campaign counters: read the enterprise under a share lock; rebuild under table share locks; case
and recall triggers also follow created_at

* ``pqs_refresh_enterprise`` read the enterprise before locking its counter row: an inspection synced
  while a licence change updated the enterprise could apply a stale contribution. ``FOR SHARE`` waits
  for such an update and reads its result (inspection inserts only take KEY SHARE, so they do not
  queue on each other).
* ``pqs_rebuild_campaign`` takes SHARE locks on the four tables, so no write can commit between its
  snapshot and the campaign becoming visible to the triggers.
* the case and recall triggers fire on ``created_at`` too (the campaign period is read from it).

The functions are patched from their current definitions (pg_get_functiondef), so this revision
changes exactly those lines.

Revision ID: 0014
Revises: 0013
Create Date: 2026-11-29 01:00:00+00:00
"""
from collections.abc import Sequence

from sqlalchemy import text

from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

PATCHES = (
    ("pqs_refresh_enterprise(uuid)",
     "FROM enterprise WHERE id = eid;", "FROM enterprise WHERE id = eid FOR SHARE;"),
    ("pqs_rebuild_campaign(uuid)",
     "SELECT * INTO c FROM campaign WHERE id = cid;",
     "LOCK TABLE enterprise, inspection, penalty_case, recall IN SHARE MODE;\n"
     "  SELECT * INTO c FROM campaign WHERE id = cid;"),
)
TRIGGERS = (
    ("pqs_case_stats", "penalty_case", "status, kind, region_code", "pqs_case_changed"),
    ("pqs_recall_stats", "recall", "status, units_sold, units_recalled, region_code", "pqs_recall_changed"),
)


def _patch(forward: bool) -> None:
    bind = op.get_bind()
    for signature, old, new in PATCHES:
        source = bind.execute(text("SELECT pg_get_functiondef(CAST(:f AS regprocedure))"), {"f": signature}).scalar()
        a, b = (old, new) if forward else (new, old)
        if a not in source:
            raise RuntimeError(f"{signature} does not contain the line to change: {a!r}")
        op.execute(source.replace(a, b, 1))


def _triggers(extra: str) -> None:
    for name, table, columns, function in TRIGGERS:
        op.execute(f"DROP TRIGGER {name} ON {table}")
        op.execute(f"CREATE TRIGGER {name} AFTER INSERT OR DELETE OR UPDATE OF {columns}{extra} ON {table}"
                   f" FOR EACH ROW EXECUTE FUNCTION {function}()")


def upgrade() -> None:
    _patch(forward=True)
    _triggers(", created_at")


def downgrade() -> None:
    _patch(forward=False)
    _triggers("")
