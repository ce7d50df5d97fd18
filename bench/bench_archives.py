"""Archive benchmarks on the large data set (issue 3, "Done means").

Run `make generate-large` once, then `make bench-archives` (or
`.venv/bin/python bench/bench_archives.py --help`). It

1. starts the embedded PostgreSQL of the large data set (var/large/pgdata, database regulator_large;
   or --database-url), picks the county with the most enterprises, the enterprise of that county
   with the most inspections and a name fragment of one of its enterprises, and prints
   EXPLAIN (ANALYZE, BUFFERS) of the list, search and archive-style queries;
2. starts the service (`python -m app.cli serve`, APP_WORKERS=2) with DATABASE_URL pointing at that
   database, logs in as the bootstrap admin (national) and runs wrk (32 connections, 2 threads, 15 s
   after a 3 s warm-up, like bench_foundation.py) against
   - GET /api/v1/enterprises?region=<county>            (the default page of 50, and limit=20)
   - GET /api/v1/enterprises?q=<name fragment>
   - GET /api/v1/enterprises/{id}/archive               (skipped when the route does not exist yet)
   then bench/bare_app.py (Starlette + asyncpg, same JWT check, one indexed statement) for the
   same three reads: the county's 20 newest, its page of 50, and the name search (50 rows),
   started beside it under uvicorn with 2 workers, the same way: right after the service's
   reads, so both meet the database in the same state; then --pairs rounds (3) of each read and
   its bare counterpart back to back, 10 s each, in alternating order, because the machine's
   speed drifts more within minutes than the gap the ratio measures;
3. then POST /api/v1/inspections/batch, 100 new inspections per request, fresh ids from a wrk Lua
   script (skipped when the route does not exist yet), at 32 and at 2 connections;
4. prints the table, the ratio list req/s / bare req/s (of the runs above, and the median of the
   pairs), the targets (list and search p99 < 50 ms, archive p99 < 100 ms, ratio >= 0.6) met or
   missed, and the bare app's own p99 beside each read's: what the least such an endpoint can do on
   this machine; and saves everything under bench/results/.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import re
import signal
import subprocess
import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import asyncpg
import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT))

from bench_foundation import (  # noqa: E402
    DEFAULT_ADMIN_PASSWORD,
    RESULTS,
    Service,
    WrkResult,
    WrkSettings,
    ensure_wrk,
    free_port,
    log,
    login,
    run_wrk,
    service_python,
)

from app import demo  # noqa: E402

TARGET_LIST_P99_MS = 50.0
TARGET_ARCHIVE_P99_MS = 100.0
TARGET_RATIO = 0.6
# bench/bare_app.py's counterparts of the reads
BARE_20, BARE_50, BARE_Q = (f"bare Starlette+asyncpg ({what})" for what in ("20 rows", "page of 50", "q search"))
BATCH_NOTE = "bench"  # the notes of the inspections the batch benchmark adds

# 100 new inspections per request; each wrk thread seeds its own generator, so ids never repeat.
BATCH_LUA = r"""
local threads, counter = {}, 1

function setup(thread)
  thread:set("tid", counter)
  counter = counter + 1
  table.insert(threads, thread)
end

function init(args)
  token = args[2]
  ids = {}
  for line in io.lines(args[1]) do
    if #line > 0 then table.insert(ids, line) end
  end
  math.randomseed(os.time() * 1000 + tid * 7919 + math.floor(os.clock() * 1e6))
  created, replayed, rejected, bad, s4xx, s503, s5xx = 0, 0, 0, 0, 0, 0, 0
  checks = '{"licensed":{"ok":true,"note":null},"conditions_met":{"ok":true,"note":null},' ..
           '"standard_production":{"ok":true,"note":null},"no_safety_hazard":{"ok":true,"note":null},' ..
           '"no_fraud":{"ok":true,"note":null}}'
end

