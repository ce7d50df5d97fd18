"""Periodic progress reports

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-28 21:00:00+00:00
"""
from collections.abc import Sequence

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "report",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("region_code", sa.String(length=6), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("period_start", sa.Date(), nullable=False),
        sa.Column("period_end", sa.Date(), nullable=False),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("figures", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("notes", sa.String(), nullable=True),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("submitted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("approved_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("returned_comment", sa.String(), nullable=True),
        sa.Column("created_by", sa.Uuid(), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("region_code", "period_end", "kind", name="uq_report_region_code_period_end_kind"),
    )
    op.execute("CREATE INDEX ix_report_region_prefix ON report (region_code varchar_pattern_ops)")
    op.create_index("ix_report_period_end", "report", ["period_end", "region_code"])
    # the period tallies read events and measures by region and time
    op.execute("CREATE INDEX ix_case_event_region_at ON case_event (region_code, at)")
    op.execute("CREATE INDEX ix_case_measure_region_created ON case_measure (region_code, created_at)")


def downgrade() -> None:
    op.execute("DROP INDEX IF EXISTS ix_case_measure_region_created")
    op.execute("DROP INDEX IF EXISTS ix_case_event_region_at")
    op.drop_table("report")
