"""The facts behind each enterprise's computed key flags are kept in ``enterprise_key_facts``,
recomputed when a transaction that changed them commits, so the enterprise list reads them with its
page instead of querying five tables for every row

Revision ID: 0020
Revises: 0019
Create Date: 2026-11-29 07:00:00+00:00

* ``enterprise_key_facts_now`` (a view) is the one definition of the stored facts: the latest expiry
  of the valid licences, the latest inspection's conditions check, every spot check that failed a
  sample (when, how many: the two-year window moves, so the reader counts), the penalty cases, the
  complaints with issues found, the manual flags, and ``uniform`` (every one of those records lies in
  the enterprise's own region, so whoever may see the enterprise sees all of them).
* Marks: the campaign triggers (0009, 0018) already put an enterprise in ``campaign_dirty`` when it or
  its inspections are created, deleted or change kind, time, checks or samples. ``pqs_key_facts_mark``
  adds the other changes the facts depend on: licences, penalty cases, manual flags, and an
  inspection's conclusion or region.
* At commit ``pqs_campaign_flush`` (0018) now refreshes, for each marked enterprise in id order, its
  campaign contribution and then its facts (``pqs_refresh_key_facts``), so every transaction takes
  these row locks in one order. The refresh first locks the enterprise's facts row and only then
  reads the records, in a statement of its own: a concurrent transaction refreshing the same
  enterprise has committed by then, and its records are counted.
* ``pqs_rebuild_key_facts()`` recomputes every row (this migration, and after bulk loads, which skip
  the triggers).
"""
from collections.abc import Sequence

from alembic import op
from app.migrations import patch_function

revision: str = "0020"
down_revision: str | None = "0019"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

COLUMNS = ("uniform", "licence_until", "last_kind", "last_at", "last_ok", "last_note", "check_times",
           "check_samples", "cases", "last_case", "complaints", "last_complaint", "flags")

# the commit-time flush (0018) refreshes the kept facts right after the campaign contribution
FLUSH_PATCH = (("    PERFORM pqs_refresh_enterprise(eid);\n",
                "    PERFORM pqs_refresh_enterprise(eid);\n    PERFORM pqs_refresh_key_facts(eid);\n"),)

# table: (trigger name, the events that change the facts; inspection's other events are marked by
# its campaign trigger pqs_inspection_stats)
MARKED = {
    "license": ("pqs_license_key_facts", "INSERT OR DELETE OR UPDATE OF enterprise_id, region_code, status, expires_on"),
    "penalty_case": ("pqs_case_key_facts", "INSERT OR DELETE OR UPDATE OF enterprise_id, region_code, created_at"),
    "enterprise_key_flag": ("pqs_key_flag_key_facts", "INSERT OR DELETE OR UPDATE"),
    "inspection": ("pqs_inspection_key_facts", "UPDATE OF conclusion, region_code"),
}


