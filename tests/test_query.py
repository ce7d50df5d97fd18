"""Query strings read as one model (app/query.py): the rules, the problems and the docs of FastAPI's own
query parameters."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.conftest import bearer

LISTS = ["/api/v1/enterprises", "/api/v1/inspections", "/api/v1/licenses", "/api/v1/cases", "/api/v1/regions"]


async def get(client: httpx.AsyncClient, token: str, path: str, query: str) -> httpx.Response:
    return await client.get(f"{path}?{query}", headers=bearer(token))


def locs(r: httpx.Response) -> set[tuple[Any, ...]]:
    assert r.status_code == 422, r.text
    body = r.json()
    assert r.headers["content-type"].startswith("application/problem+json")
    assert body["code"] == "validation_error"
    return {tuple(e["loc"]) for e in body["errors"]}


@pytest.mark.parametrize("path", LISTS)
@pytest.mark.parametrize("query, loc", [("limit=0", "limit"), ("limit=201", "limit"), ("limit=ten", "limit"),
                                        ("limit=", "limit"), ("cursor=" + "x" * 1025, "cursor")])
async def test_every_list_refuses_a_bad_page_naming_the_parameter(client, admin_token, path, query, loc):
    r = await get(client, admin_token, path, query)
    assert locs(r) == {("query", loc)}
    assert r.json()["detail"].startswith(f"query.{loc}: ")


async def test_the_enterprise_list_names_every_bad_parameter_at_once(client, admin_token):
    r = await get(client, admin_token, "/api/v1/enterprises",
                  "limit=0&size=giant&q=x&region=33&licensed=perhaps&category=" + "0" * 17)
    assert locs(r) == {("query", name) for name in ("limit", "size", "q", "region", "licensed", "category")}


async def test_query_values_are_read_as_fastapi_reads_its_parameters(client, admin_token, connection):
    """Booleans in their usual spellings, the last of repeated values, unknown names ignored; the same on
    a route whose page is a model and whose filters are FastAPI's (the regions)."""
    h = bearer(admin_token)
    for spelling in ("false", "0", "no", "off", "False"):
        r = await client.get(f"/api/v1/enterprises?licensed={spelling}", headers=h)
        assert r.status_code == 200, (spelling, r.text)
    regions = await client.get("/api/v1/regions?parent=330000&limit=5&limit=3&colour=blue", headers=h)
    assert regions.status_code == 200 and len(regions.json()["items"]) == 3
    one = await client.get("/api/v1/regions?parent=330000&limit=3&limit=1", headers=h)
    assert [i["code"] for i in one.json()["items"]] == [i["code"] for i in regions.json()["items"]][:1]


async def test_the_docs_list_a_query_models_fields_as_parameters(client):
    spec = (await client.get("/openapi.json")).json()
    listing = spec["paths"]["/api/v1/enterprises"]["get"]
    params = {p["name"]: p for p in listing["parameters"]}
    assert list(params) == ["region", "category", "licensed", "key", "size", "q", "limit", "cursor"]
    assert all(p["in"] == "query" and p["required"] is False for p in params.values())
    assert params["limit"]["schema"]["maximum"] == 200 and params["limit"]["schema"]["default"] == 50
    assert params["q"]["schema"]["anyOf"][0]["minLength"] == 2
    assert params["region"]["description"] == "inside this region (403 outside yours)"
    size_ref = params["size"]["schema"]["anyOf"][0]["$ref"]
    assert spec["components"]["schemas"][size_ref.rsplit("/", 1)[1]]["enum"] == ["large", "medium", "small"]
    assert "application/problem+json" in listing["responses"]["422"]["content"]
    # a route with the page model and FastAPI's own parameters lists both
    regions = {p["name"] for p in spec["paths"]["/api/v1/regions"]["get"]["parameters"]}
    assert {"limit", "cursor", "parent", "level"} <= regions
