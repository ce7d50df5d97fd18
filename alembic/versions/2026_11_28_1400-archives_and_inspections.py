"""archives and inspections

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-28 20:03:45.174095+00:00
"""
from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from sqlalchemy.dialects import postgresql

from alembic import op

revision: str = '0003'
down_revision: str | None = '0002'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    op.create_table('enterprise',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('uscc', sqlmodel.sql.sqltypes.AutoString(length=18), nullable=False),
    sa.Column('uscc_check_override', sqlmodel.sql.sqltypes.AutoString(length=500), nullable=True),
    sa.Column('name', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('legal_representative', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=True),
    sa.Column('address', sqlmodel.sql.sqltypes.AutoString(length=300), nullable=True),
    sa.Column('region_code', sqlmodel.sql.sqltypes.AutoString(length=6), nullable=False),
    sa.Column('size', sa.Enum('large', 'medium', 'small', name='enterprisesize', native_enum=False, length=32), nullable=False),
    sa.Column('category_codes', postgresql.ARRAY(sa.String(length=16)), server_default='{}', nullable=False),
    sa.Column('licensed', sa.Boolean(), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['region_code'], ['region.code'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('uscc')
    )
    op.create_table('enterprise_key_flag',
    sa.Column('enterprise_id', sa.Uuid(), nullable=False),
    sa.Column('criterion', sa.Enum('unlicensed', 'lowered_conditions', 'spot_check_problems', 'past_violations', name='keycriterion', native_enum=False, length=32), nullable=False),
    sa.Column('region_code', sqlmodel.sql.sqltypes.AutoString(length=6), nullable=False),
    sa.Column('reason', sqlmodel.sql.sqltypes.AutoString(length=500), nullable=False),
    sa.Column('set_by', sa.Uuid(), nullable=True),
    sa.Column('set_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['enterprise_id'], ['enterprise.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('enterprise_id', 'criterion')
    )
    op.create_table('inspection',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('enterprise_id', sa.Uuid(), nullable=False),
    sa.Column('region_code', sqlmodel.sql.sqltypes.AutoString(length=6), nullable=False),
    sa.Column('kind', sa.Enum('sweep', 'routine', 'annual_review', 'complaint', 'spot_check', name='inspectionkind', native_enum=False, length=32), nullable=False),
    sa.Column('inspected_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('officers', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    sa.Column('location', postgresql.JSONB(astext_type=sa.Text()), nullable=True),
    sa.Column('checks', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    sa.Column('samples', postgresql.JSONB(astext_type=sa.Text()), server_default='[]', nullable=False),
    sa.Column('conclusion', sa.Enum('compliant', 'issues_found', name='conclusion', native_enum=False, length=32), nullable=False),
    sa.Column('notes', sqlmodel.sql.sqltypes.AutoString(length=5000), nullable=True),
    sa.Column('case_id', sa.Uuid(), nullable=True),
    sa.Column('body_hash', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('created_by', sa.Uuid(), nullable=True),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['enterprise_id'], ['enterprise.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_table('license',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('number', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('enterprise_id', sa.Uuid(), nullable=False),
    sa.Column('region_code', sqlmodel.sql.sqltypes.AutoString(length=6), nullable=False),
    sa.Column('category_code', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('issued_on', sa.Date(), nullable=False),
    sa.Column('expires_on', sa.Date(), nullable=False),
    sa.Column('issuer_level', sa.Enum('national', 'provincial', 'city', 'county', name='level', native_enum=False, length=32), nullable=False),
    sa.Column('status', sa.Enum('valid', 'suspended', 'revoked', 'expired', 'cancelled', name='licensestatus', native_enum=False, length=32), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['category_code'], ['product_category.code'], ),
    sa.ForeignKeyConstraint(['enterprise_id'], ['enterprise.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('number')
    )
    op.create_index(op.f('ix_license_enterprise_id'), 'license', ['enterprise_id'], unique=False)
    op.create_table('attachment',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('inspection_id', sa.Uuid(), nullable=False),
    sa.Column('region_code', sqlmodel.sql.sqltypes.AutoString(length=6), nullable=False),
    sa.Column('filename', sqlmodel.sql.sqltypes.AutoString(length=255), nullable=False),
    sa.Column('content_type', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
    sa.Column('size_bytes', sa.BigInteger(), nullable=False),
    sa.Column('sha256', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('storage_key', sqlmodel.sql.sqltypes.AutoString(length=255), nullable=False),
    sa.Column('created_by', sa.Uuid(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['inspection_id'], ['inspection.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index(op.f('ix_attachment_inspection_id'), 'attachment', ['inspection_id'], unique=False)
    op.create_table('penalty_case',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('enterprise_id', sa.Uuid(), nullable=False),
    sa.Column('inspection_id', sa.Uuid(), nullable=True),
    sa.Column('region_code', sqlmodel.sql.sqltypes.AutoString(length=6), nullable=False),
    sa.Column('kind', sa.Enum('unlicensed_production', 'nonconforming_products', 'lowered_conditions', 'irregular_production', 'unrecalled_hazard', 'counterfeit', 'other', name='casekind', native_enum=False, length=32), nullable=False),
    sa.Column('status', sa.Enum('registered', 'investigating', 'pending_approval', 'decided', 'closed', 'transferred', name='casestatus', native_enum=False, length=32), nullable=False),
    sa.Column('possibly_criminal', sa.Boolean(), nullable=False),
    sa.Column('created_by', sa.Uuid(), nullable=True),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['enterprise_id'], ['enterprise.id'], ),
    sa.ForeignKeyConstraint(['inspection_id'], ['inspection.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index(op.f('ix_penalty_case_enterprise_id'), 'penalty_case', ['enterprise_id'], unique=False)

    # Lists are newest first inside a region; the jurisdiction filter is a LIKE prefix (pattern ops).
    for table in ("enterprise", "license", "inspection", "attachment", "penalty_case", "enterprise_key_flag"):
        op.execute(f"CREATE INDEX ix_{table}_region_prefix ON {table} (region_code varchar_pattern_ops)")
    op.execute("CREATE INDEX ix_enterprise_region_created ON enterprise (region_code, created_at DESC, id DESC)")
    op.execute("CREATE INDEX ix_enterprise_created ON enterprise (created_at DESC, id DESC)")
    op.execute("CREATE INDEX ix_enterprise_name_trgm ON enterprise USING gin (name gin_trgm_ops)")
    op.execute("CREATE INDEX ix_enterprise_uscc_trgm ON enterprise USING gin (uscc gin_trgm_ops)")
    op.execute("CREATE INDEX ix_enterprise_categories ON enterprise USING gin (category_codes)")
    op.execute("CREATE INDEX ix_inspection_enterprise ON inspection (enterprise_id, inspected_at DESC)")
    op.execute("CREATE INDEX ix_inspection_region_time ON inspection (region_code, inspected_at DESC, id DESC)")
    op.execute("CREATE INDEX ix_inspection_time ON inspection (inspected_at DESC, id DESC)")
    op.create_index("ix_license_expiry", "license", ["expires_on"], postgresql_where=sa.text("status = 'valid'"))
    op.create_index("ix_penalty_case_inspection", "penalty_case", ["inspection_id"])


def downgrade() -> None:
    for table in ("enterprise", "license", "inspection", "attachment", "penalty_case", "enterprise_key_flag"):
        op.execute(f"DROP INDEX IF EXISTS ix_{table}_region_prefix")
    for ix in ("ix_enterprise_region_created", "ix_enterprise_created", "ix_enterprise_name_trgm",
               "ix_enterprise_uscc_trgm", "ix_enterprise_categories", "ix_inspection_enterprise",
               "ix_inspection_region_time", "ix_inspection_time", "ix_license_expiry", "ix_penalty_case_inspection"):
        op.execute(f"DROP INDEX IF EXISTS {ix}")
    op.drop_index(op.f('ix_penalty_case_enterprise_id'), table_name='penalty_case')
    op.drop_table('penalty_case')
    op.drop_index(op.f('ix_attachment_inspection_id'), table_name='attachment')
    op.drop_table('attachment')
    op.drop_index(op.f('ix_license_enterprise_id'), table_name='license')
    op.drop_table('license')
    op.drop_table('inspection')
    op.drop_table('enterprise_key_flag')
    op.drop_table('enterprise')
    op.execute("DROP EXTENSION IF EXISTS pg_trgm")
