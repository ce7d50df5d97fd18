"""Operations endpoints, request ids, offline docs."""

import gc
import json
import re

from app.main import ROUTERS_BY_TRAFFIC
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


async def test_metrics_label_requests_by_route_template_and_status_class(client, admin_token):
    def count(metrics: str, **labels: str) -> float:
        for line in metrics.splitlines():
            if line.startswith("http_requests_total{") and all(f'{k}="{v}"' in line for k, v in labels.items()):
                return float(line.rsplit(" ", 1)[1])
        return 0.0

    before = (await client.get("/metrics")).text
    missing = "/api/v1/enterprises/00000000-0000-4000-8000-000000000000"
    assert (await client.get(missing, headers=bearer(admin_token))).status_code == 404
    assert (await client.get("/no/such/path")).status_code == 404
    after = (await client.get("/metrics")).text
    one = {"handler": "/api/v1/enterprises/{enterprise_id}", "method": "GET", "status": "4xx"}
    assert count(after, **one) == count(before, **one) + 1
    none = {"handler": "none", "method": "GET", "status": "4xx"}  # count() reads the first series matching
    assert count(after, **none) == count(before, **none) + 1
    assert "00000000-0000-4000" not in after and "/no/such/path" not in after
    assert count(after, handler="/metrics") == 0
    # a made-up method is counted as "other", so clients cannot add series
    await client.request("FOO1", "/healthz")
    after = (await client.get("/metrics")).text
    assert 'method="FOO1"' not in after and count(after, method="other") >= 1
    assert re.search(r'http_request_duration_seconds_bucket\{.*handler="/api/v1/enterprises/\{enterprise_id\}"', after)


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
    assert spec["components"]["securitySchemes"]["OAuth2PasswordBearer"]["flows"]["password"]["tokenUrl"] == (
        "/api/v1/auth/token")


async def test_every_create_and_every_change_documents_the_problems_of_its_headers(client):
    # a client codes its retries from these: a concurrent repeat of a create (409), a reused key (422),
    # a stale or missing If-Match (412, 428); four creates did not list their 409
    spec = (await client.get("/openapi.json")).json()
    creates = changes = 0
    for path, operations in spec["paths"].items():
        for method, op in operations.items():
            names = {p["name"].lower() for p in op.get("parameters", [])}
            if "idempotency-key" in names:
                creates += 1
                assert {"409", "422"} <= set(op["responses"]), (method, path)
            if "if-match" in names:
                changes += 1
                assert {"412", "428"} <= set(op["responses"]), (method, path)
    assert creates > 10 and changes > 10


async def test_the_docs_state_the_rules_the_service_checks(client):
    # a client generated from the docs sends what the service takes: these the service refused
    # although the schema allowed them (found by a schemathesis run)
    spec = (await client.get("/openapi.json")).json()
    schemas = spec["components"]["schemas"]
    scopes = schemas["ServiceAccountCreate"]["properties"]["scopes"]["items"]
    assert "enterprises:read" in scopes["enum"] and "admin" not in scopes["enum"]
    assert schemas["LicenseCreate"]["properties"]["issuer_level"]["enum"] == ["national", "provincial"]
    pattern = re.compile(schemas["LicenseCreate"]["properties"]["number"]["pattern"])
    assert pattern.search("（鄂）XK12-001-00018") and pattern.search(" xk12-001-00018")
    assert not pattern.search("XK12-001-0001") and not pattern.search("XK１２-001-00018")
    officer = schemas["InspectionCreate"]["properties"]["officers"]["items"]
    assert (officer["minLength"], officer["maxLength"]) == (1, 100)
    batches = schemas["RecallCreate"]["properties"]["batches"]
    assert batches["uniqueItems"] and batches["items"]["pattern"] == r"\S"
    assert schemas["TargetsSet"]["properties"]["targets"]["additionalProperties"] == {
        "type": "number", "minimum": 0, "maximum": 1}
    key = next(p for p in spec["paths"]["/api/v1/enterprises"]["post"]["parameters"] if p["name"] == "Idempotency-Key")
    assert key["schema"]["minLength"] == 1


