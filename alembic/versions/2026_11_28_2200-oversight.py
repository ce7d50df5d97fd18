"""Rectification plans, supervisions and acceptances

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-28 22:00:00+00:00
"""
from collections.abc import Sequence

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSONB = postgresql.JSONB(astext_type=sa.Text())


def _common() -> list[sa.Column]:
    return [sa.Column("created_by", sa.Uuid(), nullable=True),
            sa.Column("created_at", sa.DateTime(timezone=True), nullable=False)]


def upgrade() -> None:
    op.create_table(
        "rectification_plan",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("region_code", sa.String(length=6), nullable=False),
        sa.Column("campaign_id", sa.Uuid(), sa.ForeignKey("campaign.id"), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("lead_government", sa.String(length=200), nullable=False),
        sa.Column("responsible", JSONB, nullable=False),
        sa.Column("reported_to_government_on", sa.Date(), nullable=False),
        sa.Column("targets", JSONB, nullable=False),
        sa.Column("bureaus", JSONB, nullable=False),
        sa.Column("deadline", sa.Date(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("progress_notes", JSONB, nullable=False),
        *_common(),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "supervision",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("region_code", sa.String(length=6), nullable=False),
        sa.Column("supervising_bureau", sa.String(length=6), nullable=False),
        sa.Column("subject", sa.String(length=200), nullable=False),
        sa.Column("findings", JSONB, nullable=False),
        sa.Column("correction_deadline", sa.Date(), nullable=False),
        sa.Column("accountable", JSONB, nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("correction_report", sa.String(), nullable=True),
        sa.Column("corrected_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        *_common(),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "acceptance",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("campaign_id", sa.Uuid(), sa.ForeignKey("campaign.id"), nullable=False),
        sa.Column("region_code", sa.String(length=6), nullable=False),
        sa.Column("accepting_bureau", sa.String(length=6), nullable=False),
        sa.Column("verdict", sa.String(length=16), nullable=False),
        sa.Column("score", sa.Float(), nullable=True),
        sa.Column("findings", sa.String(), nullable=False),
        sa.Column("spot_checks", JSONB, nullable=True),
        sa.Column("figures", JSONB, nullable=False),
        sa.Column("accepted_on", sa.Date(), nullable=False),
        *_common(),
        sa.UniqueConstraint("campaign_id", "region_code", name="uq_acceptance_campaign_id_region_code"),
    )
    for table in ("rectification_plan", "supervision", "acceptance"):
        op.execute(f"CREATE INDEX ix_{table}_region_prefix ON {table} (region_code varchar_pattern_ops)")


def downgrade() -> None:
    for table in ("acceptance", "supervision", "rectification_plan"):
        op.drop_table(table)