local function uuid4()
  local b = {}
  for i = 1, 16 do b[i] = math.random(0, 255) end
  b[7] = (b[7] % 16) + 64
  b[9] = (b[9] % 64) + 128
  return string.format("%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", unpack(b))
end

function request()
  local items = {}
  for i = 1, 100 do
    items[i] = '{"id":"' .. uuid4() .. '","enterprise_id":"' .. ids[math.random(#ids)] ..
      '","kind":"routine","inspected_at":"2026-11-20T09:' .. string.format("%02d", i % 60) ..
      ':00+08:00","officers":["王芳","李强"],"location":{"lat":30.27,"lng":120.13},"checks":' .. checks ..
      ',"samples":[],"conclusion":"compliant","notes":"bench"}'
  end
  return wrk.format("POST", "/api/v1/inspections/batch", {
    ["Authorization"] = "Bearer " .. token,
    ["Content-Type"] = "application/json",
  }, '{"items":[' .. table.concat(items, ",") .. ']}')
end

function response(status, headers, body)
  if status ~= 200 then
    bad = bad + 1
    if status == 503 then s503 = s503 + 1 elseif status >= 500 then s5xx = s5xx + 1 else s4xx = s4xx + 1 end
    return
  end
  local _, c = string.gsub(body, '"status"%s*:%s*"created"', "")
  local _, r = string.gsub(body, '"status"%s*:%s*"replayed"', "")
  local _, j = string.gsub(body, '"status"%s*:%s*"rejected"', "")
  created, replayed, rejected = created + c, replayed + r, rejected + j
end

function done(summary, latency, requests)
  local c, r, j, b, x4, x503, x5 = 0, 0, 0, 0, 0, 0, 0
  for _, t in ipairs(threads) do
    c, r, j, b = c + t:get("created"), r + t:get("replayed"), j + t:get("rejected"), b + t:get("bad")
    x4, x503, x5 = x4 + t:get("s4xx"), x503 + t:get("s503"), x5 + t:get("s5xx")
  end
  io.write(string.format("lua: items created=%d replayed=%d rejected=%d non-200=%d (4xx=%d 503=%d other 5xx=%d)\n",
                         c, r, j, b, x4, x503, x5))
end
"""


def libpq(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://", 1)


# --------------------------------------------------------------------------------------------------
# The data set: what to ask for, and the plans
# --------------------------------------------------------------------------------------------------

async def remove_earlier_batches(conn: Any, county: str) -> int:
    """Delete the inspections earlier runs' batches added (all to ``county``): the benchmark measures the
    generated set, not one that grows with every run. Left in, they reached 1.5 M on a few thousand
    producers, and the work at commit, which reads a producer's history, grew with them (a batch of
    100 at 32 connections: from about 3 s to 4.5 s at p50, and requests refused for want of a pooled
    connection). Deleted 500 producers per transaction, as the triggers refresh each at commit."""
    producers = [r["enterprise_id"] for r in await conn.fetch(
        "SELECT DISTINCT i.enterprise_id FROM enterprise e JOIN inspection i ON i.enterprise_id = e.id"
        " WHERE e.region_code = $1 AND i.notes = $2", county, BATCH_NOTE)]
    removed = 0
    for start in range(0, len(producers), 500):
        status = await conn.execute("DELETE FROM inspection WHERE enterprise_id = ANY($1::uuid[]) AND notes = $2",
                                    producers[start:start + 500], BATCH_NOTE)
        removed += int(status.split()[-1])
    return removed


async def pick_targets(url: str) -> dict[str, Any]:
    conn = await asyncpg.connect(libpq(url))
    try:
        total = await conn.fetchval("SELECT count(*) FROM enterprise")
        if not total:
            raise SystemExit("the large database has no enterprises: run `make generate-large` first")
        (county, n_county), (batch_county, _) = await conn.fetch(
            "SELECT region_code, count(*) FROM enterprise GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT 2")
        removed = await remove_earlier_batches(conn, batch_county)
        if removed:
            print(f"removed the {removed} inspections earlier runs' batches added", flush=True)
            await conn.execute("ANALYZE inspection")  # the plans, and the estimate below, see them gone
        inspections = await conn.fetchval("SELECT reltuples::bigint FROM pg_class WHERE relname = 'inspection'")
        region_name = await conn.fetchval("SELECT full_name FROM region WHERE code = $1", county)
        # the generated enterprise of the county with the most inspections (none added by a batch run)
        archive = await conn.fetchrow(
            "SELECT e.id, e.name, count(i.id) AS n FROM enterprise e JOIN inspection i ON i.enterprise_id = e.id"
            " WHERE e.region_code = $1 GROUP BY e.id, e.name"
            " HAVING count(*) FILTER (WHERE i.notes = $2) = 0 ORDER BY n DESC, e.id LIMIT 1", county, BATCH_NOTE)
        # the batch writes to the second-largest county, so what the reads measure stays the same
        # the county's 500 producers with the fewest inspections: every run adds thousands, and the
        # same 500 each time had 700 apiece after a day of runs (work at commit grows with them)
        batch_ids = [str(r["id"]) for r in await conn.fetch(
            "SELECT e.id FROM enterprise e WHERE e.region_code = $1"
            " ORDER BY (SELECT count(*) FROM inspection i WHERE i.enterprise_id = e.id), e.id LIMIT 500", batch_county)]
        county_page_ids = [str(r["id"]) for r in await conn.fetch(
            "SELECT id FROM enterprise WHERE region_code = $1 ORDER BY created_at DESC, id DESC LIMIT 50", county)]
        names = [r["name"] for r in await conn.fetch(
            "SELECT name FROM enterprise WHERE region_code = $1 ORDER BY id LIMIT 50", county)]
        common2 = next((b for b in demo.BRAND_WORDS if b in names[0]), "宏达")  # a 2-character trade name
        # a name fragment: a trade name and the first two characters of the trade word that follows it
        fragment = None
        for name in names:
            for brand in demo.BRAND_WORDS:
                at = name.find(brand)
                if at > 0 and len(name) >= at + len(brand) + 2:
                    fragment = name[at:at + len(brand) + 2]
                    break
            if fragment:
                break
        fragment = fragment or names[0][2:6]
        matches = await conn.fetchval("SELECT count(*) FROM enterprise WHERE name ILIKE $1", f"%{fragment}%")
    finally:
        await conn.close()
    return {"enterprises": total, "inspections_estimate": inspections, "county": county, "county_name": region_name,
            "county_enterprises": n_county, "archive_enterprise": str(archive["id"]),
            "archive_enterprise_name": archive["name"], "archive_inspections": archive["n"],
            "fragment": fragment, "fragment_matches": matches, "batch_enterprise_ids": batch_ids,
            "fragment_2_common": common2, "fragment_2_rare": "鲍鱼", "batch_county": batch_county,
            "county_page_ids": county_page_ids}


def plan_queries(t: dict[str, Any]) -> list[tuple[str, str, list[Any]]]:
    """(title, SQL, parameters): the list and search statements exactly as app/services/enterprise.py
    builds them for the national admin the benchmark logs in as, and the archive's lookups."""
    import uuid as uuid_mod

    from app.db import SqlParams
    from app.scope import Scope
    from app.services import archive
    from app.services.enterprise import EnterpriseListQuery, list_statement
    from app.services.focus import FLAGS_SQL, facts_parameters

    facts = facts_parameters()
    national = Scope(principal_id=uuid_mod.uuid4(), principal_type="user", username="admin", region_code="000000",
                     roles=frozenset({"admin"}))

    def listed(title: str, limit: int = 50, **filters: Any) -> tuple[str, str, list[Any]]:
        sql, params = list_statement(scope=national, query=EnterpriseListQuery(limit=limit, **filters), facts=facts)
        return title, sql, params.values

    def statement(title: str, sql: str, params: SqlParams) -> tuple[str, str, list[Any]]:
        return title, sql, params.values

    eid = t["archive_enterprise"]
    # flags computed from the records, for the county's newest 50 (GET /enterprises/{id} and the archive
    # send this for one enterprise; the list reads the kept facts joined in its own statement)
    flags_args = [[uuid_mod.UUID(i) for i in t["county_page_ids"]], national.prefix + "%", facts["day"], facts["since"]]
    return [
        listed("list by county (region=<county>, first page of 50)", region=t["county"]),
        ("flags from the records for those 50 (focus.FLAGS_SQL; the list joins the kept facts instead)",
         FLAGS_SQL, flags_args),
        listed("bare app's page: list by county, limit=20", limit=20, region=t["county"]),
        listed(f"q search by a name fragment of 4 characters (q={t['fragment']})", q=t["fragment"]),
        listed(f"q with a common 2-character trade name (q={t['fragment_2_common']}; name_bigrams, migration 0006)",
               q=t["fragment_2_common"]),
        listed(f"q with a 2-character fragment that matches nothing (q={t['fragment_2_rare']}), worst case",
               q=t["fragment_2_rare"]),
        listed("key enterprises of the county (key=true)", region=t["county"], key=True),
        listed(f"q with a 3-character fragment (q={t['fragment'][:3]}; statistics of migration 0022)",
               q=t["fragment"][:3]),
        statement("archive: the enterprise with its kept key facts (archive.enterprise_statement)",
                  *archive.enterprise_statement(national, uuid_mod.UUID(eid), facts)),
        statement("archive: the enterprise's inspections, newest first",
                  *archive.rows_statement(national, uuid_mod.UUID(eid), *archive.INSPECTIONS)),
        ("bare app: the county's 20 newest enterprises",
         "SELECT * FROM enterprise WHERE region_code = $1 ORDER BY created_at DESC, id DESC LIMIT 20", [t["county"]]),
    ]


async def explain(url: str, queries: list[tuple[str, str, list[Any]]]) -> list[dict[str, Any]]:
    conn = await asyncpg.connect(libpq(url))
    out = []
    try:
        for title, sql, args in queries:
            await conn.fetch(sql, *args)  # warm the cache the way the benchmark will have it
            rows = await conn.fetch(f"EXPLAIN (ANALYZE, BUFFERS) {sql}", *args)
            plan = "\n".join(r[0] for r in rows)
            out.append({"title": title, "sql": sql, "parameters": [str(a)[:120] for a in args], "plan": plan,
                        "uses_index": _uses_index(plan), "seq_scan": "Seq Scan" in plan})
    finally:
        await conn.close()
    return out


def _uses_index(plan: str) -> bool:
    return bool(re.search(r"Index Scan|Index Only Scan|Bitmap Index Scan", plan))


# --------------------------------------------------------------------------------------------------
# The bare app
# --------------------------------------------------------------------------------------------------

class BareApp:
    def __init__(self, url: str, workers: int, log_path: Path) -> None:
        self.url, self.workers, self.port, self.log_path = url, workers, free_port(), log_path
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> BareApp:
        env = {**os.environ, "DATABASE_URL": self.url, "PYTHONUNBUFFERED": "1"}
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._logf = open(self.log_path, "ab")  # noqa: SIM115 - closed in __exit__
        self.proc = subprocess.Popen(
            [service_python(), "-m", "uvicorn", "bench.bare_app:app", "--host", "127.0.0.1", "--port", str(self.port),
             "--workers", str(self.workers), "--no-access-log", "--log-level", "warning"],
            cwd=ROOT, env=env, stdout=self._logf, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"bare app exited with {self.proc.returncode}; see {self.log_path}")
            try:
                httpx.get(self.base_url + "/bare/enterprises", timeout=2.0)
                return self
            except httpx.HTTPError:
                time.sleep(0.3)
        raise RuntimeError("bare app not ready after 60 s")

    def __exit__(self, *exc: object) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)
        self._logf.close()


