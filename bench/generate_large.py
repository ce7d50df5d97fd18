"""Generate the large data set the archive benchmarks run on (issue 3): by default 1,000,000
enterprises in every province's counties, licences for most of them, about 5,100,000 inspections
over three years, and the penalty cases some failing inspections opened.

Run it with `make generate-large` (or `.venv/bin/python bench/generate_large.py --help`). It

1. starts (or reuses) an embedded PostgreSQL under var/large/pgdata (or uses --database-url), sets
   max_wal_size/checkpoint_timeout for a bulk load (ALTER SYSTEM, only on that server), creates the
   database `regulator_large`, migrates it with app.migrations.upgrade and loads the reference data;
2. drops the foreign keys, primary/unique constraints and indexes of enterprise, license,
   inspection and penalty_case (their definitions are read from the catalogue first);
3. loads the rows with COPY (asyncpg copy_records_to_table) from streaming generators: the
   enterprise range is cut into a fixed number of parts (deterministic whatever --workers is), and
   --workers processes each generate and COPY their parts chunk by chunk (memory stays bounded);
4. recreates the constraints and indexes (two at a time), then VACUUM ANALYZE;
5. prints the timings and writes them to var/large/generate.json.

Everything follows from --seed and --as-of (default 2026-11-28): the same arguments give the same
rows. Generated rows bypass the audit log. A database that already holds enterprises is left alone
unless --force (which drops and recreates it).
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import concurrent.futures
import datetime as dt
import hashlib
import json
import multiprocessing
import os
import random
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import asyncpg  # noqa: E402
from asyncpg.pgproto.pgproto import UUID as PgUUID  # noqa: E402

from app import demo  # noqa: E402
from app.services import uscc as uscc_codes  # noqa: E402

DATABASE = "regulator_large"
TABLES = ("enterprise", "license", "inspection", "penalty_case")
# Industrial weight per province (GB/T 2260 prefix); counties get a log-normal share of it.
PROVINCE_WEIGHTS: dict[str, float] = {
    "33": 3.0, "44": 3.0, "32": 3.0, "37": 2.5, "35": 1.8, "41": 1.5, "13": 1.5, "34": 1.3, "42": 1.2,
    "43": 1.0, "51": 1.2, "31": 1.2, "11": 0.8, "12": 1.0, "21": 1.0, "36": 1.0, "50": 1.0, "61": 0.8,
    "45": 0.7, "14": 0.7, "22": 0.5, "23": 0.5, "15": 0.5, "52": 0.5, "53": 0.5, "62": 0.4, "65": 0.4,
    "46": 0.3, "64": 0.3, "63": 0.2, "54": 0.1,
}
KINDS = ("sweep", "routine", "annual_review", "complaint", "spot_check")
KIND_WEIGHTS = (25, 40, 12, 3, 20)
# Inspections per enterprise over the three years: 1..24, mean 5.11 (a few have many).
N_INSPECTIONS = tuple(range(1, 25))
N_WEIGHTS = (9, 13, 16, 16, 13, 10, 7, 5, 3.5, 2.5, 1.5, 1) + (0.3,) * 12
_UUID_MASK = ~((0xF000 << 64) | (0xC000 << 48)) & ((1 << 128) - 1)
_UUID_V4 = (0x4000 << 64) | (0x8000 << 48)
HISTORY_YEARS = 8  # enterprises entered the archive over the last eight years
INSPECTION_YEARS = 3


def log(msg: str) -> None:
    print(f"[generate {dt.datetime.now():%H:%M:%S}] {msg}", flush=True)


# --------------------------------------------------------------------------------------------------
# The database
# --------------------------------------------------------------------------------------------------

def libpq(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://", 1)


def resolve_url(args: argparse.Namespace) -> str:
    if args.database_url:
        return str(args.database_url)
    from app.db import asyncpg_url, start_embedded_postgres

    uri = start_embedded_postgres(args.data_dir / "pgdata")
    return asyncpg_url(uri, args.database)


async def tune_server(url: str) -> None:
    """Bulk-load friendly settings for this (benchmark-only) server: fewer checkpoints."""
    conn = await asyncpg.connect(urlsplit(libpq(url))._replace(path="/postgres").geturl())
    try:
        await conn.execute("ALTER SYSTEM SET max_wal_size = '8GB'")
        await conn.execute("ALTER SYSTEM SET checkpoint_timeout = '30min'")
        await conn.execute("SELECT pg_reload_conf()")
    finally:
        await conn.close()


async def enterprise_count(url: str) -> int | None:
    from app.db import create_database_if_missing

    await create_database_if_missing(url)
    conn = await asyncpg.connect(libpq(url))
    try:
        if not await conn.fetchval("SELECT to_regclass('enterprise') IS NOT NULL"):
            return None
        return int(await conn.fetchval("SELECT count(*) FROM enterprise"))
    finally:
        await conn.close()


async def load_reference(url: str) -> None:
    from sqlalchemy.pool import NullPool

    from app.config import get_settings
    from app.db import make_engine, make_sessionmaker, session_scope
    from app.services import reference

    engine = make_engine(url, get_settings(), poolclass=NullPool)
    try:
        async with session_scope(make_sessionmaker(engine)) as session:
            await reference.load_reference_data(session)
    finally:
        await engine.dispose()


@dataclass
class Schema:
    """What is dropped before the load and recreated after it."""

    fkeys: list[tuple[str, str, str]] = field(default_factory=list)  # (table, name, definition)
    keys: list[tuple[str, str, str]] = field(default_factory=list)  # primary keys and unique constraints
    indexes: list[tuple[str, str, str]] = field(default_factory=list)  # (table, name, CREATE INDEX ...)


async def drop_schema_objects(conn: asyncpg.Connection) -> Schema:
    s = Schema()
    tables = list(TABLES)
    for r in await conn.fetch(
            "SELECT c.conrelid::regclass::text AS tbl, c.conname, pg_get_constraintdef(c.oid) AS def,"
            " c.contype::text AS contype"
            " FROM pg_constraint c WHERE c.contype IN ('f', 'p', 'u')"
            " AND (c.conrelid::regclass::text = ANY($1) OR (c.contype = 'f' AND c.confrelid::regclass::text = ANY($1)))"
            " ORDER BY c.conname", tables):
        (s.fkeys if r["contype"] == "f" else s.keys).append((r["tbl"], r["conname"], r["def"]))
    constraint_names = {name for _, name, _ in s.keys}
    for r in await conn.fetch("SELECT tablename, indexname, indexdef FROM pg_indexes WHERE tablename = ANY($1)"
                              " ORDER BY indexname", tables):
        if r["indexname"] not in constraint_names:
            s.indexes.append((r["tablename"], r["indexname"], r["indexdef"]))
    for tbl, name, _ in s.fkeys:
        await conn.execute(f'ALTER TABLE {tbl} DROP CONSTRAINT "{name}"')
    for tbl, name, _ in s.keys:
        await conn.execute(f'ALTER TABLE {tbl} DROP CONSTRAINT "{name}"')
    for _, name, _ in s.indexes:
        await conn.execute(f'DROP INDEX "{name}"')
    return s


async def recreate_schema_objects(url: str, s: Schema, parallel: int) -> list[tuple[str, float]]:
    """Keys and indexes `parallel` at a time (largest tables first), then the foreign keys."""
    size = {"inspection": 0, "enterprise": 1, "license": 2, "penalty_case": 3}
    jobs = [(f'ALTER TABLE {t} ADD CONSTRAINT "{n}" {d}', n, t) for t, n, d in s.keys]
    jobs += [(d, n, t) for t, n, d in s.indexes]
    jobs.sort(key=lambda j: (size.get(j[2], 9), "trgm" not in j[0]))
    queue: asyncio.Queue[tuple[str, str, str]] = asyncio.Queue()
    for j in jobs:
        queue.put_nowait(j)
    timings: list[tuple[str, float]] = []

    async def worker() -> None:
        conn = await asyncpg.connect(libpq(url))
        try:
            await conn.execute("SET maintenance_work_mem = '1GB'")
            await conn.execute("SET max_parallel_maintenance_workers = 0")  # two builds side by side instead
            while not queue.empty():
                sql, name, _ = queue.get_nowait()
                t0 = time.monotonic()
                await conn.execute(sql)
                timings.append((name, time.monotonic() - t0))
                log(f"  built {name} in {timings[-1][1]:.1f}s")
        finally:
            await conn.close()

    await asyncio.gather(*(worker() for _ in range(parallel)))
    conn = await asyncpg.connect(libpq(url))
    try:
        await conn.execute("SET maintenance_work_mem = '1GB'")
        for t, n, d in s.fkeys:
            t0 = time.monotonic()
            await conn.execute(f'ALTER TABLE {t} ADD CONSTRAINT "{n}" {d}')
            timings.append((n, time.monotonic() - t0))
            log(f"  validated {n} in {timings[-1][1]:.1f}s")
    finally:
        await conn.close()
    return timings


async def vacuum_analyze(url: str) -> None:
    async def one(tables: list[str]) -> None:
        conn = await asyncpg.connect(libpq(url))
        try:
            await conn.execute("SET maintenance_work_mem = '1GB'")
            for t in tables:
                await conn.execute(f"VACUUM (ANALYZE) {t}")
        finally:
            await conn.close()

    await asyncio.gather(one(["inspection"]), one(["enterprise", "license", "penalty_case", "region"]))


# --------------------------------------------------------------------------------------------------
# Row generation (runs in worker processes)
# --------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class County:
    code: str
    place: str
    full_name: str
    abbr: str


@dataclass(frozen=True)
class PartJob:
    url: str
    seed: int
    part: int
    start: int  # global enterprise index range [start, end)
    end: int
    as_of: date
    counties: tuple[County, ...]
    weights: tuple[float, ...]
    categories: tuple[tuple[str, tuple[tuple[str, str], ...]], ...]  # (code, ((sub code, sub name), ...))
    chunk: int


@dataclass
class Chunk:
    enterprises: list[tuple[Any, ...]] = field(default_factory=list)
    licenses: list[tuple[Any, ...]] = field(default_factory=list)
    inspections: list[tuple[Any, ...]] = field(default_factory=list)
    cases: list[tuple[Any, ...]] = field(default_factory=list)


def _cum(weights: tuple[float, ...] | list[float]) -> list[float]:
    out, total = [], 0.0
    for w in weights:
        total += w
        out.append(total)
    return out


def org_code(i: int) -> str:
    """A GB 11714 organisation code unique to the global index ``i`` (a bijection, so no collisions)."""
    if i % 5 < 3:  # new style: MA + 6 base-31 characters
        n = (i * 7_368_787) % 31 ** 6
        chars = []
        for _ in range(6):
            n, r = divmod(n, 31)
            chars.append(uscc_codes.CHARSET[r])
        body = "MA" + "".join(chars)
    else:  # old style: 8 digits
        body = str(10_000_000 + (i * 7_919) % 90_000_000)
    return body + demo.org_code_check(body)


class PartGenerator:
    def __init__(self, job: PartJob) -> None:
        self.job = job
        self.rng = random.Random(job.seed * 1_000 + job.part)
        rng = self.rng
        self.cum = _cum(job.weights)
        self.total = self.cum[-1]
        self.categories = job.categories
        self.cat_cum = _cum([demo.CATEGORY_WEIGHTS.get(c, 1.0) for c, _ in job.categories])
        self.n_cum = _cum(N_WEIGHTS)
        self.kind_cum = _cum(KIND_WEIGHTS)
        as_of = datetime(job.as_of.year, job.as_of.month, job.as_of.day, tzinfo=demo.CST)
        self.as_of_ts = as_of.timestamp()
        self.hist_start = self.as_of_ts - HISTORY_YEARS * 365 * 86400
        self.win_start = self.as_of_ts - INSPECTION_YEARS * 365 * 86400
        # Pools of pre-serialised JSON, so a row costs a few random draws, not a json.dumps.
        self.officer_pool = [json.dumps(rng.sample([demo.person_name(rng) for _ in range(4)], 2), ensure_ascii=False)
                             for _ in range(4000)]
        self.location_pool = [json.dumps({"lat": round(rng.uniform(21, 45), 5), "lng": round(rng.uniform(98, 125), 5)})
                              for _ in range(2000)]
        self.all_ok = demo.checks_json({})
        self.fail_licensed = [demo.checks_json({k: note}) for k, notes in demo.CHECK_NOTES.items() for note in notes]
        self.fail_unlicensed = [demo.checks_json({"licensed": "未取得生产许可证"})] * 4 + [
            demo.checks_json({"licensed": "未取得生产许可证", k: note})
            for k, notes in demo.CHECK_NOTES.items() for note in notes]
        self.samples_pass: dict[str, list[str]] = {}
        self.samples_fail: dict[str, list[tuple[str, str]]] = {}
        for code, products in job.categories:
            self.samples_pass[code] = [self._samples(code, products, failed=False)[0] for _ in range(40)]
            self.samples_fail[code] = [self._samples(code, products, failed=True) for _ in range(40)]
        self.trades = {code: [w for _, name in products for w in demo.TRADE_BY_PRODUCT.get(name, ())]
                       + list(demo.TRADE_WORDS.get(code, ("制造",))) for code, products in job.categories}
        self.names = [demo.person_name(rng) for _ in range(5000)]
        self.roads = [r + s for r in demo.ROAD_WORDS for s in demo.ROAD_SUFFIXES]

    def _samples(self, code: str, products: tuple[tuple[str, str], ...], *, failed: bool) -> tuple[str, str]:
        rng = self.rng
        out = []
        bad_items: list[str] = []
        for k in range(rng.choice((1, 1, 2, 3))):
            product = rng.choice(products)[1]
            passed = not (failed and k == 0)
            items = [] if passed else rng.sample(demo.FAILED_ITEMS.get(code, ("其他",)), k=rng.choice((1, 2)))
            bad_items += items
            out.append({"product": product, "batch": f"2026{rng.randint(1, 12):02d}{rng.randint(1, 28):02d}-"
                                                      f"{rng.randint(1, 30):02d}",
                        "standard": demo.STANDARDS.get(product), "lab": rng.choice(demo.LABS), "passed": passed,
                        "failed_items": items})
        checks = demo.checks_json({"no_safety_hazard": f"抽样检验不合格：{out[0]['product']}（{'、'.join(bad_items)}）"}
                                  if failed else {})
        return json.dumps(out, ensure_ascii=False), checks

    def chunks(self) -> Iterator[Chunk]:
        job, rng = self.job, self.rng
        random_, getrandbits = rng.random, rng.getrandbits
        bisect_ = bisect.bisect
        fromts, sha = datetime.fromtimestamp, hashlib.sha256

        def new_id() -> uuid.UUID:  # a version-4 UUID from the seeded generator (asyncpg's fast UUID type)
            return PgUUID(((getrandbits(128) & _UUID_MASK) | _UUID_V4).to_bytes(16, "big"))

        def choice(seq: Any) -> Any:
            return seq[int(random_() * len(seq))]
        counties, cum, total = job.counties, self.cum, self.total
        cats, cat_cum, cat_total = self.categories, self.cat_cum, self.cat_cum[-1]
        n_cum, n_total, kind_cum, kind_total = self.n_cum, self.n_cum[-1], self.kind_cum, self.kind_cum[-1]
        brands, names, roads, zones = demo.BRAND_WORDS, self.names, self.roads, demo.ZONES
        officers, locations = self.officer_pool, self.location_pool
        all_ok, fail_lic, fail_unlic = self.all_ok, self.fail_licensed, self.fail_unlicensed
        samples_pass, samples_fail = self.samples_pass, self.samples_fail
        as_of_ts, hist_start, win_start = self.as_of_ts, self.hist_start, self.win_start
        as_of = job.as_of
        national_cats = demo.NATIONAL_LICENCE_CATEGORIES
        chunk = Chunk()
        for gi in range(job.start, job.end):
            county = counties[bisect_(cum, random_() * total)]
            ccode = county.code
            cat, products = cats[bisect_(cat_cum, random_() * cat_total)]
            r = random_()
            size = "large" if r < 0.04 else "medium" if r < 0.20 else "small"
            r = random_()
            if size == "large":
                scenario = "licensed"
            elif size == "medium":
                scenario = "none" if r < 0.015 else "expired_only" if r < 0.025 else "licensed"
            else:
                scenario = "none" if r < 0.055 else "expired_only" if r < 0.075 else "licensed"
            licensed = scenario == "licensed"
            eid = new_id()
            code = uscc_codes.make("91" + ccode + org_code(gi))
            product_code, product_name = choice(products)
            trade = choice(self.trades[cat])
            suffix = ("股份有限公司" if size == "large" and random_() < 0.5 else "有限公司")
            name = f"{county.place}{choice(brands)}{trade}{suffix}"
            address = f"{county.full_name}{choice(zones)}{choice(roads)}{int(random_() * 999) + 1}号"
            created_ts = hist_start + random_() * (as_of_ts - hist_start - 86400)
            created = fromts(created_ts, UTC)
            chunk.enterprises.append((eid, code, name, choice(names), address, ccode, size, [cat, product_code],
                                      licensed, 1, created, created))
            # licences: unit and serial from the global index, so numbers are unique across parts
            unit, serial = divmod(gi, 100_000)
            national = cat in national_cats
            prefix = "" if national else f"{demo.LPAREN}{county.abbr}{demo.RPAREN}"
            level = "national" if national else "provincial"
            if scenario != "none":
                if scenario == "licensed":
                    issued = as_of - timedelta(days=30 + int(random_() * (5 * 365 - 60)))
                    status = "valid"
                else:
                    issued = as_of - timedelta(days=5 * 365 + 30 + int(random_() * 700))
                    status = "expired"
                expires = demo.add_years(issued, 5) - timedelta(days=1)
                lic_created = fromts(max(created_ts, issued_ts(issued)), UTC)
                chunk.licenses.append((new_id(), f"{prefix}XK{cat}-{unit + 1:03d}-{serial:05d}", eid, ccode, cat,
                                       issued, expires, level, status, 1, lic_created, lic_created))
                if licensed and random_() < 0.08:  # the expired licence this one renewed
                    old = issued - timedelta(days=5 * 365)
                    chunk.licenses.append((new_id(), f"{prefix}XK{cat}-{unit + 101:03d}-{serial:05d}", eid, ccode, cat, old,
                                           demo.add_years(old, 5) - timedelta(days=1), level, "expired", 1,
                                           lic_created, lic_created))
            # inspections over the last three years (after the enterprise entered the archive)
            first = created_ts if created_ts > win_start else win_start
            span = as_of_ts - 3600 - first
            for _ in range(N_INSPECTIONS[bisect_(n_cum, random_() * n_total)]):
                kind = KINDS[bisect_(kind_cum, random_() * kind_total)]
                at_ts = first + random_() * span
                at = fromts(at_ts, UTC)
                samples = "[]"
                if not licensed:
                    checks = choice(fail_unlic)
                elif kind == "spot_check":
                    if random_() < 0.10:
                        samples, checks = choice(samples_fail[cat])
                    else:
                        samples = choice(samples_pass[cat])
                        checks = all_ok if random_() >= 0.04 else choice(fail_lic)
                else:
                    checks = all_ok if random_() >= 0.08 else choice(fail_lic)
                ok = checks is all_ok
                iid = new_id()
                case_id = None
                created_i = fromts(at_ts + 300 + random_() * 7200, UTC)
                if not ok and random_() < 0.05:
                    case_id = new_id()
                    chunk.cases.append((case_id, eid, iid, ccode,
                                        "unlicensed_production" if not licensed else "nonconforming_products",
                                        "registered", False, None, 1, created_i, created_i))
                chunk.inspections.append((
                    iid, eid, ccode, kind, at, choice(officers), choice(locations) if random_() < 0.3 else None,
                    checks, samples, "compliant" if ok else "issues_found", None if ok else "责令限期整改", case_id,
                    sha(iid.bytes).hexdigest(), None, 1, created_i, created_i))
            if len(chunk.enterprises) >= job.chunk:
                yield chunk
                chunk = Chunk()
        if chunk.enterprises:
            yield chunk


def issued_ts(d: date) -> float:
    return datetime(d.year, d.month, d.day, 10, tzinfo=demo.CST).timestamp()


async def _load_part(job: PartJob) -> dict[str, float]:
    conn = await asyncpg.connect(libpq(job.url))
    counts = {"enterprise": 0, "license": 0, "inspection": 0, "penalty_case": 0}
    gen_s = copy_s = 0.0
    try:
        await conn.execute("SET synchronous_commit = off")
        await conn.execute("SET pqs.bulk_load = 'on'")  # campaign counters: rebuilt once after the load
        it = PartGenerator(job).chunks()
        while True:
            t0 = time.monotonic()
            chunk = next(it, None)
            gen_s += time.monotonic() - t0
            if chunk is None:
                break
            t0 = time.monotonic()
            for table, columns, rows in (
                ("enterprise", demo.ENTERPRISE_COLUMNS, chunk.enterprises),
                ("license", demo.LICENSE_COLUMNS, chunk.licenses),
                ("inspection", demo.INSPECTION_COLUMNS, chunk.inspections),
                ("penalty_case", demo.CASE_COLUMNS, chunk.cases),
            ):
                if rows:
                    await conn.copy_records_to_table(table, records=rows, columns=list(columns))
                    counts[table] += len(rows)
            copy_s += time.monotonic() - t0
    finally:
        await conn.close()
    return {**counts, "generate_s": gen_s, "copy_s": copy_s}


async def rebuild_campaigns(url: str) -> None:
    conn = await asyncpg.connect(libpq(url))
    try:
        await conn.execute("SET statement_timeout = 0")
        await conn.execute("SELECT pqs_rebuild_campaign(id) FROM campaign")
        await conn.execute("SELECT pqs_rebuild_key_facts()")  # the kept key-flag facts (migration 0020)
        await conn.execute("VACUUM (ANALYZE) campaign_enterprise")
        await conn.execute("VACUUM (ANALYZE) enterprise_key_facts")
        await conn.execute("VACUUM (ANALYZE) campaign_delta")
    finally:
        await conn.close()


def load_part(job: PartJob) -> dict[str, float]:
    return asyncio.run(_load_part(job))


async def read_counties(url: str) -> tuple[list[County], list[float], list[tuple[str, tuple[tuple[str, str], ...]]]]:
    conn = await asyncpg.connect(libpq(url))
    try:
        regions = await conn.fetch("SELECT code, name, full_name, level, parent_code FROM region")
        cats = await conn.fetch("SELECT code, name, parent_code FROM product_category WHERE key ORDER BY code")
    finally:
        await conn.close()
    names = {r["code"]: r["name"] for r in regions}
    rng = random.Random(7)  # county weights: fixed, independent of --seed
    counties, weights = [], []
    for r in sorted(regions, key=lambda r: r["code"]):
        prov = r["code"][:2]
        if r["level"] != "county" or prov not in PROVINCE_WEIGHTS:
            continue
        city = names.get(r["parent_code"], "")
        counties.append(County(code=r["code"], place=demo.place_name(r["name"], city), full_name=r["full_name"],
                               abbr=demo.PROVINCE_ABBRS[prov]))
        weights.append(PROVINCE_WEIGHTS[prov] * rng.lognormvariate(0, 0.8))
    categories = [(c["code"], tuple((s["code"], s["name"]) for s in cats if s["parent_code"] == c["code"]))
                  for c in cats if c["parent_code"] is None]
    return counties, weights, categories


# --------------------------------------------------------------------------------------------------
# Main
# --------------------------------------------------------------------------------------------------

def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    ap.add_argument("--enterprises", type=int, default=1_000_000)
    ap.add_argument("--seed", type=int, default=demo.DEFAULT_SEED)
    ap.add_argument("--as-of", type=date.fromisoformat, default=date(2026, 11, 28),
                    help="the data set's 'today' (licence expiry, inspection window)")
    ap.add_argument("--data-dir", type=Path, default=ROOT / "var" / "large",
                    help="embedded PostgreSQL under DATA_DIR/pgdata (ignored with --database-url)")
    ap.add_argument("--database", default=DATABASE, help="database name on the embedded server")
    ap.add_argument("--database-url", default=None, help="postgresql+asyncpg://... of an existing server instead")
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 2, help="loader processes")
    ap.add_argument("--parts", type=int, default=16, help="fixed split of the enterprise range (determinism)")
    ap.add_argument("--chunk", type=int, default=5_000, help="enterprises per COPY batch")
    ap.add_argument("--force", action="store_true", help="drop and regenerate an existing data set")
    args = ap.parse_args(argv)

    t_start = time.monotonic()
    phases: dict[str, float] = {}
    url = resolve_url(args)
    log(f"database {url}")
    existing = asyncio.run(enterprise_count(url))
    if existing:
        if not args.force:
            log(f"{args.database} already holds {existing} enterprises: nothing to do (--force regenerates it)")
            return 0
        from app.db import create_database_if_missing, drop_database

        log(f"dropping {args.database} (--force)")
        asyncio.run(drop_database(url))
        asyncio.run(create_database_if_missing(url))
    if not args.database_url:
        asyncio.run(tune_server(url))

    from app.migrations import upgrade

    t0 = time.monotonic()
    upgrade(url)
    asyncio.run(load_reference(url))
    phases["migrate_and_reference_s"] = time.monotonic() - t0
    counties, weights, categories = asyncio.run(read_counties(url))
    log(f"{len(counties)} counties in {len({c.code[:2] for c in counties})} provinces, {len(categories)} categories")

    async def drop() -> Schema:
        conn = await asyncpg.connect(libpq(url))
        try:
            return await drop_schema_objects(conn)
        finally:
            await conn.close()

    schema = asyncio.run(drop())
    log(f"dropped {len(schema.fkeys)} foreign keys, {len(schema.keys)} keys and {len(schema.indexes)} indexes "
        "for the load")

    t0 = time.monotonic()
    per = -(-args.enterprises // args.parts)
    jobs = [PartJob(url=url, seed=args.seed, part=p, start=p * per, end=min((p + 1) * per, args.enterprises),
                    as_of=args.as_of, counties=tuple(counties), weights=tuple(weights),
                    categories=tuple(categories), chunk=args.chunk)
            for p in range(args.parts) if p * per < args.enterprises]
    totals: dict[str, float] = {}
    log(f"loading {args.enterprises} enterprises in {len(jobs)} parts with {args.workers} processes")
    ctx = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(args.workers, mp_context=ctx) as pool:
        for n, res in enumerate(pool.map(load_part, jobs), start=1):
            for k, v in res.items():
                totals[k] = totals.get(k, 0) + v
            log(f"  part {n}/{len(jobs)} done: {int(totals['enterprise'])} enterprises, "
                f"{int(totals['inspection'])} inspections so far ({time.monotonic() - t0:.0f}s)")
    phases["copy_s"] = time.monotonic() - t0

    t0 = time.monotonic()
    log("recreating keys and indexes")
    index_timings = asyncio.run(recreate_schema_objects(url, schema, parallel=2))
    phases["indexes_s"] = time.monotonic() - t0
    t0 = time.monotonic()
    log("VACUUM ANALYZE")
    asyncio.run(vacuum_analyze(url))
    t0 = time.monotonic()
    log("rebuilding the campaign counters")
    asyncio.run(rebuild_campaigns(url))
    phases["campaign_rebuild_s"] = time.monotonic() - t0
    phases["vacuum_analyze_s"] = time.monotonic() - t0
    phases["total_s"] = time.monotonic() - t_start

    async def sizes() -> dict[str, str]:
        conn = await asyncpg.connect(libpq(url))
        try:
            return {t: await conn.fetchval("SELECT pg_size_pretty(pg_total_relation_size($1::regclass))", t)
                    for t in (*TABLES, )} | {"database": await conn.fetchval(
                        "SELECT pg_size_pretty(pg_database_size(current_database()))")}
        finally:
            await conn.close()

    size = asyncio.run(sizes())
    counts = {k: int(totals.get(k, 0)) for k in TABLES}
    summary = {"database": args.database, "seed": args.seed, "as_of": args.as_of.isoformat(), "counts": counts,
               "phases_s": {k: round(v, 1) for k, v in phases.items()},
               "worker_generate_s": round(totals.get("generate_s", 0), 1),
               "worker_copy_s": round(totals.get("copy_s", 0), 1),
               "index_build_s": {n: round(s, 1) for n, s in index_timings}, "sizes": size,
               "workers": args.workers, "cpus": os.cpu_count()}
    out = args.data_dir / "generate.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(summary, indent=2, ensure_ascii=False))
    print()
    print(f"rows: {counts}")
    print(f"sizes: {size}")
    print("timings: " + ", ".join(f"{k} {v:.1f}s" for k, v in phases.items())
          + f"  (inside the loaders: generating {totals.get('generate_s', 0):.0f}s, COPY {totals.get('copy_s', 0):.0f}s,"
            f" summed over {args.workers} processes)")
    print(f"COPY rate: {sum(counts.values()) / phases['copy_s']:.0f} rows/s; summary in {out.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
