"""A TRUNCATE of a table the kept figures are computed from rebuilds them

Revision ID: 0023
Revises: 0022
Create Date: 2026-11-29 10:00:00+00:00

The kept key facts (0020) and the campaign counters (0009, 0018) follow row changes through row
triggers, and TRUNCATE fires none: truncating the licences, inspections, penalty cases, manual key
flags or recalls left every producer's flags and every campaign's counts as they were. Each of those
tables now has a statement trigger that rebuilds, set-based and in the truncating transaction, what
depends on it: the kept facts (licences, inspections, cases, flags; about 75 s on the large set), the
campaign counters (inspections, cases, recalls). One TRUNCATE statement of several tables (CASCADE
adds the tables that refer to them) rebuilds each at most once. Nothing is rebuilt during a bulk load
(``pqs.bulk_load``, which rebuilds at its end) or under ``session_replication_role = replica``, which
skips triggers (the tests' clean-up). A TRUNCATE of ``enterprise`` must cascade, which truncates these
tables too. It is an operator's statement: run it while the service is quiet, without a statement
timeout (a commit refreshing a producer at the same moment may deadlock with the rebuild, and
PostgreSQL then cancels one of the two).
"""
from collections.abc import Sequence

from alembic import op

revision: str = "0023"
down_revision: str | None = "0022"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# table: what is rebuilt when it is truncated
SOURCES = {"license": ("facts",), "inspection": ("facts", "campaign"), "penalty_case": ("facts", "campaign"),
           "enterprise_key_flag": ("facts",), "recall": ("campaign",)}


def upgrade() -> None:
    op.execute("""
CREATE FUNCTION pqs_sources_truncated() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  this_statement text := txid_current()::text || ' ' || statement_timestamp()::text;
  kind text;
BEGIN
  IF pqs_bulk_loading() THEN RETURN NULL; END IF;
  -- the AFTER TRUNCATE triggers fire once every table of the statement is empty
  FOREACH kind IN ARRAY TG_ARGV LOOP
    CONTINUE WHEN current_setting('pqs.rebuilt_' || kind, true) = this_statement;
    PERFORM set_config('pqs.rebuilt_' || kind, this_statement, true);
    IF kind = 'facts' THEN
      PERFORM pqs_rebuild_key_facts();
    ELSE
      PERFORM pqs_rebuild_campaign(id) FROM campaign ORDER BY id;
    END IF;
  END LOOP;
  RETURN NULL;
END $$""")
    for table, kinds in SOURCES.items():
        args = ", ".join(f"'{k}'" for k in kinds)  # constant names
        op.execute(f"CREATE TRIGGER pqs_{table}_truncated AFTER TRUNCATE ON {table}"
                   f" FOR EACH STATEMENT EXECUTE FUNCTION pqs_sources_truncated({args})")


def downgrade() -> None:
    for table in SOURCES:
        op.execute(f"DROP TRIGGER pqs_{table}_truncated ON {table}")
    op.execute("DROP FUNCTION pqs_sources_truncated()")
