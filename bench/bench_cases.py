"""Case lifecycle and webhook outbox benchmarks (issue 4, "Done means").

`make bench-cases` (or `.venv/bin/python bench/bench_cases.py --help`):

1. starts the service (`python -m app.cli serve --no-demo`, 2 workers) on its own embedded PostgreSQL
   under var/bench-cases, with the in-service delivery worker OFF so notifications queue up;
2. creates a county's inspector, officer and leader, licensed enterprises, and a machine client of
   the market regulator subscribed to a local webhook receiver (a small uvicorn app in this
   process's child that checks every signature and counts distinct event ids);
3. runs the full case lifecycle with 16 concurrent clients for --duration seconds: file → investigate
   → seal goods → propose a fine → approve → record execution → release the goods → close (8 requests
   with If-Match each), and reports lifecycles/s, requests/s and the p50/p99 of the requests;
4. starts `python -m app.cli deliver` (the delivery worker as its own process) and measures how fast
   the queued deliveries (one per decided case to the market regulator) reach the receiver:
   deliveries/s, and that every event arrived exactly once with a valid signature.
Results go to bench/results/.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT))

from bench_foundation import (  # noqa: E402
    DEFAULT_ADMIN_PASSWORD,
    RESULTS,
    Service,
    free_port,
    log,
    login,
    service_python,
)

from app.services import uscc  # noqa: E402

COUNTY = "330106"
BASIS = "《国务院关于加强食品等产品安全监督管理的特别规定》第三条"
RECEIVER = r'''
import hashlib, hmac, json, os, sys
secret = os.environ["SECRET"].encode()
import time
seen, calls, bad, span = set(), [0], [0], [None, None]

async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    body = b""
    while True:
        m = await receive()
        body += m.get("body", b"")
        if not m.get("more_body"):
            break
    if scope["path"] == "/count":
        out = json.dumps({"distinct": len(seen), "calls": calls[0], "bad_signatures": bad[0],
                          "first": span[0], "last": span[1]}).encode()
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json")]})
        await send({"type": "http.response.body", "body": out})
        return
    h = dict(scope["headers"])
    calls[0] += 1
    want = "sha256=" + hmac.new(secret, h[b"x-timestamp"] + b"." + body, hashlib.sha256).hexdigest()
    if not hmac.compare_digest(want.encode(), h.get(b"x-signature", b"")):
        bad[0] += 1
        await send({"type": "http.response.start", "status": 401, "headers": []})
    else:
        seen.add(h[b"x-event-id"])
        span[0] = span[0] or time.time()
        span[1] = time.time()
        await send({"type": "http.response.start", "status": 204, "headers": []})
    await send({"type": "http.response.body", "body": b""})
'''


def bearer(token: str, version: int | None = None) -> dict[str, str]:
    h = {"Authorization": f"Bearer {token}"}
    if version is not None:
        h["If-Match"] = f'"{version}"'
    return h


def setup(base: str, admin: str, enterprises: int) -> dict[str, Any]:
    with httpx.Client(base_url=base, timeout=60.0) as c:
        tokens = {}
        for role in ("inspector", "officer", "leader"):
            name = f"bench.{role}.{int(time.time())}"
            r = c.post("/api/v1/users", headers=bearer(admin), json={
                "username": name, "password": "bench-password-123", "display_name": name,
                "region_code": COUNTY, "roles": [role]})
            r.raise_for_status()
            r = c.post("/api/v1/auth/token", data={"grant_type": "password", "username": name,
                                                   "password": "bench-password-123"})
            r.raise_for_status()
            tokens[role] = r.json()["access_token"]
        ents = []
        stamp = int(time.time()) % 10_000_000
        for i in range(enterprises):
            code = uscc.make(f"91{COUNTY}MA{(stamp + i) % 10_000_000:07d}")
            r = c.post("/api/v1/enterprises", headers=bearer(admin), json={
                "uscc": code, "name": f"基准电线厂{i}", "region_code": COUNTY, "size": "small"})
            if r.status_code == 409:
                continue
            r.raise_for_status()
            ents.append(r.json()["id"])
        r = c.post("/api/v1/service-accounts", headers=bearer(admin), json={
            "name": "bench market regulator", "region_code": "330000", "agency": "market_regulator",
            "scopes": ["notifications:read", "events:read"]})
        r.raise_for_status()
        sa = r.json()
        r = c.post("/api/v1/auth/token", data={"grant_type": "client_credentials", "client_id": sa["client_id"],
                                               "client_secret": sa["client_secret"]})
        r.raise_for_status()
        return {"tokens": tokens, "enterprises": ents, "machine": r.json()["access_token"]}


async def lifecycle_load(base: str, world: dict[str, Any], clients: int, duration: float) -> dict[str, Any]:
    t = world["tokens"]
    latencies: list[float] = []
    done = [0]
    errors: list[str] = []
    stop = time.monotonic() + duration

    async def step(c: httpx.AsyncClient, token: str, case: dict[str, Any] | None, path: str,
                   body: dict[str, Any]) -> dict[str, Any]:
        t0 = time.perf_counter()
        r = await c.post(path, json=body, headers=bearer(token, case["version"] if case else None))
        latencies.append((time.perf_counter() - t0) * 1000)
        if r.status_code not in (200, 201):
            raise RuntimeError(f"{path}: {r.status_code} {r.text[:200]}")
        out: dict[str, Any] = r.json()
        return out

    async def one_client(n: int) -> None:
        async with httpx.AsyncClient(base_url=base, timeout=60.0) as c:
            i = n
            while time.monotonic() < stop:
                ent = world["enterprises"][i % len(world["enterprises"])]
                i += clients
                try:
                    case = await step(c, t["inspector"], None, "/api/v1/cases",
                                      {"enterprise_id": ent, "kind": "nonconforming_products"})
                    a = f"/api/v1/cases/{case['id']}/actions/"
                    case = await step(c, t["inspector"], case, a + "investigate", {})
                    case = await step(c, t["inspector"], case, a + "add_measure", {
                        "type": "seal_goods", "legal_basis": BASIS,
                        "items": [{"name": "电线", "quantity": "10", "unit": "卷"}]})
                    seal = case["measures"][0]["id"]
                    case = await step(c, t["officer"], case, a + "propose_decision", {"penalties": [
                        {"type": "fine", "amount": "10000.00", "legal_basis": BASIS}]})
                    case = await step(c, t["leader"], case, a + "approve", {"comment": "同意"})
                    case = await step(c, t["inspector"], case, a + "record_execution", {})
                    case = await step(c, t["inspector"], case, a + "add_measure",
                                      {"type": "release", "releases": seal, "legal_basis": BASIS})
                    case = await step(c, t["officer"], case, a + "close", {})
                    done[0] += 1
                except RuntimeError as exc:
                    errors.append(str(exc))
                    if len(errors) > 20:
                        raise

    t0 = time.monotonic()
    await asyncio.gather(*(one_client(n) for n in range(clients)))
    elapsed = time.monotonic() - t0
    q = statistics.quantiles(latencies, n=100) if len(latencies) > 1 else [0.0] * 99
    return {"clients": clients, "seconds": round(elapsed, 1), "lifecycles": done[0],
            "lifecycles_per_s": round(done[0] / elapsed, 2), "requests": len(latencies),
            "requests_per_s": round(len(latencies) / elapsed, 1), "p50_ms": round(q[49], 1),
            "p99_ms": round(q[98], 1), "errors": errors[:5]}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data-dir", type=Path, default=ROOT / "var" / "bench-cases")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--clients", type=int, default=16)
    ap.add_argument("--duration", type=float, default=30.0)
    ap.add_argument("--enterprises", type=int, default=200)
    args = ap.parse_args(argv)
    tag = f"{dt.datetime.now():%Y%m%d-%H%M%S}-cases"
    password = os.environ.get("APP_BOOTSTRAP_ADMIN_PASSWORD", DEFAULT_ADMIN_PASSWORD)
    svc = Service(args.data_dir, workers=args.workers, admin_password=password,
                  extra_env={"APP_RUN_DELIVERY_WORKER": "false", "APP_ACCESS_TOKEN_TTL_SECONDS": "7200"})
    summary: dict[str, Any] = {"when": tag, "workers": args.workers}
    log(f"starting the service ({args.workers} workers, delivery worker off; log {svc.log_path})")
    with svc:
        admin = login(svc.base_url, password)
        world = setup(svc.base_url, admin, args.enterprises)
        port = free_port()
        receiver_py = args.data_dir / "receiver.py"
        receiver_py.write_text(RECEIVER)
        with httpx.Client(base_url=svc.base_url, timeout=30.0) as c:
            r = c.post("/api/v1/webhooks", headers=bearer(world["machine"]),
                       json={"url": f"http://127.0.0.1:{port}/hook"})
            r.raise_for_status()
            secret = r.json()["secret"]
        log(f"lifecycle: {args.clients} clients for {args.duration:.0f}s")
        summary["lifecycle"] = asyncio.run(lifecycle_load(svc.base_url, world, args.clients, args.duration))
        log(json.dumps(summary["lifecycle"], ensure_ascii=False))
        queued = summary["lifecycle"]["lifecycles"]
        receiver = subprocess.Popen(
            [service_python(), "-m", "uvicorn", "receiver:app", "--port", str(port), "--no-access-log",
             "--log-level", "warning", "--app-dir", str(args.data_dir)],
            env={**os.environ, "SECRET": secret})
        try:
            for _ in range(100):
                try:
                    httpx.get(f"http://127.0.0.1:{port}/count", timeout=1).raise_for_status()
                    break
                except httpx.HTTPError:
                    time.sleep(0.1)
            env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL",)}
            env.update({"APP_DATA_DIR": str(svc.data_dir), "APP_ENV": "dev"})
            log(f"delivering {queued} queued notifications with `python -m app.cli deliver`")
            t0 = time.monotonic()
            worker = subprocess.Popen([service_python(), "-m", "app.cli", "deliver"], cwd=ROOT, env=env,
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            try:
                got: dict[str, Any] = {}
                while time.monotonic() - t0 < 300:
                    got = httpx.get(f"http://127.0.0.1:{port}/count", timeout=5).json()
                    if got["distinct"] >= queued:
                        break
                    time.sleep(0.05)
                elapsed = time.monotonic() - t0
            finally:
                worker.terminate()
                worker.wait(30)
            n = got.get("distinct", 0)
            busy = (got["last"] - got["first"]) if n > 1 else 0.0
            summary["outbox"] = {"deliveries": n, "seconds_with_worker_start": round(elapsed, 2),
                                 "seconds_first_to_last": round(busy, 2),
                                 "deliveries_per_s": round((n - 1) / busy, 1) if busy else None,
                                 "receiver_calls": got.get("calls"), "bad_signatures": got.get("bad_signatures")}
            log(json.dumps(summary["outbox"]))
        finally:
            receiver.terminate()
            receiver.wait(10)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{tag}-summary.json").write_text(json.dumps(summary, ensure_ascii=False, indent=2))
    lc, ob = summary["lifecycle"], summary.get("outbox", {})
    print()
    print(f"case lifecycle (8 requests each), {lc['clients']} concurrent clients, {args.workers} workers, "
          f"{os.cpu_count()} CPUs shared with PostgreSQL and the clients:")
    print(f"  {lc['lifecycles_per_s']} lifecycles/s ({lc['lifecycles']} in {lc['seconds']} s), "
          f"{lc['requests_per_s']} requests/s, p50 {lc['p50_ms']} ms, p99 {lc['p99_ms']} ms, errors {lc['errors']}")
    print(f"outbox: {ob.get('deliveries')} deliveries, first to last in {ob.get('seconds_first_to_last')} s = "
          f"{ob.get('deliveries_per_s')}/s to a local receiver ({ob.get('seconds_with_worker_start')} s with the "
          f"worker process's start-up; calls {ob.get('receiver_calls')}, bad signatures {ob.get('bad_signatures')})")
    print(f"saved bench/results/{tag}-summary.json")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
