"""A TRUNCATE of a table the kept figures are computed from rebuilds them

Revision ID: 0023
Revises: 0022
Create Date: 2026-11-29 10:00:00+00:00

The kept key facts (0020) and the campaign counters (0009, 0018) follow row changes through row
triggers, and TRUNCATE fires none: truncating the licences, inspections, penalty cases, manual key
flags or recalls left every producer's flags and every campaign's counts as they were. Each of those
tables now has a statement trigger that rebuilds both, set-based, in the truncating transaction (on
the large set: about 75 s for the facts), unless a bulk load is running (``pqs.bulk_load``: it
rebuilds once at its end). A TRUNCATE of ``enterprise`` takes the kept figures with it (their
foreign keys cascade), so it needs none.
"""
from collections.abc import Sequence

from alembic import op

revision: str = "0023"
down_revision: str | None = "0022"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SOURCES = ("license", "inspection", "penalty_case", "enterprise_key_flag", "recall")


def upgrade() -> None:
    op.execute("""
CREATE FUNCTION pqs_sources_truncated() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF pqs_bulk_loading() THEN RETURN NULL; END IF;
  PERFORM pqs_rebuild_key_facts();
  PERFORM pqs_rebuild_campaign(id) FROM campaign ORDER BY id;
  RETURN NULL;
END $$""")
    for table in SOURCES:
        op.execute(f"CREATE TRIGGER pqs_{table}_truncated AFTER TRUNCATE ON {table}"
                   " FOR EACH STATEMENT EXECUTE FUNCTION pqs_sources_truncated()")


def downgrade() -> None:
    for table in SOURCES:
        op.execute(f"DROP TRIGGER pqs_{table}_truncated ON {table}")
    op.execute("DROP FUNCTION pqs_sources_truncated()")
