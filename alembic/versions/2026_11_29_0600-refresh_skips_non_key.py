"""Campaign contributions: an enterprise outside the campaign's key categories counts for nothing, so
its inspections are not read to recompute it

``pqs_refresh_enterprise`` aggregated every inspection of the enterprise (sample counts through jsonb
paths) before multiplying the result by ``k`` (in a key category): the two LATERAL reads now carry
``kk.k``, which PostgreSQL tests once before scanning. The figures are unchanged (each is zero when
``k`` is false); the function is patched from its current definition (pg_get_functiondef), so this
revision changes exactly those lines.

Revision ID: 0019
Revises: 0018
Create Date: 2026-11-29 06:00:00+00:00
"""
from collections.abc import Sequence

from app.migrations import patch_function

revision: str = "0019"
down_revision: str | None = "0018"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SIGNATURE = "pqs_refresh_enterprise(uuid)"
PATCHES = (
    ("FROM inspection i WHERE i.enterprise_id = eid HAVING count(*) > 0) s ON true",
     "FROM inspection i WHERE kk.k AND i.enterprise_id = eid HAVING count(*) > 0) s ON true"),
    ("WHERE i.enterprise_id = eid ORDER BY i.inspected_at DESC, i.id DESC LIMIT 1) l ON true",
     "WHERE kk.k AND i.enterprise_id = eid ORDER BY i.inspected_at DESC, i.id DESC LIMIT 1) l ON true"),
)


def upgrade() -> None:
    patch_function(SIGNATURE, PATCHES, forward=True)


def downgrade() -> None:
    patch_function(SIGNATURE, PATCHES, forward=False)
