"""Operations endpoints, request ids, offline docs."""

import re

from tests.conftest import bearer


async def test_healthz_is_ok_without_authentication(client):
    r = await client.get("/healthz")
    assert r.status_code == 200 and r.json() == {"status": "ok"}


async def test_readyz_reports_the_migration_head(client, app):
    r = await client.get("/readyz")
    assert r.status_code == 200
    assert r.json() == {"status": "ok", "migration": app.state.migration_head}


async def test_readyz_is_503_when_the_schema_is_behind(client, app, connection):
    from sqlalchemy import text

    await connection.execute(text("UPDATE alembic_version SET version_num = 'old'"))
    r = await client.get("/readyz")
    assert r.status_code == 503
    assert r.json()["reason"] == "migrations pending"


async def test_metrics_are_prometheus_text_counting_requests(client, admin_token):
    await client.get("/api/v1/me", headers=bearer(admin_token))
    r = await client.get("/metrics")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/plain")
    assert re.search(r'http_requests_total\{.*handler="/api/v1/me".*\} [1-9]', r.text)


async def test_every_response_carries_a_request_id_and_keeps_a_given_one(client):
    r = await client.get("/healthz")
    assert re.fullmatch(r"[0-9a-f]{32}", r.headers["x-request-id"])
    given = "0123456789abcdef0123456789abcdef"
    r = await client.get("/healthz", headers={"X-Request-ID": given})
    assert r.headers["x-request-id"] == given


async def test_docs_pages_load_their_assets_from_this_server_not_a_cdn(client):
    for page in ("/docs", "/redoc"):
        html = (await client.get(page)).text
        urls = re.findall(r'(?:src|href)="([^"]+)"', html) + re.findall(r"url: '([^']+)'", html)
        scripts = [u for u in urls if u.endswith((".js", ".css"))]
        assert scripts, page
        for url in scripts:
            assert url.startswith("/"), f"{page} loads {url} from elsewhere"
            asset = await client.get(url)
            assert asset.status_code == 200 and len(asset.content) > 1000


async def test_openapi_documents_problems_and_idempotency_keys(client):
    spec = (await client.get("/openapi.json")).json()
    assert "Problem" in spec["components"]["schemas"]
    create = spec["paths"]["/api/v1/users"]["post"]
    assert any(p["name"] == "Idempotency-Key" for p in create["parameters"])
    assert "application/problem+json" in create["responses"]["403"]["content"]
    patch = spec["paths"]["/api/v1/users/{user_id}"]["patch"]
    assert {"412", "428"} <= set(patch["responses"])
    assert spec["components"]["securitySchemes"]["OAuth2PasswordBearer"]["flows"]["password"]["tokenUrl"] == (
        "/api/v1/auth/token")
