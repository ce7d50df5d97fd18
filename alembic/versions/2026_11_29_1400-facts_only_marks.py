"""A change that only the kept key facts depend on no longer recomputes the campaign contribution

Revision ID: 0025
Revises: 0024
Create Date: 2026-11-29 14:00:00+00:00

The commit-time flush (0018, 0020) refreshed, for every enterprise its transaction marked, both its
campaign contribution (``pqs_refresh_enterprise``) and its kept key facts. A licence, a penalty case,
a manual flag or an inspection's conclusion changes only the facts (the campaign counters read the
enterprise's own columns and its inspections' time, kind, checks and samples, each marked by the
campaign triggers; cases and recalls are counted by triggers of their own), yet each such commit
locked the enterprise's row of every campaign (``FOR UPDATE``: a write, and a wait for a field sync
of the same producer) and read its inspections again. ``pqs_key_facts_mark`` now marks with
``facts_only``, and the flush refreshes the contribution only of an enterprise that some mark of its
transaction did not mark facts only. The order of the locks (enterprise ids, ascending) is kept.
"""
from collections.abc import Sequence

from alembic import op
from app.migrations import patch_function

revision: str = "0025"
down_revision: str | None = "0024"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

FLUSH = "pqs_campaign_flush()"
FLUSH_PATCHES = (
    ("  ids uuid[];\n", "  ids uuid[];\n  campaign_ids uuid[];\n"),
    ("RETURNING enterprise_id)\n  SELECT array_agg(DISTINCT enterprise_id ORDER BY enterprise_id) INTO ids FROM marks;",
     "RETURNING enterprise_id, facts_only)\n"
     "  SELECT array_agg(DISTINCT enterprise_id ORDER BY enterprise_id),\n"
     "         array_agg(DISTINCT enterprise_id) FILTER (WHERE NOT facts_only)\n"
     "    INTO ids, campaign_ids FROM marks;"),
    ("    PERFORM pqs_refresh_enterprise(eid);\n",
     "    IF eid = ANY(campaign_ids) THEN PERFORM pqs_refresh_enterprise(eid); END IF;\n"),
)
MARK = "pqs_key_facts_mark()"
MARK_PATCHES = (
    ("INSERT INTO campaign_dirty (enterprise_id) VALUES (OLD.enterprise_id);",
     "INSERT INTO campaign_dirty (enterprise_id, facts_only) VALUES (OLD.enterprise_id, true);"),
    ("INSERT INTO campaign_dirty (enterprise_id) VALUES (NEW.enterprise_id);",
     "INSERT INTO campaign_dirty (enterprise_id, facts_only) VALUES (NEW.enterprise_id, true);"),
)


def upgrade() -> None:
    op.execute("ALTER TABLE campaign_dirty ADD COLUMN facts_only boolean NOT NULL DEFAULT false")
    patch_function(FLUSH, FLUSH_PATCHES, forward=True)
    patch_function(MARK, MARK_PATCHES, forward=True)


def downgrade() -> None:
    patch_function(MARK, MARK_PATCHES, forward=False)
    patch_function(FLUSH, FLUSH_PATCHES, forward=False)
    op.execute("ALTER TABLE campaign_dirty DROP COLUMN facts_only")
