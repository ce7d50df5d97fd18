"""focus lists: key_region designations; licence list indexes

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-28 21:10:00.000000+00:00
"""
from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from sqlalchemy.dialects import postgresql

from alembic import op

revision: str = '0004'
down_revision: str | None = '0003'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('key_region',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('region_code', sqlmodel.sql.sqltypes.AutoString(length=6), nullable=False),
    sa.Column('criteria', postgresql.ARRAY(sa.String(length=32)), nullable=False),
    sa.Column('reason', sqlmodel.sql.sqltypes.AutoString(length=1000), nullable=False),
    sa.Column('designated_by', sqlmodel.sql.sqltypes.AutoString(length=6), nullable=False),
    sa.Column('designated_by_level', sa.Enum('national', 'provincial', 'city', 'county', name='level', native_enum=False, length=32), nullable=False),
    sa.Column('designated_by_user', sa.Uuid(), nullable=True),
    sa.Column('indicators', postgresql.JSONB(astext_type=sa.Text()), server_default='[]', nullable=False),
    sa.Column('designated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['region_code'], ['region.code'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('region_code', 'designated_by')
    )
    # The jurisdiction filter is a LIKE prefix (pattern ops); lists are newest first.
    op.execute("CREATE INDEX ix_key_region_region_prefix ON key_region (region_code varchar_pattern_ops)")
    op.execute("CREATE INDEX ix_license_region_created ON license (region_code, created_at DESC, id DESC)")
    op.execute("CREATE INDEX ix_license_created ON license (created_at DESC, id DESC)")


def downgrade() -> None:
    for ix in ("ix_license_created", "ix_license_region_created", "ix_key_region_region_prefix"):
        op.execute(f"DROP INDEX IF EXISTS {ix}")
    op.drop_table('key_region')