def upgrade() -> None:
    op.execute("""
CREATE TABLE enterprise_key_facts (
  enterprise_id uuid NOT NULL,
  uniform boolean NOT NULL,
  licence_until date,
  last_kind text,
  last_at timestamptz,
  last_ok text,
  last_note text,
  check_times timestamptz[] NOT NULL,
  check_samples integer[] NOT NULL,
  cases bigint NOT NULL,
  last_case timestamptz,
  complaints bigint NOT NULL,
  last_complaint timestamptz,
  flags jsonb NOT NULL,
  CONSTRAINT pk_enterprise_key_facts PRIMARY KEY (enterprise_id),
  CONSTRAINT fk_enterprise_key_facts_enterprise_id_enterprise FOREIGN KEY (enterprise_id)
    REFERENCES enterprise (id) ON DELETE CASCADE
)""")
    op.execute("""
CREATE VIEW enterprise_key_facts_now AS
SELECT e.id AS enterprise_id,
       NOT (EXISTS (SELECT 1 FROM license l WHERE l.enterprise_id = e.id AND l.region_code <> e.region_code)
            OR EXISTS (SELECT 1 FROM inspection i WHERE i.enterprise_id = e.id AND i.region_code <> e.region_code)
            OR EXISTS (SELECT 1 FROM penalty_case c WHERE c.enterprise_id = e.id AND c.region_code <> e.region_code)
            OR EXISTS (SELECT 1 FROM enterprise_key_flag f
                       WHERE f.enterprise_id = e.id AND f.region_code <> e.region_code)) AS uniform,
       (SELECT max(l.expires_on) FROM license l WHERE l.enterprise_id = e.id AND l.status = 'valid') AS licence_until,
       lc.kind AS last_kind, lc.inspected_at AS last_at, lc.ok AS last_ok, lc.note AS last_note,
       coalesce(sc.times, '{}') AS check_times, coalesce(sc.samples, '{}') AS check_samples,
       pc.n AS cases, pc.last AS last_case, cp.n AS complaints, cp.last AS last_complaint, mf.flags
FROM enterprise e
LEFT JOIN LATERAL (
  SELECT i.kind::text AS kind, i.inspected_at, i.checks->'conditions_met'->>'ok' AS ok,
         i.checks->'conditions_met'->>'note' AS note
  FROM inspection i WHERE i.enterprise_id = e.id ORDER BY i.inspected_at DESC, i.id DESC LIMIT 1) lc ON true
LEFT JOIN LATERAL (
  SELECT array_agg(i.inspected_at ORDER BY i.inspected_at, i.id) AS times,
         array_agg(jsonb_array_length(jsonb_path_query_array(i.samples, '$[*] ? (@.passed == false)'))::int
                   ORDER BY i.inspected_at, i.id) AS samples
  FROM inspection i WHERE i.enterprise_id = e.id AND i.kind = 'spot_check'
   AND i.samples @> '[{"passed": false}]') sc ON true
LEFT JOIN LATERAL (
  SELECT count(*) AS n, max(c.created_at) AS last FROM penalty_case c WHERE c.enterprise_id = e.id) pc ON true
LEFT JOIN LATERAL (
  SELECT count(*) AS n, max(i.inspected_at) AS last FROM inspection i
  WHERE i.enterprise_id = e.id AND i.kind = 'complaint' AND i.conclusion = 'issues_found') cp ON true
LEFT JOIN LATERAL (
  SELECT coalesce(jsonb_agg(jsonb_build_array(f.criterion, f.reason) ORDER BY f.criterion), '[]') AS flags
  FROM enterprise_key_flag f WHERE f.enterprise_id = e.id) mf ON true""")
    cols = ", ".join(COLUMNS)  # constant column names
    op.execute(f"""
CREATE FUNCTION pqs_refresh_key_facts(eid uuid) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO enterprise_key_facts (enterprise_id, uniform, check_times, check_samples, cases, complaints, flags)
    SELECT id, true, '{{}}', '{{}}', 0, 0, '[]' FROM enterprise WHERE id = eid
    ON CONFLICT (enterprise_id) DO NOTHING;
  -- waits for a transaction refreshing the same enterprise to commit; the next statement sees its records
  PERFORM 1 FROM enterprise_key_facts WHERE enterprise_id = eid FOR UPDATE;
  IF NOT FOUND THEN RETURN; END IF;  -- the enterprise is gone (its row with it)
  UPDATE enterprise_key_facts k SET ({cols}) =
    (SELECT {cols} FROM enterprise_key_facts_now v WHERE v.enterprise_id = eid)
  WHERE k.enterprise_id = eid;
END $$""")  # noqa: S608 - constant column names
    op.execute(f"""
CREATE FUNCTION pqs_rebuild_key_facts() RETURNS void LANGUAGE plpgsql AS $$
BEGIN
  LOCK TABLE enterprise_key_facts IN EXCLUSIVE MODE;
  DELETE FROM enterprise_key_facts;
  INSERT INTO enterprise_key_facts (enterprise_id, {cols}) SELECT enterprise_id, {cols} FROM enterprise_key_facts_now;
END $$""")  # noqa: S608 - constant column names
    op.execute("""
CREATE FUNCTION pqs_key_facts_mark() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF pqs_bulk_loading() THEN RETURN NULL; END IF;
  IF TG_OP IN ('UPDATE', 'DELETE') THEN
    INSERT INTO campaign_dirty (enterprise_id) VALUES (OLD.enterprise_id);
  END IF;
  IF TG_OP = 'INSERT' OR (TG_OP = 'UPDATE' AND NEW.enterprise_id <> OLD.enterprise_id) THEN
    INSERT INTO campaign_dirty (enterprise_id) VALUES (NEW.enterprise_id);
  END IF;
  RETURN NULL;
END $$""")
    for table, (name, events) in MARKED.items():
        op.execute(f"CREATE TRIGGER {name} AFTER {events} ON {table} FOR EACH ROW EXECUTE FUNCTION pqs_key_facts_mark()")
    patch_function("pqs_campaign_flush()", FLUSH_PATCH, forward=True)
    op.execute("SELECT pqs_rebuild_key_facts()")


def downgrade() -> None:
    patch_function("pqs_campaign_flush()", FLUSH_PATCH, forward=False)
    for table, (name, _) in MARKED.items():
        op.execute(f"DROP TRIGGER {name} ON {table}")
    for fn in ("pqs_key_facts_mark()", "pqs_rebuild_key_facts()", "pqs_refresh_key_facts(uuid)"):
        op.execute(f"DROP FUNCTION {fn}")
    op.execute("DROP VIEW enterprise_key_facts_now")
    op.execute("DROP TABLE enterprise_key_facts")
