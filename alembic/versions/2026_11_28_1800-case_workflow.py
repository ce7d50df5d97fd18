"""Case workflow: measures, timeline, escalations, notifications, bad records

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-28 18:00:00+00:00
"""
from collections.abc import Sequence

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSONB = postgresql.JSONB(astext_type=sa.Text())


def _region() -> sa.Column:
    return sa.Column("region_code", sa.String(length=6), nullable=False)


def upgrade() -> None:
    op.add_column("penalty_case", sa.Column("bureau_code", sa.String(length=6), nullable=True))
    op.execute("UPDATE penalty_case SET bureau_code = region_code")
    op.alter_column("penalty_case", "bureau_code", nullable=False)
    for col in (
        sa.Column("source", sa.String(length=16), nullable=False, server_default="inspection"),
        sa.Column("facts", sa.String(), nullable=True),
        sa.Column("criminal_reason", sa.String(), nullable=True),
        sa.Column("goods_under_seal", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("premises_closed", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("decision", JSONB, nullable=True),
        sa.Column("awaiting_bureau", sa.String(length=6), nullable=True),
        sa.Column("transfer", JSONB, nullable=True),
        sa.Column("revocation_approval_seconds", sa.Float(), nullable=True),
        sa.Column("stage_entered_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.text("now()")),
        sa.Column("deadline", sa.DateTime(timezone=True), nullable=True),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
    ):
        op.add_column("penalty_case", col)
    # cases filed before this revision: their stage began when they were filed, with its time limit
    op.execute("UPDATE penalty_case SET stage_entered_at = created_at,"
               " deadline = CASE WHEN status = 'registered' THEN created_at + interval '7 days' END")
    op.execute("CREATE INDEX ix_penalty_case_region_created ON penalty_case (region_code, created_at DESC, id DESC)")
    op.execute("CREATE INDEX ix_penalty_case_created ON penalty_case (created_at DESC, id DESC)")
    op.create_index("ix_penalty_case_awaiting", "penalty_case", ["awaiting_bureau"],
                    postgresql_where=sa.text("awaiting_bureau IS NOT NULL"))
    op.create_index("ix_penalty_case_deadline", "penalty_case", ["deadline"],
                    postgresql_where=sa.text("deadline IS NOT NULL"))

    op.create_table(
        "case_measure",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("case_id", sa.Uuid(), sa.ForeignKey("penalty_case.id"), nullable=False),
        _region(),
        sa.Column("type", sa.String(length=32), nullable=False),
        sa.Column("items", JSONB, nullable=False),
        sa.Column("legal_basis", sa.String(), nullable=False),
        sa.Column("note", sa.String(), nullable=True),
        sa.Column("releases", sa.Uuid(), sa.ForeignKey("case_measure.id"), nullable=True),
        sa.Column("released_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_by", sa.Uuid(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_case_measure_case_id", "case_measure", ["case_id"])
    # goods under seal are listed until released: the open seals and seizures of a jurisdiction
    op.execute("CREATE INDEX ix_case_measure_open_goods ON case_measure (region_code varchar_pattern_ops, created_at)"
               " WHERE type IN ('seal_goods', 'seize_goods') AND released_at IS NULL")

    op.create_table(
        "case_event",
        sa.Column("id", sa.BigInteger(), primary_key=True, autoincrement=True),
        sa.Column("case_id", sa.Uuid(), sa.ForeignKey("penalty_case.id"), nullable=False),
        _region(),
        sa.Column("action", sa.String(length=32), nullable=False),
        sa.Column("from_status", sa.String(length=32), nullable=True),
        sa.Column("to_status", sa.String(length=32), nullable=False),
        sa.Column("actor_id", sa.Uuid(), nullable=True),
        sa.Column("actor", sa.String(length=128), nullable=False),
        sa.Column("actor_bureau", sa.String(length=6), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("detail", JSONB, nullable=False),
    )
    op.create_index("ix_case_event_timeline", "case_event", ["case_id", "id"])

    op.create_table(
        "case_escalation",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("case_id", sa.Uuid(), sa.ForeignKey("penalty_case.id"), nullable=False),
        _region(),
        sa.Column("from_bureau", sa.String(length=6), nullable=False),
        sa.Column("to_bureau", sa.String(length=6), nullable=False),
        sa.Column("question", sa.String(), nullable=False),
        sa.Column("asked_by", sa.Uuid(), nullable=True),
        sa.Column("asked_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("answer", sa.String(), nullable=True),
        sa.Column("answered_by", sa.Uuid(), nullable=True),
        sa.Column("answered_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_index("ix_case_escalation_case_id", "case_escalation", ["case_id"])
    op.create_index("ix_case_escalation_to_bureau", "case_escalation", ["to_bureau"],
                    postgresql_where=sa.text("answered_at IS NULL"))

    op.create_table(
        "notification",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("case_id", sa.Uuid(), sa.ForeignKey("penalty_case.id"), nullable=True),
        _region(),
        sa.Column("recipient", sa.String(length=32), nullable=False),
        sa.Column("recipient_name", sa.String(length=200), nullable=True),
        sa.Column("subject", sa.String(length=200), nullable=False),
        sa.Column("content", sa.String(), nullable=False),
        sa.Column("automatic", sa.Boolean(), nullable=False),
        sa.Column("event_id", sa.BigInteger(), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("created_by", sa.Uuid(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("delivered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("receipt_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("receipt_by", sa.String(length=128), nullable=True),
        sa.Column("receipt_measures", sa.String(), nullable=True),
    )
    op.create_index("ix_notification_case_id", "notification", ["case_id"])
    op.execute("CREATE INDEX ix_notification_region_created ON notification (region_code, created_at DESC, id DESC)")

    op.create_table(
        "bad_record",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("enterprise_id", sa.Uuid(), sa.ForeignKey("enterprise.id"), nullable=False),
        sa.Column("case_id", sa.Uuid(), sa.ForeignKey("penalty_case.id"), nullable=False),
        _region(),
        sa.Column("enterprise_name", sa.String(length=200), nullable=False),
        sa.Column("uscc", sa.String(length=18), nullable=False),
        sa.Column("violation", sa.String(length=32), nullable=False),
        sa.Column("penalties", JSONB, nullable=False),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("published", sa.Boolean(), nullable=False),
        sa.Column("published_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("case_id", name="uq_bad_record_case_id"),
    )
    op.create_index("ix_bad_record_enterprise_id", "bad_record", ["enterprise_id"])
    op.execute("CREATE INDEX ix_bad_record_published ON bad_record (published_at DESC, id DESC) WHERE published")

    op.add_column("service_account", sa.Column("agency", sa.String(length=32), nullable=True))
    op.create_table(
        "webhook_subscription",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("service_account_id", sa.Uuid(), sa.ForeignKey("service_account.id"), nullable=False),
        _region(),
        sa.Column("url", sa.String(length=2000), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_webhook_subscription_service_account_id", "webhook_subscription", ["service_account_id"])
    op.create_table(
        "webhook_delivery",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("notification_id", sa.Uuid(), sa.ForeignKey("notification.id"), nullable=False),
        sa.Column("subscription_id", sa.Uuid(), sa.ForeignKey("webhook_subscription.id"), nullable=False),
        _region(),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_error", sa.String(length=500), nullable=True),
        sa.Column("delivered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_webhook_delivery_notification_id", "webhook_delivery", ["notification_id"])
    op.create_index("ix_webhook_delivery_subscription_id", "webhook_delivery", ["subscription_id"])
    # the worker's queue: due pending deliveries
    op.create_index("ix_webhook_delivery_due", "webhook_delivery", ["next_attempt_at"],
                    postgresql_where=sa.text("status = 'pending'"))
    for table in ("case_measure", "case_event", "case_escalation", "notification", "bad_record",
                  "webhook_subscription", "webhook_delivery"):
        op.execute(f"CREATE INDEX ix_{table}_region_prefix ON {table} (region_code varchar_pattern_ops)")


def downgrade() -> None:
    for table in ("webhook_delivery", "webhook_subscription", "bad_record", "notification", "case_escalation",
                  "case_event", "case_measure"):
        op.drop_table(table)
    op.drop_column("service_account", "agency")
    for ix in ("ix_penalty_case_region_created", "ix_penalty_case_created", "ix_penalty_case_awaiting",
               "ix_penalty_case_deadline"):
        op.execute(f"DROP INDEX IF EXISTS {ix}")
    for name in ("bureau_code", "source", "facts", "criminal_reason", "goods_under_seal", "premises_closed", "decision",
                 "awaiting_bureau", "transfer", "revocation_approval_seconds", "stage_entered_at", "deadline",
                 "closed_at"):
        op.drop_column("penalty_case", name)