# --------------------------------------------------------------------------------------------------
# Main
# --------------------------------------------------------------------------------------------------

def resolve_url(args: argparse.Namespace) -> str:
    if args.database_url:
        return str(args.database_url)
    from app.db import asyncpg_url, start_embedded_postgres

    if not (args.data_dir / "pgdata" / "PG_VERSION").exists():
        raise SystemExit(f"no large data set under {args.data_dir}: run `make generate-large` first")
    return asyncpg_url(start_embedded_postgres(args.data_dir / "pgdata"), args.database)


def routes(base_url: str) -> set[str]:
    r = httpx.get(base_url + "/openapi.json", timeout=30.0)
    r.raise_for_status()
    return set(r.json().get("paths", {}))


def check_get(client: httpx.Client, path: str) -> tuple[int, str]:
    r = client.get(path)
    return r.status_code, r.text[:300]


def sequential_ms(client: httpx.Client, path: str, n: int = 40) -> float:
    """Median latency of one request at a time (the service time, without queueing)."""
    for _ in range(5):
        client.get(path)
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        client.get(path).raise_for_status()
        times.append((time.perf_counter() - t0) * 1000)
    return sorted(times)[n // 2]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    ap.add_argument("--workers", type=int, default=int(os.environ.get("APP_WORKERS", "2")))
    ap.add_argument("--data-dir", type=Path, default=ROOT / "var" / "large")
    ap.add_argument("--database", default="regulator_large")
    ap.add_argument("--database-url", default=None, help="postgresql+asyncpg://... instead of the embedded server")
    ap.add_argument("--duration", type=int, default=15)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--connections", type=int, default=32)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--skip-batch", action="store_true", help="leave the write benchmark out (it adds rows)")
    ap.add_argument("--pairs", type=int, default=3,
                    help="rounds of the list of 20 and the bare app measured back to back, for the ratio")
    args = ap.parse_args(argv)

    ensure_wrk()
    cfg = WrkSettings(connections=args.connections, threads=args.threads, duration=args.duration,
                      warmup=args.warmup)
    tag = f"{dt.datetime.now():%Y%m%d-%H%M%S}-archives-"
    RESULTS.mkdir(parents=True, exist_ok=True)
    url = resolve_url(args)
    log(f"large data set: {url}")
    t = asyncio.run(pick_targets(url))
    log(f"{t['enterprises']} enterprises, ~{t['inspections_estimate']} inspections; county {t['county']} "
        f"{t['county_name']} has {t['county_enterprises']}; archive of {t['archive_enterprise_name']} "
        f"({t['archive_inspections']} inspections); q={t['fragment']!r} matches {t['fragment_matches']} names")
    plans = asyncio.run(explain(url, plan_queries(t)))

    password = os.environ.get("APP_BOOTSTRAP_ADMIN_PASSWORD", DEFAULT_ADMIN_PASSWORD)
    results: list[WrkResult] = []
    notes: list[str] = []
    pairs: dict[str, list[tuple[WrkResult, WrkResult]]] = {}  # (service, bare) runs, back to back
    svc = Service(args.data_dir / "service", workers=args.workers, admin_password=password,
                  extra_env={"DATABASE_URL": url, "APP_ACCESS_TOKEN_TTL_SECONDS": "7200"})
    log(f"starting the service ({args.workers} workers, port {svc.port}; log {svc.log_path})")
    # The bare app runs beside the service (idle while the other is measured) and is measured right
    # after the service's reads, before the batch writes load the database: both in the same state.
    with BareApp(url, args.workers, args.data_dir / "bare_app.log") as bare, svc:
        log(f"bare app on port {bare.port}")
        token = login(svc.base_url, password)
        auth = [f"Authorization: Bearer {token}"]
        paths = routes(svc.base_url)
        base = svc.base_url
        with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=60.0) as client:
            for path in (f"/api/v1/enterprises?region={t['county']}", f"/api/v1/enterprises?q={t['fragment']}"):
                code, body = check_get(client, path)
                if code != 200:
                    raise RuntimeError(f"GET {path}: {code} {body}")
            # The framework's own floor: the same service and middleware (request id, metrics, logs,
            # problem handlers), no token, no database. No endpoint of the service can beat this.
            res = run_wrk("GET /healthz (framework floor)", base + "/healthz", cfg, tag=tag)
            results.append(res)
            county_q = f"/api/v1/enterprises?region={t['county']}"
            q_path = "/api/v1/enterprises?" + str(httpx.QueryParams({"q": t["fragment"]}))
            for name, path in (("GET /enterprises?region=<county>", county_q),
                               ("GET /enterprises?region=<county>&limit=20", county_q + "&limit=20"),
                               ("GET /enterprises?q=<fragment>", q_path)):
                seq = sequential_ms(client, path)
                res = run_wrk(name, base + path, cfg, headers=auth, tag=tag)
                res.extra["one_at_a_time_p50_ms"] = round(seq, 2)
                results.append(res)
            archive_path = f"/api/v1/enterprises/{t['archive_enterprise']}/archive"
            if "/api/v1/enterprises/{enterprise_id}/archive" not in paths and not any(
                    p.endswith("/archive") for p in paths):
                notes.append("archive: SKIPPED, GET /api/v1/enterprises/{id}/archive is not built yet (not in /openapi.json)")
            else:
                code, body = check_get(client, archive_path)
                if code == 404:
                    notes.append(f"archive: SKIPPED, {archive_path} answered 404: {body}")
                elif code != 200:
                    raise RuntimeError(f"GET {archive_path}: {code} {body}")
                else:
                    seq = sequential_ms(client, archive_path)
                    res = run_wrk("GET /enterprises/{id}/archive", base + archive_path, cfg, headers=auth, tag=tag)
                    res.extra["one_at_a_time_p50_ms"] = round(seq, 2)
                    results.append(res)
            bare_county = f"/bare/enterprises?region={t['county']}"
            bare_q = "/bare/search?" + str(httpx.QueryParams({"q": t["fragment"]}))
            # each read of the service beside the least an endpoint doing it must do (bench/bare_app.py)
            compared = [  # (service path, its name, bare path, its name, the rows the bare one answers)
                (f"{county_q}&limit=20", "GET /enterprises?region=<county>&limit=20", bare_county, BARE_20, 20),
                (county_q, "GET /enterprises?region=<county>", f"{bare_county}&limit=50", BARE_50, 50),
                (q_path, "GET /enterprises?q=<fragment>", bare_q, BARE_Q, min(50, t["fragment_matches"]))]
            with httpx.Client(base_url=bare.base_url, headers={"Authorization": f"Bearer {token}"}, timeout=10) as bc:
                for _, _, bare_path, bare_name, rows in compared:
                    r = bc.get(bare_path)
                    if r.status_code != 200 or len(r.json()["items"]) != rows:
                        raise RuntimeError(f"bare app {bare_path}: {r.status_code} {r.text[:300]}")
                    seq = sequential_ms(bc, bare_path)
                    res = run_wrk(bare_name, bare.base_url + bare_path, cfg, headers=auth, tag=tag)
                    res.extra["one_at_a_time_p50_ms"] = round(seq, 2)
                    results.append(res)
            # This machine's speed drifts by tens of percent within minutes (other tenants), more than
            # the gap the ratio measures, and the runs above are minutes apart. So each read is also
            # measured in pairs with its bare counterpart, back to back, in alternating order, and the
            # median pair counts.
            pcfg = WrkSettings(connections=cfg.connections, threads=cfg.threads, duration=10, warmup=2,
                               timeout=cfg.timeout)
            for path, name, bare_path, bare_name, _ in compared:
                runs = pairs.setdefault(name, [])
                for i in range(args.pairs):
                    mine = (base + path, name)
                    theirs = (bare.base_url + bare_path, bare_name)
                    got = {n: run_wrk(f"{n} pair {i + 1}", target, pcfg, headers=auth, tag=tag)
                           for target, n in ((mine, theirs) if i % 2 == 0 else (theirs, mine))}
                    runs.append((got[name], got[bare_name]))
            if args.skip_batch:
                notes.append("batch: skipped (--skip-batch)")
            elif "/api/v1/inspections/batch" not in paths:
                notes.append("batch: SKIPPED, POST /api/v1/inspections/batch is not built yet (not in /openapi.json)")
            else:
                ids_file = RESULTS / f"{tag}batch-enterprises.txt"
                ids_file.write_text("\n".join(t["batch_enterprise_ids"]) + "\n")
                script = RESULTS / "batch_inspections.lua"
                script.write_text(BATCH_LUA)
                # A batch of 100 takes hundreds of milliseconds: at 32 connections requests queue for
                # seconds, so this run is longer and wrk waits up to 60 s; a 2-connection run beside it
                # shows the time of one batch without the queue.
                for conns in (args.connections, 2):
                    bcfg = WrkSettings(connections=conns, threads=min(args.threads, conns),
                                       duration=max(cfg.duration, 30), warmup=cfg.warmup, timeout=60)
                    name = f"POST /inspections/batch (100 items) c={conns}"
                    res = run_wrk(name, base + "/api/v1/inspections/batch", bcfg, script=script,
                                  script_args=[str(ids_file), token], tag=tag)
                    slug = re.sub(r"[^A-Za-z0-9]+", "-", name).strip("-").lower()
                    raw = (RESULTS / f"{tag}{slug}.wrk.txt").read_text()
                    m = re.search(r"lua: items created=(\d+) replayed=(\d+) rejected=(\d+) non-200=(\d+) "
                                  r"\(4xx=(\d+) 503=(\d+) other 5xx=(\d+)\)", raw)
                    if m:
                        res.extra = {"items_created": int(m.group(1)), "items_replayed": int(m.group(2)),
                                     "items_rejected": int(m.group(3)), "non_200": int(m.group(4)),
                                     "status_4xx": int(m.group(5)), "status_503": int(m.group(6)),
                                     "status_other_5xx": int(m.group(7)),
                                     "inspections_per_s": round(int(m.group(1)) / bcfg.duration, 1),
                                     "duration_s": bcfg.duration}
                    results.append(res)
        log("stopping the service and the bare app")

    report(results, plans, notes, t, cfg, args.workers, tag, pairs)
    return 0


