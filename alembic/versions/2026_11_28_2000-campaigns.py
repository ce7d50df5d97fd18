"""Campaigns, their targets and the live dashboard's summary tables

The dashboard reads per-county counters, never the million-row tables. They are kept current by
triggers in the writing transaction itself, whatever code path writes (API, jobs, COPY):

* ``campaign_enterprise``: per campaign and enterprise, its current contribution to the counters
  (a key producer? archived? inspected in the campaign? licensed? conditions met at the latest check?
  spot-check samples and passes). ``pqs_refresh_enterprise(id)`` recomputes it from the enterprise's
  own rows (a handful) when an inspection or the enterprise changes, and appends the difference;
* ``campaign_delta``: append-only differences per campaign and county (no hot row to queue on);
  cases and recalls append theirs straight from OLD/NEW. A background job folds the rows into one
  per campaign and county (``pqs_compact_campaign_deltas``), so a dashboard sums a few thousand rows.

Bulk loads (demo, the large benchmark set) set ``pqs.bulk_load = on`` to skip the row triggers and
call ``pqs_rebuild_campaign`` once at the end, which recomputes everything set-based.

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-28 20:00:00+00:00
"""
import re
from collections.abc import Sequence

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

COUNTERS = ("key_producers", "archived", "inspected", "licensed", "compliant", "samples", "passed",
            "samples_large", "passed_large", "recall_sold", "recall_recalled", "unlicensed_cases",
            "unlicensed_resolved", "counterfeit_cases", "counterfeit_closed")
ENTERPRISE_COUNTERS = COUNTERS[:9]

