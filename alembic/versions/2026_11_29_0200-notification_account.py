"""A 通报 may address one agency system (a service account) rather than every client of that agency

Revision ID: 0015
Revises: 0014
Create Date: 2026-11-29 02:00:00+00:00
"""
from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("notification", sa.Column("recipient_account", sa.Uuid(), nullable=True))
    op.create_foreign_key("fk_notification_recipient_account_service_account", "notification", "service_account",
                          ["recipient_account"], ["id"])


def downgrade() -> None:
    op.drop_constraint("fk_notification_recipient_account_service_account", "notification", type_="foreignkey")
    op.drop_column("notification", "recipient_account")
