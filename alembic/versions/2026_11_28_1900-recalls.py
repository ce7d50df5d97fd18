"""Recalls and their progress reports

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-28 19:00:00+00:00
"""
from collections.abc import Sequence

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSONB = postgresql.JSONB(astext_type=sa.Text())


def upgrade() -> None:
    op.create_table(
        "recall",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("enterprise_id", sa.Uuid(), sa.ForeignKey("enterprise.id"), nullable=False),
        sa.Column("case_id", sa.Uuid(), sa.ForeignKey("penalty_case.id"), nullable=True),
        sa.Column("inspection_id", sa.Uuid(), sa.ForeignKey("inspection.id"), nullable=True),
        sa.Column("region_code", sa.String(length=6), nullable=False),
        sa.Column("product", sa.String(length=200), nullable=False),
        sa.Column("batches", postgresql.ARRAY(sa.String(length=100)), nullable=False),
        sa.Column("hazard", sa.String(), nullable=False),
        sa.Column("mode", sa.String(length=32), nullable=False),
        sa.Column("units_made", sa.BigInteger(), nullable=False),
        sa.Column("units_sold", sa.BigInteger(), nullable=False),
        sa.Column("distribution", JSONB, nullable=False),
        sa.Column("units_recalled", sa.BigInteger(), nullable=False),
        sa.Column("deadline", sa.Date(), nullable=False),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("cancel_reason", sa.String(), nullable=True),
        sa.Column("completed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_by", sa.Uuid(), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        # the rule of the recall target: never more recalled than sold, never more sold than made
        sa.CheckConstraint("units_recalled >= 0 AND units_recalled <= units_sold AND units_sold <= units_made",
                           name="ck_recall_units"),
    )
    op.create_index("ix_recall_enterprise_id", "recall", ["enterprise_id"])
    op.execute("CREATE INDEX ix_recall_region_created ON recall (region_code, created_at DESC, id DESC)")
    op.execute("CREATE INDEX ix_recall_created ON recall (created_at DESC, id DESC)")
    op.execute("CREATE INDEX ix_recall_region_prefix ON recall (region_code varchar_pattern_ops)")
    op.create_index("ix_recall_open_deadline", "recall", ["deadline"], postgresql_where=sa.text("status = 'open'"))
    op.create_table(
        "recall_progress",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("recall_id", sa.Uuid(), sa.ForeignKey("recall.id"), nullable=False),
        sa.Column("region_code", sa.String(length=6), nullable=False),
        sa.Column("units_recalled", sa.BigInteger(), nullable=False),
        sa.Column("as_of", sa.Date(), nullable=False),
        sa.Column("note", sa.String(), nullable=True),
        sa.Column("sold_region", sa.String(length=6), nullable=True),
        sa.Column("batch", sa.String(length=100), nullable=True),
        sa.Column("created_by", sa.Uuid(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("units_recalled > 0", name="ck_recall_progress_positive"),
    )
    op.create_index("ix_recall_progress_recall_id", "recall_progress", ["recall_id"])
    op.execute("CREATE INDEX ix_recall_progress_region_prefix ON recall_progress (region_code varchar_pattern_ops)")


def downgrade() -> None:
    op.drop_table("recall_progress")
    op.drop_table("recall")
