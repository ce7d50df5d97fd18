"""A partial index of the inspections the key flags count (spot checks and complaints) per enterprise

Revision ID: 0021
Revises: 0020
Create Date: 2026-11-29 08:00:00+00:00

The failed spot checks and the complaints with issues found of an enterprise were read through
``ix_inspection_enterprise`` together with all its other inspections: an enterprise with 700 routine
inspections took 18 ms to refresh its kept key facts (migration 0020) at every commit that touched it,
and as long to compute its flags from the records. This index holds only the two kinds those
criteria count, which are a small part of the inspections.
"""
from collections.abc import Sequence

from alembic import op

revision: str = "0021"
down_revision: str | None = "0020"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute("CREATE INDEX ix_inspection_enterprise_flagging ON inspection (enterprise_id, inspected_at)"
               " WHERE kind IN ('spot_check', 'complaint')")


def downgrade() -> None:
    op.execute("DROP INDEX ix_inspection_enterprise_flagging")
