"""Query strings read as one model (app/query.py): the rules, the problems and the docs of FastAPI's own
query parameters."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

import httpx
import pytest
from fastapi import APIRouter

from app.pagination import PageParams
from app.query import query_model
from app.routing import AppRoute
from app.services import uscc
from tests.conftest import bearer
from tests.routers.test_enterprises import create

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


async def test_query_values_are_read_as_fastapi_reads_its_parameters(client, admin_token):
    """Booleans in their usual spellings, the last of repeated values, unknown names ignored: on the list
    read as one model (enterprises) as on a list read by FastAPI (regions)."""
    h = bearer(admin_token)
    made = [await create(client, admin_token, code=uscc.make(f"91330106MA2B0XQ{i:02d}"), name=f"西湖第{i}厂")
            for i in range(3)]  # unlicensed, newest first in the list

    async def ids(path: str, query: str) -> list[str]:
        r = await client.get(f"{path}?{query}", headers=h)
        assert r.status_code == 200, (query, r.text)
        return [item.get("id") or item["code"] for item in r.json()["items"]]

    newest_first = [e["id"] for e in reversed(made)]
    for spelling in ("false", "0", "no", "off", "False"):
        assert await ids("/api/v1/enterprises", f"licensed={spelling}") == newest_first, spelling
    for spelling in ("true", "1", "yes", "on"):
        assert await ids("/api/v1/enterprises", f"licensed={spelling}") == [], spelling
    assert await ids("/api/v1/enterprises", "limit=5&limit=2&colour=blue") == newest_first[:2]
    regions = await ids("/api/v1/regions", "parent=330000&limit=5&limit=2&colour=blue")
    assert len(regions) == 2 and await ids("/api/v1/regions", "parent=330000&limit=2&limit=1") == regions[:1]


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


def test_a_route_cannot_mix_a_query_model_with_fastapis_own_parameters():
    """FastAPI would validate its own parameters only after the model: a bad page would hide a bad
    filter (or a bad path parameter) in the 422."""
    router = APIRouter(route_class=AppRoute)

    async def mixed(page: Annotated[PageParams, query_model(PageParams)], status: str | None = None) -> None: ...

    async def with_path(item_id: uuid.UUID, page: Annotated[PageParams, query_model(PageParams)]) -> None: ...

    async def whole(page: Annotated[PageParams, query_model(PageParams)]) -> None: ...

    for path, endpoint in (("/mixed", mixed), ("/items/{item_id}", with_path)):
        with pytest.raises(TypeError, match="can take no other query or path parameters"):
            router.add_api_route(path, endpoint, methods=["GET"])
    router.add_api_route("/whole", whole, methods=["GET"])