def _median(values: list[float]) -> float:
    each = sorted(values)
    return each[len(each) // 2] if len(each) % 2 else (each[len(each) // 2 - 1] + each[len(each) // 2]) / 2


def _ratio_verdict(ratio: float) -> str:
    return f" (target >= {TARGET_RATIO}: {'met' if ratio >= TARGET_RATIO else 'MISSED'})"


def report(results: list[WrkResult], plans: list[dict[str, Any]], notes: list[str], t: dict[str, Any],
           cfg: WrkSettings, workers: int, tag: str, pairs: dict[str, list[tuple[WrkResult, WrkResult]]]) -> None:
    by = {r.name: r for r in results}
    print()
    print(f"data set: {t['enterprises']} enterprises, ~{t['inspections_estimate']} inspections; county "
          f"{t['county']} {t['county_name']} ({t['county_enterprises']} enterprises); q={t['fragment']!r} "
          f"({t['fragment_matches']} matching names); archive of {t['archive_enterprise']} "
          f"({t['archive_inspections']} inspections)")
    print(f"wrk: {cfg.connections} connections, {cfg.threads} threads, {cfg.duration}s each (after a {cfg.warmup}s "
          f"warm-up); service and bare app: {workers} workers; {os.cpu_count()} CPUs shared by wrk, the app and "
          "PostgreSQL")
    print("load average (1/5/15 min) at the end: " + " ".join(f"{x:.2f}" for x in os.getloadavg()))
    head = f"{'endpoint':<44} {'req/s':>9} {'p50':>9} {'p99':>9} {'requests':>9} {'non-2xx':>8} {'target':>14}"
    print(head)
    print("-" * len(head))
    verdicts: dict[str, str] = {}
    for r in results:
        target = ""
        if "archive" in r.name:
            target = f"p99<{TARGET_ARCHIVE_P99_MS:.0f}ms " + ("met" if r.p99_ms < TARGET_ARCHIVE_P99_MS else "MISSED")
        elif r.name.startswith(("GET /enterprises", "bare")):  # the bare app's: what this machine allows
            target = f"p99<{TARGET_LIST_P99_MS:.0f}ms " + ("met" if r.p99_ms < TARGET_LIST_P99_MS else "MISSED")
        verdicts[r.name] = target
        print(f"{r.name:<44} {r.requests_per_s:>9.1f} {r.p50_ms:>7.2f}ms {r.p99_ms:>7.2f}ms {r.requests:>9} "
              f"{r.non_2xx:>8} {target:>14}")
        if r.extra:
            print(f"{'':<44} {r.extra}")
    # the ratio is the list of 20's; the page of 50's and the search's put them in context
    list20 = "GET /enterprises?region=<county>&limit=20"
    ratios: dict[str, float] = {}
    print()
    for name, bare_name in ((list20, BARE_20), ("GET /enterprises?region=<county>", BARE_50),
                            ("GET /enterprises?q=<fragment>", BARE_Q), ("GET /healthz (framework floor)", BARE_20)):
        if name in by and bare_name in by:
            ratio = ratios[name] = by[name].requests_per_s / by[bare_name].requests_per_s
            print(f"ratio {name} / {bare_name} = {by[name].requests_per_s:.1f} / {by[bare_name].requests_per_s:.1f}"
                  f" req/s = {ratio:.2f}{_ratio_verdict(ratio) if name == list20 else ''}")
    for name, runs in pairs.items():
        median = _median([a.requests_per_s / b.requests_per_s for a, b in runs])
        ratios[f"pairs median: {name}"] = median
        shown = ", ".join(f"{a.requests_per_s:.0f}/{b.requests_per_s:.0f} = {a.requests_per_s / b.requests_per_s:.2f}"
                          for a, b in runs)
        print(f"{name} / bare, {len(runs)} back-to-back pairs (10 s each): {shown}; median {median:.2f}"
              f"{_ratio_verdict(median) if name == list20 else ''}; p99 median "
              f"{_median([a.p99_ms for a, _ in runs]):.1f} ms against the bare app's "
              f"{_median([b.p99_ms for _, b in runs]):.1f} ms")
    for n in notes:
        print(n)
    print()
    for p in plans:
        flag = "index used" if p["uses_index"] else "NO INDEX"
        if p["seq_scan"]:
            flag += ", SEQ SCAN"
        print(f"== EXPLAIN (ANALYZE, BUFFERS): {p['title']} [{flag}]")
        print(p["sql"])
        if p.get("parameters"):
            print("parameters:", p["parameters"])
        print(p["plan"])
        print()
    out = RESULTS / f"{tag}summary.json"
    out.write_text(json.dumps({
        "when": tag.rstrip("-"), "targets": {k: v for k, v in t.items() if k not in ("batch_enterprise_ids", "county_page_ids")},
        "wrk": asdict(cfg), "workers": workers, "results": [asdict(r) for r in results], "verdicts": verdicts,
        "ratios": ratios,
        "pairs": {name: [[asdict(a), asdict(b)] for a, b in runs] for name, runs in pairs.items()}, "notes": notes, "plans": plans, "loadavg": os.getloadavg()}, indent=2, ensure_ascii=False))
    print(f"raw wrk output and {out.name} in {RESULTS.relative_to(ROOT)}/")


if __name__ == "__main__":
    raise SystemExit(main())