FUNCTIONS = r"""
CREATE FUNCTION pqs_bulk_loading() RETURNS boolean LANGUAGE sql STABLE AS
$$ SELECT coalesce(current_setting('pqs.bulk_load', true), '') = 'on' $$;

-- the campaign period as instants (China Standard Time days, the end day included)
CREATE FUNCTION pqs_in_campaign(c campaign, at timestamptz) RETURNS boolean LANGUAGE sql IMMUTABLE AS
$$ SELECT at >= (c.starts_on::timestamp AT TIME ZONE 'Asia/Shanghai')
          AND (c.ends_on IS NULL OR at < ((c.ends_on + 1)::timestamp AT TIME ZONE 'Asia/Shanghai')) $$;

CREATE FUNCTION pqs_refresh_enterprise(eid uuid) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
  c campaign;
  n campaign_enterprise;
  o campaign_enterprise;
  e record;
  found_e boolean;
BEGIN
  SELECT region_code, category_codes, size, licensed INTO e FROM enterprise WHERE id = eid;
  found_e := FOUND;
  FOR c IN SELECT * FROM campaign LOOP
    SELECT * INTO o FROM campaign_enterprise WHERE campaign_id = c.id AND enterprise_id = eid FOR UPDATE;
    IF NOT found_e THEN
      n := NULL;
    ELSE
      SELECT c.id, eid, e.region_code,
             k::int,
             (k AND coalesce(s.any_insp, false))::int,
             (k AND coalesce(s.in_campaign, false))::int,
             (k AND e.licensed)::int,
             (k AND e.licensed AND coalesce(l.ok, false))::int,
             CASE WHEN k AND e.licensed THEN coalesce(s.samples, 0) ELSE 0 END,
             CASE WHEN k AND e.licensed THEN coalesce(s.passed, 0) ELSE 0 END,
             CASE WHEN k AND e.licensed AND e.size = 'large' THEN coalesce(s.samples, 0) ELSE 0 END,
             CASE WHEN k AND e.licensed AND e.size = 'large' THEN coalesce(s.passed, 0) ELSE 0 END
        INTO n
        FROM (SELECT e.category_codes && c.key_categories AS k) kk
        LEFT JOIN LATERAL (
          SELECT true AS any_insp,
                 bool_or(pqs_in_campaign(c, i.inspected_at)) AS in_campaign,
                 sum(jsonb_array_length(i.samples)) FILTER (WHERE i.kind = 'spot_check'
                     AND pqs_in_campaign(c, i.inspected_at)) AS samples,
                 sum(jsonb_array_length(jsonb_path_query_array(i.samples, '$[*] ? (@.passed == true)')))
                     FILTER (WHERE i.kind = 'spot_check' AND pqs_in_campaign(c, i.inspected_at)) AS passed
          FROM inspection i WHERE i.enterprise_id = eid HAVING count(*) > 0) s ON true
        LEFT JOIN LATERAL (
          SELECT (i.checks->'conditions_met'->>'ok') = 'true' AS ok FROM inspection i
          WHERE i.enterprise_id = eid ORDER BY i.inspected_at DESC, i.id DESC LIMIT 1) l ON true;
    END IF;
    IF n IS NOT DISTINCT FROM o THEN
      CONTINUE;
    END IF;
    IF o.enterprise_id IS NOT NULL THEN  -- take the old contribution away
      INSERT INTO campaign_delta (campaign_id, region_code, {ecols})
      VALUES (c.id, o.region_code, {minus_o});
    END IF;
    IF n.enterprise_id IS NOT NULL THEN
      INSERT INTO campaign_delta (campaign_id, region_code, {ecols})
      VALUES (c.id, n.region_code, {plus_n});
      INSERT INTO campaign_enterprise VALUES (n.*)
        ON CONFLICT (campaign_id, enterprise_id) DO UPDATE SET {set_excluded};
    ELSE
      DELETE FROM campaign_enterprise WHERE campaign_id = c.id AND enterprise_id = eid;
    END IF;
  END LOOP;
END $$;

CREATE FUNCTION pqs_inspection_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF pqs_bulk_loading() THEN RETURN NULL; END IF;
  IF TG_OP IN ('UPDATE', 'DELETE') THEN PERFORM pqs_refresh_enterprise(OLD.enterprise_id); END IF;
  IF TG_OP IN ('INSERT', 'UPDATE') AND (TG_OP = 'INSERT' OR NEW.enterprise_id <> OLD.enterprise_id) THEN
    PERFORM pqs_refresh_enterprise(NEW.enterprise_id);
  END IF;
  RETURN NULL;
END $$;

CREATE FUNCTION pqs_enterprise_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF pqs_bulk_loading() THEN RETURN NULL; END IF;
  PERFORM pqs_refresh_enterprise(CASE WHEN TG_OP = 'DELETE' THEN OLD.id ELSE NEW.id END);
  RETURN NULL;
END $$;

-- a case's contribution: unlicensed-production cases found and resolved (closed or transferred),
-- counterfeit cases found and closed (or transferred), when filed inside the campaign
CREATE FUNCTION pqs_case_changed() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE c campaign;
BEGIN
  IF pqs_bulk_loading() THEN RETURN NULL; END IF;
  FOR c IN SELECT * FROM campaign LOOP
    IF TG_OP IN ('UPDATE', 'DELETE') AND pqs_in_campaign(c, OLD.created_at) THEN
      INSERT INTO campaign_delta (campaign_id, region_code, unlicensed_cases, unlicensed_resolved,
                                  counterfeit_cases, counterfeit_closed)
      VALUES (c.id, OLD.region_code, -(OLD.kind = 'unlicensed_production')::int,
              -(OLD.kind = 'unlicensed_production' AND OLD.status IN ('closed', 'transferred'))::int,
              -(OLD.kind = 'counterfeit')::int,
              -(OLD.kind = 'counterfeit' AND OLD.status IN ('closed', 'transferred'))::int);
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') AND pqs_in_campaign(c, NEW.created_at) THEN
      INSERT INTO campaign_delta (campaign_id, region_code, unlicensed_cases, unlicensed_resolved,
                                  counterfeit_cases, counterfeit_closed)
      VALUES (c.id, NEW.region_code, (NEW.kind = 'unlicensed_production')::int,
              (NEW.kind = 'unlicensed_production' AND NEW.status IN ('closed', 'transferred'))::int,
              (NEW.kind = 'counterfeit')::int,
              (NEW.kind = 'counterfeit' AND NEW.status IN ('closed', 'transferred'))::int);
    END IF;
  END LOOP;
  RETURN NULL;
END $$;

-- a recall's contribution: units sold and recalled (cancelled recalls count for nothing)
CREATE FUNCTION pqs_recall_changed() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE c campaign;
BEGIN
  IF pqs_bulk_loading() THEN RETURN NULL; END IF;
  FOR c IN SELECT * FROM campaign LOOP
    IF TG_OP IN ('UPDATE', 'DELETE') AND pqs_in_campaign(c, OLD.created_at) AND OLD.status <> 'cancelled' THEN
      INSERT INTO campaign_delta (campaign_id, region_code, recall_sold, recall_recalled)
      VALUES (c.id, OLD.region_code, -OLD.units_sold, -OLD.units_recalled);
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') AND pqs_in_campaign(c, NEW.created_at) AND NEW.status <> 'cancelled' THEN
      INSERT INTO campaign_delta (campaign_id, region_code, recall_sold, recall_recalled)
      VALUES (c.id, NEW.region_code, NEW.units_sold, NEW.units_recalled);
    END IF;
  END LOOP;
  RETURN NULL;
END $$;

-- everything of one campaign, set-based (a new campaign, or after a bulk load)
CREATE FUNCTION pqs_rebuild_campaign(cid uuid) RETURNS void LANGUAGE plpgsql AS $$
DECLARE c campaign;
BEGIN
  SELECT * INTO c FROM campaign WHERE id = cid;
  DELETE FROM campaign_enterprise WHERE campaign_id = cid;
  DELETE FROM campaign_delta WHERE campaign_id = cid;
  INSERT INTO campaign_enterprise
  SELECT cid, e.id, e.region_code, k::int, (k AND s.enterprise_id IS NOT NULL)::int,
         (k AND coalesce(s.in_campaign, false))::int, (k AND e.licensed)::int,
         (k AND e.licensed AND coalesce(l.ok, false))::int,
         CASE WHEN k AND e.licensed THEN coalesce(s.samples, 0) ELSE 0 END,
         CASE WHEN k AND e.licensed THEN coalesce(s.passed, 0) ELSE 0 END,
         CASE WHEN k AND e.licensed AND e.size = 'large' THEN coalesce(s.samples, 0) ELSE 0 END,
         CASE WHEN k AND e.licensed AND e.size = 'large' THEN coalesce(s.passed, 0) ELSE 0 END
  FROM (SELECT e.*, e.category_codes && c.key_categories AS k FROM enterprise e) e
  LEFT JOIN (
    SELECT i.enterprise_id, bool_or(pqs_in_campaign(c, i.inspected_at)) AS in_campaign,
           sum(jsonb_array_length(i.samples)) FILTER (WHERE i.kind = 'spot_check'
               AND pqs_in_campaign(c, i.inspected_at)) AS samples,
           sum(jsonb_array_length(jsonb_path_query_array(i.samples, '$[*] ? (@.passed == true)')))
               FILTER (WHERE i.kind = 'spot_check' AND pqs_in_campaign(c, i.inspected_at)) AS passed
    FROM inspection i GROUP BY i.enterprise_id) s ON s.enterprise_id = e.id
  LEFT JOIN (
    SELECT DISTINCT ON (i.enterprise_id) i.enterprise_id, (i.checks->'conditions_met'->>'ok') = 'true' AS ok
    FROM inspection i ORDER BY i.enterprise_id, i.inspected_at DESC, i.id DESC) l ON l.enterprise_id = e.id;
  INSERT INTO campaign_delta (campaign_id, region_code, {ecols})
  SELECT cid, region_code, {sum_ecols} FROM campaign_enterprise WHERE campaign_id = cid GROUP BY region_code;
  INSERT INTO campaign_delta (campaign_id, region_code, unlicensed_cases, unlicensed_resolved, counterfeit_cases,
                              counterfeit_closed)
  SELECT cid, region_code, count(*) FILTER (WHERE kind = 'unlicensed_production'),
         count(*) FILTER (WHERE kind = 'unlicensed_production' AND status IN ('closed', 'transferred')),
         count(*) FILTER (WHERE kind = 'counterfeit'),
         count(*) FILTER (WHERE kind = 'counterfeit' AND status IN ('closed', 'transferred'))
  FROM penalty_case WHERE pqs_in_campaign(c, created_at) GROUP BY region_code;
  INSERT INTO campaign_delta (campaign_id, region_code, recall_sold, recall_recalled)
  SELECT cid, region_code, sum(units_sold), sum(units_recalled) FROM recall
  WHERE status <> 'cancelled' AND pqs_in_campaign(c, created_at) GROUP BY region_code;
END $$;

-- fold the differences into one row per campaign and county; totals are the same before and after
CREATE FUNCTION pqs_compact_campaign_deltas() RETURNS integer LANGUAGE plpgsql AS $$
DECLARE folded integer;
BEGIN
  IF NOT pg_try_advisory_xact_lock(7140021) THEN RETURN 0; END IF;
  WITH gone AS (DELETE FROM campaign_delta RETURNING *)
  INSERT INTO campaign_delta (campaign_id, region_code, {all_cols})
  SELECT campaign_id, region_code, {sum_all} FROM gone GROUP BY campaign_id, region_code;
  GET DIAGNOSTICS folded = ROW_COUNT;
  RETURN folded;
END $$;

CREATE TRIGGER pqs_inspection_stats AFTER INSERT OR DELETE OR UPDATE OF enterprise_id, inspected_at, kind, samples,
  checks ON inspection FOR EACH ROW EXECUTE FUNCTION pqs_inspection_changed();
CREATE TRIGGER pqs_enterprise_stats AFTER INSERT OR DELETE OR UPDATE OF region_code, category_codes, size, licensed
  ON enterprise FOR EACH ROW EXECUTE FUNCTION pqs_enterprise_changed();
CREATE TRIGGER pqs_case_stats AFTER INSERT OR DELETE OR UPDATE OF status, kind, region_code
  ON penalty_case FOR EACH ROW EXECUTE FUNCTION pqs_case_changed();
CREATE TRIGGER pqs_recall_stats AFTER INSERT OR DELETE OR UPDATE OF status, units_sold, units_recalled, region_code
  ON recall FOR EACH ROW EXECUTE FUNCTION pqs_recall_changed();
"""


