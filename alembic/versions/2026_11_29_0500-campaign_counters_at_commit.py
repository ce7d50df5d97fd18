"""An enterprise's campaign contribution is recomputed when its transaction commits, for every
enterprise it touched in id order, instead of row by row while the transaction runs

Revision ID: 0018
Revises: 0017
Create Date: 2026-11-29 05:00:00+00:00

``pqs_refresh_enterprise`` locks the enterprise's ``campaign_enterprise`` rows until commit. Run from
the row triggers, a batch of 100 inspections held those locks from its first item to its commit, in
the order of its items: two batches touching the same producers in different orders waited for each
other, deadlocked, and at 32 concurrent batches on 500 producers no batch finished at all.

Now the triggers on ``inspection`` and ``enterprise`` only append the enterprise to
``campaign_dirty`` (with the transaction's id). A deferred constraint trigger on that table runs at
commit: its first firing takes every enterprise its transaction marked, in id order, and refreshes
each (later firings find nothing). Locks are held only while the transaction commits and are taken
in one order by every committing transaction, so batches touching the same producers queue briefly
instead of deadlocking on each other. The dashboards stay exact at every commit. A transaction that
changes very many enterprises (the licence-expiry job) sets ``SET CONSTRAINTS pqs_campaign_flush
IMMEDIATE`` so the work is done statement by statement, each under the statement timeout, rather than
all inside COMMIT. (``SET CONSTRAINTS ALL IMMEDIATE`` makes it run at the end of
each statement instead, as the tests' never-committed transactions do.)
"""
from collections.abc import Sequence

from alembic import op

revision: str = "0018"
down_revision: str | None = "0017"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


MARK = "INSERT INTO campaign_dirty (enterprise_id) VALUES ({id})"  # this revision: mark, flushed at commit
REFRESH = "PERFORM pqs_refresh_enterprise({id})"  # before it (0009): recompute at once


def _triggers_do(action: str) -> None:
    """The inspection and enterprise trigger functions, doing ``action`` for each enterprise touched."""
    old, new = action.format(id="OLD.enterprise_id"), action.format(id="NEW.enterprise_id")
    op.execute(f"""
CREATE OR REPLACE FUNCTION pqs_inspection_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF pqs_bulk_loading() THEN RETURN NULL; END IF;
  IF TG_OP IN ('UPDATE', 'DELETE') THEN {old}; END IF;
  IF TG_OP IN ('INSERT', 'UPDATE') AND (TG_OP = 'INSERT' OR NEW.enterprise_id <> OLD.enterprise_id) THEN
    {new};
  END IF;
  RETURN NULL;
END $$""")
    op.execute(f"""
CREATE OR REPLACE FUNCTION pqs_enterprise_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF pqs_bulk_loading() THEN RETURN NULL; END IF;
  {action.format(id="CASE WHEN TG_OP = 'DELETE' THEN OLD.id ELSE NEW.id END")};
  RETURN NULL;
END $$""")


def upgrade() -> None:
    op.execute("""
CREATE TABLE campaign_dirty (
  seq bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  txid bigint NOT NULL DEFAULT pg_current_xact_id()::text::bigint,
  enterprise_id uuid NOT NULL
)""")
    op.execute("CREATE INDEX ix_campaign_dirty_txid ON campaign_dirty (txid)")
    _triggers_do(MARK)
    op.execute("""
CREATE FUNCTION pqs_campaign_flush() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  ids uuid[];
  eid uuid;
BEGIN
  -- the first firing of a transaction takes all its marks; the later ones find theirs gone (one
  -- primary-key probe each, not a walk over the marks already deleted)
  IF NOT EXISTS (SELECT 1 FROM campaign_dirty WHERE seq = NEW.seq) THEN RETURN NULL; END IF;
  WITH marks AS (DELETE FROM campaign_dirty WHERE txid = pg_current_xact_id()::text::bigint RETURNING enterprise_id)
  SELECT array_agg(DISTINCT enterprise_id ORDER BY enterprise_id) INTO ids FROM marks;
  FOREACH eid IN ARRAY coalesce(ids, '{}') LOOP
    PERFORM pqs_refresh_enterprise(eid);
  END LOOP;
  RETURN NULL;
END $$""")
    op.execute("CREATE CONSTRAINT TRIGGER pqs_campaign_flush AFTER INSERT ON campaign_dirty"
               " DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION pqs_campaign_flush()")


def downgrade() -> None:
    op.execute("DROP TRIGGER pqs_campaign_flush ON campaign_dirty")
    op.execute("DROP FUNCTION pqs_campaign_flush()")
    _triggers_do(REFRESH)
    op.execute("DROP TABLE campaign_dirty")
