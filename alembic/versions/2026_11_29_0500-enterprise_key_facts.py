"""The facts behind the key-enterprise flags, kept per enterprise, so a page of the enterprise list
reads its flags with its rows in one statement instead of five lookups per row

Revision ID: 0018
Revises: 0017
Create Date: 2026-11-29 05:00:00+00:00

* ``pqs_key_facts_live`` is the ONE definition of the facts, computed from the records.
* ``enterprise_key_facts`` holds its rows as they were at the last refresh.
* A change to a licence, an inspection, a case or a manual flag only appends the enterprise's id to
  ``key_facts_dirty`` (a trigger; no shared row is written, so concurrent writers never wait for each
  other). ``pqs_refresh_key_facts()`` (the background jobs, every few seconds; one at a time) takes the
  marks it can see, recomputes those enterprises from the view and removes the marks, in one statement.
* ``pqs_key_facts`` is what readers join: the kept row, or the live one while the enterprise is
  marked. A change is therefore visible at once, including to its own transaction.
* Bulk loads (``SET pqs.bulk_load = 'on'``) skip the trigger and call ``pqs_rebuild_key_facts()``.

What depends on the day (a licence that has expired since, the two-year window of spot checks) is
kept as dates and instants and decided when read.
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
          f" SELECT enterprise_id, {', '.join(COLUMNS)} FROM pqs_key_facts_live {{where}} ORDER BY enterprise_id"
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
CREATE TABLE key_facts_dirty (
  seq bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  enterprise_id uuid NOT NULL
)""")
    op.execute("CREATE INDEX ix_key_facts_dirty_enterprise_id ON key_facts_dirty (enterprise_id)")
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
    cols = ", ".join(("enterprise_id", *COLUMNS))
    # The live facts of one enterprise behind a function: a statement that joins pqs_key_facts plans a
    # function call, not the whole live view (its plan is made once per connection, here).
    op.execute(f"""
CREATE FUNCTION pqs_key_facts_live_of(eid uuid) RETURNS SETOF enterprise_key_facts LANGUAGE plpgsql STABLE AS $$
BEGIN
  RETURN QUERY SELECT {cols} FROM pqs_key_facts_live WHERE enterprise_id = eid;
END $$""")  # noqa: S608 - constant fragments
    # readers filter it by enterprise: the live branch starts from the marks (none, for most), so the
    # live facts are computed only for a marked enterprise
    op.execute(f"""
CREATE VIEW pqs_key_facts AS
SELECT {cols} FROM (SELECT DISTINCT enterprise_id AS marked FROM key_facts_dirty) d
CROSS JOIN LATERAL pqs_key_facts_live_of(d.marked) l
UNION ALL
SELECT {cols} FROM enterprise_key_facts f
WHERE NOT EXISTS (SELECT 1 FROM key_facts_dirty d WHERE d.enterprise_id = f.enterprise_id)""")  # noqa: S608
    # One refresher at a time (the jobs of every worker call it): of two running side by side, the one
    # with the older snapshot could write older facts over newer ones. The statement after the lock
    # has a newer snapshot than any refresh committed before it.
    op.execute(f"""
CREATE FUNCTION pqs_refresh_key_facts() RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
  n bigint;
BEGIN
  IF NOT pg_try_advisory_xact_lock(hashtext('pqs_refresh_key_facts')) THEN RETURN 0; END IF;
  WITH marks AS (DELETE FROM key_facts_dirty RETURNING enterprise_id),
  done AS ({UPSERT.format(where="WHERE enterprise_id IN (SELECT enterprise_id FROM marks)")} RETURNING 1)
  SELECT count(*) INTO n FROM done;
  RETURN n;
END $$""")  # noqa: S608 - constant fragments
    op.execute(f"""
CREATE FUNCTION pqs_rebuild_key_facts() RETURNS void LANGUAGE plpgsql AS $$
BEGIN
  DELETE FROM key_facts_dirty;
  {UPSERT.format(where="")};
END $$""")  # noqa: S608 - constant fragments
    op.execute("""
CREATE FUNCTION pqs_key_facts_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF pqs_bulk_loading() THEN RETURN NULL; END IF;
  IF TG_OP <> 'INSERT' THEN INSERT INTO key_facts_dirty (enterprise_id) VALUES (OLD.enterprise_id); END IF;
  IF TG_OP = 'INSERT' OR (TG_OP = 'UPDATE' AND NEW.enterprise_id IS DISTINCT FROM OLD.enterprise_id) THEN
    INSERT INTO key_facts_dirty (enterprise_id) VALUES (NEW.enterprise_id);
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
    op.execute("DROP FUNCTION pqs_refresh_key_facts()")
    op.execute("DROP VIEW pqs_key_facts")
    op.execute("DROP FUNCTION pqs_key_facts_live_of(uuid)")
    op.execute("DROP VIEW pqs_key_facts_live")
    op.execute("DROP TABLE key_facts_dirty")
    op.execute("DROP TABLE enterprise_key_facts")