async def test_no_change_body_offers_null_which_the_service_refuses(client):
    # PATCH bodies answer an explicit null with a 422 (leave a field out to keep it); their docs offered
    # null for every field (found by a schemathesis run)
    spec = (await client.get("/openapi.json")).json()
    schemas = spec["components"]["schemas"]
    patched = set()
    for operations in spec["paths"].values():
        if "patch" in operations:
            ref = operations["patch"]["requestBody"]["content"]["application/json"]["schema"]["$ref"]
            patched.add(ref.rsplit("/", 1)[1])
    assert {"UserUpdate", "InspectionUpdate", "RecallUpdate", "PlanUpdate"} <= patched
    for name in patched:
        for field, prop in schemas[name]["properties"].items():
            assert "null" not in json.dumps(prop), (name, field, prop)
    deadline = {"type": "string", "format": "date", "title": "Deadline"}
    assert schemas["RecallUpdate"]["properties"]["deadline"] == deadline
    units = schemas["RecallUpdate"]["properties"]["units_sold"]
    assert (units["type"], units["minimum"], units["maximum"]) == ("integer", 1, 10**12) and "ge" not in units


async def test_the_docs_state_the_text_form_of_a_decimal(client):
    spec = (await client.get("/openapi.json")).json()
    quantity = spec["components"]["schemas"]["GoodsItem"]["properties"]["quantity"]
    number, text = quantity["anyOf"]
    assert number == {"type": "number", "exclusiveMinimum": 0, "exclusiveMaximum": 10**11}  # 14 digits, 3 places
    pattern = re.compile(text["pattern"])
    tried = ("120", "0.5", "12.125", "", "0", "0.000", "1e3", " 5", "NaN", "1.2345")
    assert [v for v in tried if pattern.search(v)] == ["120", "0.5", "12.125"]


async def test_a_worker_freezes_what_it_holds_at_start_up_out_of_the_collectors_sight(live_app):
    # full collections walking the start-up heap were the tail of the latency under load
    gc.unfreeze()
    assert gc.get_freeze_count() == 0
    async with live_app.router.lifespan_context(live_app):
        assert gc.get_freeze_count() > 10_000  # the modules, models and routes


async def test_the_docs_mark_every_operation_that_needs_a_token_and_only_those(client):
    """app.deps.current_scope reads the bearer token itself; AppRoute documents it as FastAPI would."""
    spec = (await client.get("/openapi.json")).json()
    for path, operations in spec["paths"].items():
        for method, op in operations.items():
            if path.startswith("/api/v1/") and not path.startswith("/api/v1/auth/"):
                assert op.get("security") == [{"OAuth2PasswordBearer": []}], (method, path)
            elif path.startswith("/api/public/") or path in ("/healthz", "/readyz"):
                assert "security" not in op, (method, path)


async def test_the_docs_list_their_sections_in_reading_order_each_described(client):
    spec = (await client.get("/openapi.json")).json()
    declared = [t["name"] for t in spec["tags"]]
    assert declared[:3] == ["auth", "users", "service accounts"] and all(t["description"] for t in spec["tags"])
    used = {tag for operations in spec["paths"].values() for op in operations.values() for tag in op["tags"]}
    assert used == set(declared)


def test_no_route_of_one_router_matches_a_path_of_another():
    """app.main tries the routers in order of traffic: that order may change which route answers only if
    a route of one router matched a path of another's (a `/{id}` catching a later `/export`)."""
    def sample(path: str) -> str:
        return re.sub(r"\{[^}]+\}", "00000000-0000-0000-0000-000000000000", path)

    routes = [(i, r) for i, router in enumerate(ROUTERS_BY_TRAFFIC) for r in router.routes]
    clashes = [(a.path, b.path) for i, a in routes for j, b in routes
               if i != j and a.methods & b.methods and a.path_regex.match(sample(b.path))]
    assert clashes == []
    assert len(routes) > 90  # every router's routes were looked at
