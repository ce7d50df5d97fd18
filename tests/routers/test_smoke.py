from tests.conftest import bearer


async def test_me_returns_bootstrap_admin(client, admin_token):
    r = await client.get("/api/v1/me", headers=bearer(admin_token))
    assert r.status_code == 200
    body = r.json()
    assert body["username"] == "admin"
    assert body["level"] == "national"
    assert body["roles"] == ["admin", "inspector", "leader", "officer"]


async def test_regions_of_zhejiang_are_its_cities(client, admin_token):
    r = await client.get("/api/v1/regions", params={"parent": "330000", "limit": 200}, headers=bearer(admin_token))
    assert r.status_code == 200
    codes = [i["code"] for i in r.json()["items"]]
    assert "330100" in codes and all(c.startswith("33") and c.endswith("00") for c in codes)
    assert len(codes) == 11
