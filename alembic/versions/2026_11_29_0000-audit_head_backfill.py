"""Anchor the audit chain head at the newest sealed row when a database sealed rows before the head
table existed (revision 0005 created it empty; the sealer continues from the head, so such a database
could seal nothing more: seq 1 was taken)

Revision ID: 0013
Revises: 0012
Create Date: 2026-11-29 00:00:00+00:00
"""
from collections.abc import Sequence

from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute("""
        INSERT INTO audit_chain_head (id, seq, chain_hash, sealed_at)
        SELECT 1, seq, chain_hash, now() FROM audit_event WHERE seq IS NOT NULL ORDER BY seq DESC LIMIT 1
        ON CONFLICT (id) DO NOTHING""")


def downgrade() -> None:
    pass  # the anchor stays: removing it would make the sealer restart the chain at seq 1
