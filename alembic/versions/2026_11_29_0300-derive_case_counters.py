"""Goods under seal and closed premises are derived from the measures in force, not kept as counters

Revision ID: 0016
Revises: 0015
Create Date: 2026-11-29 03:00:00+00:00
"""
from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.drop_column("penalty_case", "goods_under_seal")
    op.drop_column("penalty_case", "premises_closed")


def downgrade() -> None:
    for name, types in (("goods_under_seal", "('seal_goods', 'seize_goods')"), ("premises_closed", "('close_premises')")):
        op.add_column("penalty_case", sa.Column(name, sa.Integer(), nullable=False, server_default="0"))
        in_force = f"m.case_id = c.id AND m.released_at IS NULL AND m.type IN {types}"
        op.execute(f"UPDATE penalty_case c SET {name} = (SELECT count(*) FROM case_measure m WHERE {in_force})")  # noqa: S608
