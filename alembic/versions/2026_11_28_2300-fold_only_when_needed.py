"""Fold the campaign deltas only when a county has more than one row

Folding rewrites rows (new ids), which is what tells the dashboards' cached copies that the counters
changed; folding when there is nothing to fold would discard them every round for no reason.

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-28 23:00:00+00:00
"""
from collections.abc import Sequence

from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

COUNTERS = ("key_producers", "archived", "inspected", "licensed", "compliant", "samples", "passed",
            "samples_large", "passed_large", "recall_sold", "recall_recalled", "unlicensed_cases",
            "unlicensed_resolved", "counterfeit_cases", "counterfeit_closed")


def _function(guard: bool) -> str:
    cols = ", ".join(COUNTERS)
    sums = ", ".join(f"sum({c})" for c in COUNTERS)
    check = ("  IF NOT EXISTS (SELECT 1 FROM campaign_delta GROUP BY campaign_id, region_code HAVING count(*) > 1)"
             " THEN RETURN 0; END IF;\n") if guard else ""
    return f"""
CREATE OR REPLACE FUNCTION pqs_compact_campaign_deltas() RETURNS integer LANGUAGE plpgsql AS $$
DECLARE folded integer;
BEGIN
  IF NOT pg_try_advisory_xact_lock(7140021) THEN RETURN 0; END IF;
{check}  WITH gone AS (DELETE FROM campaign_delta RETURNING *)
  INSERT INTO campaign_delta (campaign_id, region_code, {cols})
  SELECT campaign_id, region_code, {sums} FROM gone GROUP BY campaign_id, region_code;
  GET DIAGNOSTICS folded = ROW_COUNT;
  RETURN folded;
END $$"""  # noqa: S608 - built from constants


def upgrade() -> None:
    op.execute(_function(guard=True))


def downgrade() -> None:
    op.execute(_function(guard=False))
