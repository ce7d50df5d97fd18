"""Every operation of the API (but the token endpoint and logout) fed what schemathesis generates from
its own docs, valid and invalid, as the national admin and as a county officer: no answer is a 500,
and every answer has a documented status, content type and headers, a body its schema allows, and a
405 names every method of its path.

The service runs here as in production (its lifespan, a pooled engine, the principal cache) on a
database of its own, in a thread with its own event loop; schemathesis runs in a process of its own
against it, with a fixed seed: each run sends the same requests. Its first runs found a 405 naming one
method of two (and for /inspections/batch, those of /inspections/{inspection_id}), a body it could
not decode answered with an undocumented 400, creates without their 409, and a replayed create
missing a field its docs required."""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import uvicorn
from sqlalchemy.engine import make_url

from app.cli import prepare
from app.config import get_settings
from app.db import create_database_if_missing, drop_database
from app.main import create_app
from tests.conftest import ADMIN_PASSWORD, bearer
from tests.test_migrations import with_database

SCHEMATHESIS = Path(sys.executable).parent / "st"
CHECKS = ("not_a_server_error,status_code_conformance,content_type_conformance,response_headers_conformance,"
          "response_schema_conformance,allow_header_conformance")
# One worker: hypothesis describes its strategies by parsing their source, and CPython 3.11's parser
# run from two threads at once fails now and then ("AST constructor recursion depth mismatch").
# Left out: logging out and the token endpoint would end the run's own session (and trip the login
# throttle). Not checked: a schema-valid request refused (business rules the schema cannot state:
# an opaque cursor, a jurisdiction); a missing body refused with a 412 before a 422 (RFC 9110
# §13.2.1 lets a server evaluate preconditions before it reads the content).
EXCLUDED_PATHS = r"/auth/(token|logout)$"
OFFICER_PASSWORD = "correct-horse-battery"


@pytest.fixture(scope="module")
def service(database_url: str) -> Iterator[str]:
    """The service on a fresh database of its own; yields its base URL."""
    url = with_database(database_url, make_url(database_url).database + "_fuzz")
    # the public API's per-address limit would answer nearly all of its generated requests with a 429
    settings = get_settings().model_copy(update={"database_url": url, "public_rate_limit": "100000/minute"})
    # a free port (another process could take it before uvicorn binds it: then the fixture fails to start;
    # handing uvicorn the bound socket instead made the run three times slower)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    server = uvicorn.Server(uvicorn.Config(create_app(settings), host="127.0.0.1", port=port, log_level="warning",
                                           access_log=False))
    failed: list[BaseException] = []

    async def fresh() -> None:
        await drop_database(url)
        await create_database_if_missing(url)

    def thread_main() -> None:  # each asyncio.run a loop of this thread's own
        try:
            asyncio.run(fresh())
            try:
                prepare(settings)  # migrations, reference data, the bootstrap admin, as `make run` does
                asyncio.run(server.serve())
            finally:
                asyncio.run(drop_database(url))
        except BaseException as exc:  # reported by the fixture, not lost in the thread
            failed.append(exc)

    thread = threading.Thread(target=thread_main, name="fuzz-service", daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 300  # migrations and reference data on a busy machine
        while not server.started:
            if failed:
                raise failed[0]
            assert thread.is_alive() and time.monotonic() < deadline, "the service did not come up"
            time.sleep(0.1)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=60)
        assert not thread.is_alive(), "the service did not stop"
        if failed:
            raise failed[0]


def _token(base: str, username: str, password: str) -> str:
    r = httpx.post(f"{base}/api/v1/auth/token", data={"grant_type": "password", "username": username,
                                                      "password": password})
    assert r.status_code == 200, r.text
    token: str = r.json()["access_token"]
    return token


def _schemathesis(base: str, token: str, *args: str, workdir: Path) -> None:
    # its working folder takes the replay files of what it found (`st replay <id>`)
    command = [str(SCHEMATHESIS), "run", f"{base}/openapi.json", "--header", f"Authorization: Bearer {token}",
               "--checks", CHECKS, "--exclude-path-regex", EXCLUDED_PATHS, "--seed", "20261129",
               "--generation-database", "none", "--no-color", "--workers", "1", "--suppress-health-check", "all",
               "--warnings", "off", *args]
    try:
        run = subprocess.run(command, capture_output=True, text=True, timeout=540, check=False,  # noqa: S603
                             cwd=workdir)  # the venv's own schemathesis, arguments built here
    except subprocess.TimeoutExpired as exc:
        so_far = exc.stdout.decode(errors="replace") if isinstance(exc.stdout, bytes) else exc.stdout or ""
        pytest.fail(f"schemathesis ran out of time; its output so far:\n{so_far[-20000:]}")
    out = run.stdout + run.stderr
    failures = out[out.find("FAILURES"):] if "FAILURES" in out else out[-6000:]
    assert run.returncode == 0, f"schemathesis found failures (replay files in {workdir}):\n{failures[:20000]}"
    assert " passed" in out, out[-3000:]


def test_every_operation_as_the_national_admin(service: str, tmp_path: Path) -> None:
    _schemathesis(service, _token(service, "admin", ADMIN_PASSWORD), "--phases", "examples,coverage,fuzzing",
                  "--max-examples", "15", workdir=tmp_path)


def test_every_operation_as_a_county_officer(service: str, tmp_path: Path) -> None:
    admin = _token(service, "admin", ADMIN_PASSWORD)
    username = f"fuzz.officer.{uuid.uuid4().hex[:8]}"  # the module's database outlives a rerun of this test
    r = httpx.post(f"{service}/api/v1/users", headers=bearer(admin),
                   json={"username": username, "password": OFFICER_PASSWORD, "display_name": "fuzz",
                         "region_code": "330106", "roles": ["officer", "inspector"]})
    assert r.status_code == 201, r.text
    _schemathesis(service, _token(service, username, OFFICER_PASSWORD), "--phases", "fuzzing",
                  "--max-examples", "10", workdir=tmp_path)
