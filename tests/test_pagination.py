"""Keyset pagination: following next_cursor visits every row exactly once, in the list's order."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from sqlalchemy import text

from tests.conftest import bearer, create_user


async def walk(client: httpx.AsyncClient, token: str, path: str, params: dict[str, Any],
               max_pages: int = 100) -> list[list[dict[str, Any]]]:
    """Every page of a list, following next_cursor until null."""
    pages: list[list[dict[str, Any]]] = []
    cursor = None
    for _ in range(max_pages):
        r = await client.get(path, params={**params, **({"cursor": cursor} if cursor else {})},
                             headers=bearer(token))
        assert r.status_code == 200, r.text
        body = r.json()
        assert set(body) == {"items", "next_cursor"}
        pages.append(body["items"])
        cursor = body["next_cursor"]
        if cursor is None:
            return pages
    raise AssertionError("next_cursor never became null")


async def test_regions_of_zhejiang_in_pages_of_five_visit_each_child_once_in_code_order(
        client, admin_token, connection):
    expected = list((await connection.execute(text(
        "SELECT code FROM region WHERE parent_code = '330000' ORDER BY code"))).scalars())
    assert len(expected) == 11

    pages = await walk(client, admin_token, "/api/v1/regions", {"parent": "330000", "limit": 5})
    assert [len(p) for p in pages] == [5, 5, 1]
    codes = [item["code"] for page in pages for item in page]
    assert codes == expected
    assert all(item["parent_code"] == "330000" for page in pages for item in page)


@pytest.mark.parametrize("limit", [1, 3, 11, 200])
async def test_region_pages_never_skip_repeat_or_end_with_an_empty_page(client, admin_token, connection, limit):
    expected = list((await connection.execute(text(
        "SELECT code FROM region WHERE parent_code = '330000' ORDER BY code"))).scalars())
    pages = await walk(client, admin_token, "/api/v1/regions", {"parent": "330000", "limit": limit})
    assert all(1 <= len(p) <= limit for p in pages)  # an exact multiple does not add an empty last page
    assert len(pages) == -(-len(expected) // limit)
    assert [item["code"] for page in pages for item in page] == expected


async def test_a_cursor_keeps_the_filters_it_was_issued_with(client, admin_token, connection):
    expected = list((await connection.execute(text(
        "SELECT code FROM region WHERE level = 'provincial' ORDER BY code"))).scalars())
    pages = await walk(client, admin_token, "/api/v1/regions", {"level": "provincial", "limit": 7})
    assert [item["code"] for page in pages for item in page] == expected


async def test_users_newest_first_in_pages(client, admin_token, connection):
    for i in range(7):
        await create_user(client, admin_token, username=f"page.u{i}", region_code="330106", roles=["inspector"])
    expected = [str(u) for u in (await connection.execute(text(
        "SELECT id FROM app_user ORDER BY created_at DESC, id DESC"))).scalars()]
    assert len(expected) == 8

    pages = await walk(client, admin_token, "/api/v1/users", {"limit": 3})
    assert [len(p) for p in pages] == [3, 3, 2]
    ids = [u["id"] for page in pages for u in page]
    assert ids == expected
    assert ids[-1] == (await client.get("/api/v1/me", headers=bearer(admin_token))).json()["id"]  # oldest last


async def test_audit_events_newest_first_in_pages(client, admin_token, connection):
    for i in range(4):
        await create_user(client, admin_token, username=f"page.a{i}", region_code="330106", roles=["inspector"])
    expected = list((await connection.execute(text("SELECT id FROM audit_event ORDER BY id DESC"))).scalars())
    pages = await walk(client, admin_token, "/api/v1/audit-events", {"limit": 2})
    assert [e["id"] for page in pages for e in page] == expected