def _sql() -> str:
    ecols = ", ".join(ENTERPRISE_COUNTERS)
    return (FUNCTIONS
            .replace("{ecols}", ecols)
            .replace("{minus_o}", ", ".join(f"-o.{c}" for c in ENTERPRISE_COUNTERS))
            .replace("{plus_n}", ", ".join(f"n.{c}" for c in ENTERPRISE_COUNTERS))
            .replace("{set_excluded}", ", ".join(f"{c} = EXCLUDED.{c}" for c in ("region_code", *ENTERPRISE_COUNTERS)))
            .replace("{sum_ecols}", ", ".join(f"sum({c})" for c in ENTERPRISE_COUNTERS))
            .replace("{all_cols}", ", ".join(COUNTERS))
            .replace("{sum_all}", ", ".join(f"sum({c})" for c in COUNTERS)))


def upgrade() -> None:
    op.create_table(
        "campaign",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("code", sa.String(length=32), nullable=False, unique=True),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("starts_on", sa.Date(), nullable=False),
        sa.Column("ends_on", sa.Date(), nullable=True),
        sa.Column("key_categories", postgresql.ARRAY(sa.String(length=16)), nullable=False),
        sa.Column("created_by", sa.Uuid(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "campaign_target",
        sa.Column("campaign_id", sa.Uuid(), sa.ForeignKey("campaign.id"), primary_key=True),
        sa.Column("region_code", sa.String(length=6), primary_key=True),
        sa.Column("key", sa.String(length=32), primary_key=True),
        sa.Column("target", sa.Float(), nullable=False),
        sa.Column("set_by", sa.Uuid(), nullable=True),
        sa.Column("set_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("target >= 0 AND target <= 1", name="ck_campaign_target_fraction"),
    )
    op.create_table(
        "campaign_enterprise",
        sa.Column("campaign_id", sa.Uuid(), sa.ForeignKey("campaign.id"), primary_key=True),
        sa.Column("enterprise_id", sa.Uuid(), primary_key=True),
        sa.Column("region_code", sa.String(length=6), nullable=False),
        *(sa.Column(c, sa.Integer(), nullable=False) for c in ENTERPRISE_COUNTERS),
    )
    # the sweep's gaps: key producers of a region not yet inspected in the campaign
    op.execute("CREATE INDEX ix_campaign_enterprise_gaps ON campaign_enterprise (campaign_id, region_code,"
               " enterprise_id) WHERE key_producers = 1 AND inspected = 0")
    op.execute("CREATE INDEX ix_campaign_enterprise_region_prefix ON campaign_enterprise"
               " (region_code varchar_pattern_ops)")
    op.create_table(
        "campaign_delta",
        sa.Column("id", sa.BigInteger(), sa.Identity(), primary_key=True),
        sa.Column("campaign_id", sa.Uuid(), sa.ForeignKey("campaign.id"), nullable=False),
        sa.Column("region_code", sa.String(length=6), nullable=False),
        *(sa.Column(c, sa.BigInteger(), nullable=False, server_default="0") for c in COUNTERS),
    )
    op.create_index("ix_campaign_delta_campaign_region", "campaign_delta", ["campaign_id", "region_code"])
    # one statement per execute (asyncpg prepares each): split after each function body and trigger
    for statement in re.split(r"(?<=\$\$;)\n|(?<=\(\);)\n", _sql()):
        if statement.strip():
            op.execute(statement)


def downgrade() -> None:
    for trigger, table in (("pqs_inspection_stats", "inspection"), ("pqs_enterprise_stats", "enterprise"),
                           ("pqs_case_stats", "penalty_case"), ("pqs_recall_stats", "recall")):
        op.execute(f"DROP TRIGGER IF EXISTS {trigger} ON {table}")
    op.drop_table("campaign_delta")
    op.drop_table("campaign_enterprise")
    for fn in ("pqs_compact_campaign_deltas()", "pqs_rebuild_campaign(uuid)", "pqs_recall_changed()",
               "pqs_case_changed()", "pqs_enterprise_changed()", "pqs_inspection_changed()",
               "pqs_refresh_enterprise(uuid)", "pqs_in_campaign(campaign, timestamptz)", "pqs_bulk_loading()"):
        op.execute(f"DROP FUNCTION IF EXISTS {fn}")
    op.drop_table("campaign_target")
    op.drop_table("campaign")
