"""Offline-docs check in a real headless browser (a manual check, not part of `make test`).

Opens /docs (Swagger UI) and /redoc in Debian's Chromium with every request that is not to the
service's own host blocked, which proves the pages need no CDN. On /docs it checks that the
operation list renders, logs in through **Authorize** (password grant, as admin), closes the dialog,
runs **Try it out** -> **Execute** on GET /api/v1/me and checks the answer is 200 with the username.
Screenshots go to var/docs-check/*.png. Exit status 0 = every check passed, 1 = a check failed,
2 = something needed is missing. A request to another host that the pages make but do not need
(ReDoc's bundle fetches its "API docs by Redocly" logo from cdn.redoc.ly) is blocked and reported as
a warning; --strict-offline makes it a failure.

Needs, once (neither is a dependency of the service):
    apt-get update && apt-get install -y chromium      # done by this script when /usr/bin/chromium is missing
    .venv/bin/pip install playwright                  # no `playwright install`: it drives /usr/bin/chromium

Usage:
    .venv/bin/python scripts/check_docs_browser.py                 # starts the service on var/docs-check
    .venv/bin/python scripts/check_docs_browser.py --base-url http://127.0.0.1:8000 --password admin-change-me
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "var" / "docs-check"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
API_TITLE = "Product Quality-Safety Regulator API"
ME_PATH = "/api/v1/me"


def say(msg: str) -> None:
    print(f"[docs-check {time.strftime('%H:%M:%S')}] {msg}", flush=True)


def ensure_chromium() -> None:
    if os.access(CHROMIUM, os.X_OK):
        return
    say(f"{CHROMIUM} is missing: installing Debian's chromium (apt-get update; apt-get install -y chromium)")
    sudo = [] if os.geteuid() == 0 else ["sudo"]
    subprocess.run([*sudo, "apt-get", "update"], check=True)  # noqa: S603
    subprocess.run([*sudo, "apt-get", "install", "-y", "chromium"], check=True)  # noqa: S603
    if not os.access(CHROMIUM, os.X_OK):
        raise SystemExit(f"{CHROMIUM} still missing after apt-get install chromium")


def import_playwright() -> Any:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        print("Python Playwright is not installed. It is a tool of this manual check only, not a dependency\n"
              "of the service; install it into the virtualenv with:\n\n"
              "    .venv/bin/pip install playwright\n\n"
              f"(`playwright install` is not needed: the check drives {CHROMIUM}.)", file=sys.stderr)
        raise SystemExit(2) from None
    return sync_playwright


class Checks:
    def __init__(self, page: Any) -> None:
        self.page = page
        self.passed: list[str] = []
        self.shots: list[Path] = []

    def shot(self, name: str, *, full_page: bool = False, locator: Any = None) -> None:
        path = OUT / f"{name}.png"
        if locator is not None:
            locator.screenshot(path=str(path))
        else:
            self.page.screenshot(path=str(path), full_page=full_page)
        self.shots.append(path)

    def step(self, name: str, fn: Callable[[], str | None]) -> None:
        detail = fn()
        self.passed.append(name)
        say(f"PASS {name}" + (f": {detail}" if detail else ""))


def run_checks(base_url: str, password: str, username: str, timeout_ms: int, *,
               strict_offline: bool = False) -> int:
    sync_playwright = import_playwright()
    allowed_host = urlsplit(base_url).hostname
    blocked: list[str] = []
    page_errors: list[str] = []
    me_requests: list[dict[str, str]] = []
    OUT.mkdir(parents=True, exist_ok=True)
    for old in OUT.glob("*.png"):
        old.unlink()

    def guard(route: Any, request: Any) -> None:
        if urlsplit(request.url).hostname == allowed_host:
            route.continue_()
        else:
            blocked.append(request.url)
            route.abort("blockedbyclient")

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        context = browser.new_context(viewport={"width": 1400, "height": 1000})
        context.route("**/*", guard)
        page = context.new_page()
        page.set_default_timeout(timeout_ms)
        page.on("pageerror", lambda exc: page_errors.append(str(exc)))
        page.on("request", lambda r: me_requests.append(dict(r.headers)) if urlsplit(r.url).path == ME_PATH else None)
        checks = Checks(page)
        say(f"browser: {browser.version} ({CHROMIUM}); only requests to {allowed_host} are let through")
        try:
            def docs_render() -> str:
                page.goto(base_url + "/docs", wait_until="load")
                page.locator(".swagger-ui .info .title").filter(has_text=API_TITLE).wait_for()
                page.locator(".swagger-ui .opblock").first.wait_for()
                n = page.locator(".swagger-ui .opblock").count()
                assert n >= 5, f"only {n} operations listed"
                checks.shot("01-docs")
                return f"{n} operations listed"
            checks.step("Swagger UI renders the operation list", docs_render)

            def authorize() -> str:
                page.locator(".auth-wrapper button.authorize").click()
                modal = page.locator(".dialog-ux .modal-ux")
                modal.wait_for()
                # the dialog lists every scheme (HTTP Basic for client credentials too): use the OAuth2 one
                form = modal.locator(".auth-container").filter(has_text="OAuth2PasswordBearer")
                form.locator("#oauth_username").fill(username)
                form.locator("#oauth_password").fill(password)
                form.scroll_into_view_if_needed()
                checks.shot("02-authorize-dialog")
                form.locator("button.modal-btn.authorize").click()
                logout = form.locator("button.modal-btn", has_text="Logout")
                error = form.locator(".errors")
                logout.or_(error).first.wait_for()
                if error.count() and error.first.is_visible():
                    raise AssertionError(f"Authorize failed: {error.first.inner_text()}")
                checks.shot("03-authorized")
                form.locator("button.btn-done").click()
                modal.wait_for(state="detached")
                return f"logged in as {username}; dialog closed"
            checks.step("Authorize (password grant) and close the dialog", authorize)

            def try_me() -> str:
                op = page.locator(".opblock.opblock-get").filter(
                    has=page.locator(f'.opblock-summary-path[data-path="{ME_PATH}"]'))
                op.locator(".opblock-summary").first.click()
                op.locator("button.try-out__btn").click()
                op.locator("button.execute").click()
                live = op.locator(".live-responses-table tr.response")  # the server's answer, not the header
                status = live.locator("td.response-col_status").first
                status.wait_for()
                body = live.locator(".response-col_description pre").first
                body.wait_for()
                status_text, body_text = status.inner_text().strip(), body.inner_text()
                op.scroll_into_view_if_needed()
                checks.shot("04-try-it-out-me", locator=op)
                assert status_text.startswith("200"), f"GET {ME_PATH} answered {status_text}: {body_text[:300]}"
                assert f'"username": "{username}"' in body_text, f"username not in the response: {body_text[:300]}"
                sent = me_requests[-1] if me_requests else {}
                assert sent.get("authorization", "").startswith("Bearer "), "no bearer token was sent"
                return f"status {status_text}, body shows \"username\": \"{username}\" (sent with a bearer token)"
            checks.step(f"Try it out -> Execute on GET {ME_PATH}", try_me)

            def redoc() -> str:
                page.goto(base_url + "/redoc", wait_until="load")
                page.locator(".api-content h1").filter(has_text=API_TITLE).wait_for()
                items = page.locator(".menu-content li")
                items.first.wait_for()
                n = items.count()
                assert n >= 5, f"only {n} menu entries"
                page.locator(".api-content").get_by_text(ME_PATH).first.wait_for(state="attached")
                checks.shot("05-redoc")
                return f"{n} menu entries; {ME_PATH} documented"
            checks.step("ReDoc renders", redoc)
        except Exception as exc:  # noqa: BLE001 - report any failure with a screenshot
            with_shot = OUT / "99-failure.png"
            try:
                page.screenshot(path=str(with_shot), full_page=True)
            except Exception:  # noqa: BLE001
                with_shot = None  # type: ignore[assignment]
            say(f"FAIL: {type(exc).__name__}: {exc}")
            traceback.print_exc(limit=3)
            if with_shot:
                say(f"screenshot of the failure: {with_shot}")
            browser.close()
            _report_network(blocked, page_errors)
            return 1
        browser.close()

    _report_network(blocked, page_errors)
    if blocked:
        if strict_offline:
            say("FAIL (--strict-offline): the pages tried to reach other hosts, although they worked without them")
            return 1
        say("WARNING: the pages tried to reach the hosts above; they were blocked and every check still "
            "passed, so none is needed (use --strict-offline to make this a failure)")
    say(f"all {len(checks.passed)} checks passed; screenshots: " + ", ".join(
        str(p.relative_to(ROOT)) for p in checks.shots))
    return 0


def _report_network(blocked: list[str], page_errors: list[str]) -> None:
    if blocked:
        say(f"{len(blocked)} request(s) to other hosts were blocked:")
        for url in sorted(set(blocked)):
            print(f"    {url}")
    else:
        say("no request to any other host was attempted (no CDN needed)")
    for err in page_errors:
        say(f"JavaScript error on the page: {err}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--base-url", help="check a running service instead of starting one (e.g. http://127.0.0.1:8000)")
    ap.add_argument("--username", default="admin")
    ap.add_argument("--password", default=os.environ.get("APP_BOOTSTRAP_ADMIN_PASSWORD", "admin-change-me"),
                    help="the admin's password (default: $APP_BOOTSTRAP_ADMIN_PASSWORD or the dev default)")
    ap.add_argument("--data-dir", type=Path, default=OUT,
                    help="APP_DATA_DIR of the service this script starts (its own embedded PostgreSQL)")
    ap.add_argument("--timeout", type=float, default=30.0, help="seconds to wait for each page element")
    ap.add_argument("--strict-offline", action="store_true",
                    help="fail when a page even tries to reach another host (by default a warning)")
    args = ap.parse_args(argv)

    import_playwright()  # fail early, with the install hint
    ensure_chromium()
    timeout_ms = int(args.timeout * 1000)
    if args.base_url:
        return run_checks(args.base_url.rstrip("/"), args.password, args.username, timeout_ms,
                          strict_offline=args.strict_offline)

    sys.path.insert(0, str(ROOT))
    from bench.bench_foundation import Service  # the benchmark's start/stop (and postgres clean-up)

    svc = Service(args.data_dir, workers=1, admin_password=args.password)
    say(f"starting the service on {svc.base_url} (data {svc.data_dir}, log {svc.log_path})")
    with svc:
        say("service ready")
        rc = run_checks(svc.base_url, args.password, args.username, timeout_ms,
                        strict_offline=args.strict_offline)
        say("stopping the service")
    left = svc.postgres_pids()
    say("service stopped; " + ("no postgres left running" if not left else f"POSTGRES STILL RUNNING: {left}"))
    return rc or (1 if left else 0)


if __name__ == "__main__":
    raise SystemExit(main())
