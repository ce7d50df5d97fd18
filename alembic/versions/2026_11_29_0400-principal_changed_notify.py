"""Announce changes to principals (users, service accounts, revoked access tokens) with NOTIFY, so
each worker's principal cache (app/principals.py) empties itself when one happens

Revision ID: 0017
Revises: 0016
Create Date: 2026-11-29 04:00:00+00:00
"""
from collections.abc import Sequence

from alembic import op

revision: str = "0017"
down_revision: str | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLES = ("app_user", "service_account", "revoked_access_token")


def upgrade() -> None:
    # Per row, so a statement that changes nothing (the job deleting expired revocations every few
    # seconds) announces nothing; NOTIFY is sent at commit (never for a rolled-back transaction) and
    # equal notifications of one transaction fold into one. TRUNCATE has only a statement trigger.
    op.execute("""
CREATE FUNCTION pqs_principal_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_notify('principal_changed', TG_TABLE_NAME);
  RETURN NULL;
END $$""")
    for table in TABLES:
        op.execute(f"CREATE TRIGGER pqs_principal_changed AFTER INSERT OR UPDATE OR DELETE ON {table}"
                   " FOR EACH ROW EXECUTE FUNCTION pqs_principal_changed()")
        op.execute(f"CREATE TRIGGER pqs_principal_truncated AFTER TRUNCATE ON {table}"
                   " FOR EACH STATEMENT EXECUTE FUNCTION pqs_principal_changed()")


def downgrade() -> None:
    for table in TABLES:
        op.execute(f"DROP TRIGGER pqs_principal_truncated ON {table}")
        op.execute(f"DROP TRIGGER pqs_principal_changed ON {table}")
    op.execute("DROP FUNCTION pqs_principal_changed()")
