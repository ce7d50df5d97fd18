"""The facts behind the key-enterprise flags, kept per enterprise by triggers, so a page of the
enterprise list reads its flags with its rows in one statement instead of five lookups per row

Revision ID: 0018
Revises: 0017
Create Date: 2026-11-29 05:00:00+00:00

``pqs_key_facts_live`` is the ONE definition of the facts, computed from the records;
``enterprise_key_facts`` holds its rows. A trigger on every table the facts read (licences,
inspections, penalty cases, manual flags) refreshes the enterprise's row from the view; bulk loads
(``SET pqs.bulk_load = 'on'``) skip the triggers and call ``pqs_rebuild_key_facts()`` once at the end.
The refresh locks the enterprise's facts row before it reads, so of two concurrent changes to one
enterprise the second reads what the first committed. What depends on the day (a licence that has
expired since, the two-year window of spot checks) is kept as dates and instants and decided when read.
"""
from collections.abc import Sequence

from alembic import op

revision: str = "0018"
down_revision: str | None = "0017"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLES = ("license", "inspection", "penalty_case", "enterprise_key_flag")
COLUMNS = ("licence_valid_until", "latest_kind", "latest_inspected_at", "latest_conditions_ok",
           "latest_conditions_note", "failed_spot_checks", "cases", "last_case", "complaints", "last_complaint",
           "manual_flags")
UPSERT = (f"INSERT INTO enterprise_key_facts (enterprise_id, {', '.join(COLUMNS)})"  # noqa: S608 - constants
          f" SELECT enterprise_id, {', '.join(COLUMNS)} FROM pqs_key_facts_live {{where}}"
          f" ON CONFLICT (enterprise_id) DO UPDATE SET {', '.join(f'{c} = EXCLUDED.{c}' for c in COLUMNS)}")


def upgrade() -> None:
    op.execute("""
CREATE TABLE enterprise_key_facts (
  enterprise_id uuid PRIMARY KEY REFERENCES enterprise (id) ON DELETE CASCADE,
  licence_valid_until date,
  latest_kind text,
  latest_inspected_at timestamptz,
  latest_conditions_ok text,
  latest_conditions_note text,
  failed_spot_checks jsonb NOT NULL DEFAULT '[]',
  cases integer NOT NULL DEFAULT 0,
  last_case timestamptz,
  complaints integer NOT NULL DEFAULT 0,
  last_complaint timestamptz,
  manual_flags jsonb NOT NULL DEFAULT '[]'
)""")
    op.execute("""
CREATE VIEW pqs_key_facts_live AS
SELECT e.id AS enterprise_id,
       (SELECT max(l.expires_on) FROM license l WHERE l.enterprise_id = e.id AND l.status = 'valid')
         AS licence_valid_until,
       lc.kind AS latest_kind, lc.inspected_at AS latest_inspected_at, lc.ok AS latest_conditions_ok,
       lc.note AS latest_conditions_note,
       coalesce((SELECT jsonb_agg(jsonb_build_array(
                          extract(epoch FROM i.inspected_at),
                          jsonb_array_length(jsonb_path_query_array(i.samples, '$[*] ? (@.passed == false)')))
                        ORDER BY i.inspected_at, i.id)
                 FROM inspection i WHERE i.enterprise_id = e.id AND i.kind = 'spot_check'
                  AND i.samples @> '[{"passed": false}]'), '[]') AS failed_spot_checks,
       pc.n::integer AS cases, pc.last AS last_case, cp.n::integer AS complaints, cp.last AS last_complaint,
       coalesce((SELECT jsonb_agg(jsonb_build_array(f.criterion, f.reason) ORDER BY f.criterion)
                 FROM enterprise_key_flag f WHERE f.enterprise_id = e.id), '[]') AS manual_flags
FROM enterprise e
LEFT JOIN LATERAL (
  SELECT i.kind::text AS kind, i.inspected_at, i.checks->'conditions_met'->>'ok' AS ok,
         i.checks->'conditions_met'->>'note' AS note
  FROM inspection i WHERE i.enterprise_id = e.id ORDER BY i.inspected_at DESC, i.id DESC LIMIT 1) lc ON true
LEFT JOIN LATERAL (
  SELECT count(*) AS n, max(c.created_at) AS last FROM penalty_case c WHERE c.enterprise_id = e.id) pc ON true
LEFT JOIN LATERAL (
  SELECT count(*) AS n, max(i.inspected_at) AS last FROM inspection i
  WHERE i.enterprise_id = e.id AND i.kind = 'complaint' AND i.conclusion = 'issues_found') cp ON true""")
    op.execute(f"""
CREATE FUNCTION pqs_refresh_key_facts(eid uuid) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
  -- the row exists and is locked before the facts are read (a later statement, a later snapshot)
  INSERT INTO enterprise_key_facts (enterprise_id) SELECT id FROM enterprise WHERE id = eid
    ON CONFLICT (enterprise_id) DO NOTHING;
  PERFORM 1 FROM enterprise_key_facts WHERE enterprise_id = eid FOR UPDATE;
  IF NOT FOUND THEN RETURN; END IF;  -- the enterprise is gone
  {UPSERT.format(where="WHERE enterprise_id = eid")};
END $$""")  # noqa: S608 - constant fragments
    op.execute(f"""
CREATE FUNCTION pqs_rebuild_key_facts() RETURNS void LANGUAGE plpgsql AS $$
BEGIN
  {UPSERT.format(where="")};
END $$""")
    op.execute("""
CREATE FUNCTION pqs_key_facts_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF pqs_bulk_loading() THEN RETURN NULL; END IF;
  IF TG_OP <> 'INSERT' THEN PERFORM pqs_refresh_key_facts(OLD.enterprise_id); END IF;
  IF TG_OP <> 'DELETE' AND (TG_OP = 'INSERT' OR NEW.enterprise_id IS DISTINCT FROM OLD.enterprise_id) THEN
    PERFORM pqs_refresh_key_facts(NEW.enterprise_id);
  END IF;
  RETURN NULL;
END $$""")
    for table in TABLES:
        op.execute(f"CREATE TRIGGER pqs_key_facts AFTER INSERT OR UPDATE OR DELETE ON {table}"
                   " FOR EACH ROW EXECUTE FUNCTION pqs_key_facts_changed()")
    op.execute("SELECT pqs_rebuild_key_facts()")


def downgrade() -> None:
    for table in TABLES:
        op.execute(f"DROP TRIGGER pqs_key_facts ON {table}")
    op.execute("DROP FUNCTION pqs_key_facts_changed()")
    op.execute("DROP FUNCTION pqs_rebuild_key_facts()")
    op.execute("DROP FUNCTION pqs_refresh_key_facts(uuid)")
    op.execute("DROP VIEW pqs_key_facts_live")
    op.execute("DROP TABLE enterprise_key_facts")
