"""Inspection attachments over HTTP: streamed multipart upload with size and content-type checks,
sha256, storage under the attachment id, scoped listing and download, cleanup when the
transaction fails."""

from __future__ import annotations

import hashlib
import os
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from app.config import get_settings
from app.services import attachment as attachment_service
from tests.conftest import bearer, user_token
from tests.routers.test_inspections import (
    URL,
    XIHU,
    World,
    assert_problem,
    body,
    count,
    make_world,
)


@pytest.fixture
async def world(client: httpx.AsyncClient, admin_token: str) -> World:
    return await make_world(client, admin_token)


MAX = 64 * 1024
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + os.urandom(3000)
PNG = b"\x89PNG\r\n\x1a\n" + os.urandom(2000)
PDF = b"%PDF-1.7\n" + os.urandom(1000) + b"\n%%EOF\n"


@pytest.fixture
def files_dir(app: Any, tmp_path: Path) -> Path:
    """Storage in a temporary folder with a 64 KiB limit, through the settings the routes use."""
    settings = get_settings().model_copy(update={"storage_dir": tmp_path / "files", "attachment_max_bytes": MAX})
    app.state.settings = settings  # the app fixture restores its settings after the test
    return settings.files_dir


def stored_files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []


async def inspection(client: httpx.AsyncClient, w: World, *, token: str | None = None,
                     ent: dict[str, Any] | None = None) -> str:
    r = await client.post(URL, headers=bearer(token or w.xihu), json=body((ent or w.ent_xihu)["id"]))
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


async def upload(client: httpx.AsyncClient, token: str, inspection_id: str, content: bytes,
                 name: str = "现场照片.jpg", ctype: str = "image/jpeg", **kw: Any) -> httpx.Response:
    return await client.post(f"{URL}/{inspection_id}/attachments", headers={**bearer(token), **kw.pop("headers", {})},
                             files={"file": (name, content, ctype)}, **kw)


def raw_multipart(filename: bytes, content: bytes, ctype: bytes = b"image/jpeg") -> tuple[dict[str, str], bytes]:
    """A multipart body built by hand (httpx would percent-encode odd file names)."""
    body = (b"--xyz\r\nContent-Disposition: form-data; name=\"file\"; filename=\"" + filename + b"\"\r\n"
            b"Content-Type: " + ctype + b"\r\n\r\n" + content + b"\r\n--xyz--\r\n")
    return {"Content-Type": "multipart/form-data; boundary=xyz"}, body


async def test_upload_stores_the_file_under_its_id_and_returns_its_sha256(client, world, files_dir, connection):
    ins = await inspection(client, world)
    r = await upload(client, world.xihu, ins, JPEG)
    assert r.status_code == 201, r.text
    a = r.json()
    assert a["sha256"] == hashlib.sha256(JPEG).hexdigest()
    assert a["size_bytes"] == len(JPEG) and a["content_type"] == "image/jpeg"
    assert a["filename"] == "现场照片.jpg" and a["inspection_id"] == ins
    assert r.headers["location"] == f"{URL}/{ins}/attachments/{a['id']}"
    assert r.headers["etag"] == f'"{a["sha256"]}"'

    files = stored_files(files_dir)
    assert files == [files_dir / uuid.UUID(a["id"]).hex[:2] / uuid.UUID(a["id"]).hex]  # named by id only
    assert files[0].read_bytes() == JPEG
    row = (await connection.execute(text("SELECT * FROM attachment WHERE id = :id"), {"id": a["id"]})).mappings().one()
    assert row["region_code"] == XIHU and row["sha256"] == a["sha256"] and "现场" not in row["storage_key"]
    assert await count(connection, "SELECT count(*) FROM audit_event WHERE action = 'attachment.create'"
                       " AND entity_id = :id", id=a["id"]) == 1


async def test_download_gives_the_bytes_type_safe_name_and_sha256_etag(client, world, files_dir):
    ins = await inspection(client, world)
    headers, content = raw_multipart(b'..\\..//etc/"evil"\tX: 1.jpg', JPEG)
    r = await client.post(f"{URL}/{ins}/attachments", headers={**bearer(world.xihu), **headers}, content=content)
    a = r.json()
    assert a["filename"] == '"evil"X: 1.jpg'  # no directories, no control characters
    r = await client.get(f"{URL}/{ins}/attachments/{a['id']}", headers=bearer(world.xihu))
    assert r.status_code == 200 and r.content == JPEG
    assert r.headers["content-type"] == "image/jpeg"
    assert r.headers["etag"] == f'"{hashlib.sha256(JPEG).hexdigest()}"'
    assert r.headers["x-content-type-options"] == "nosniff"
    disposition = r.headers["content-disposition"]
    assert disposition.startswith('attachment; filename="_evil_X: 1.jpg"; filename*=UTF-8\'\'')
    assert "\r" not in disposition and "\n" not in disposition
    again = await client.get(f"{URL}/{ins}/attachments/{a['id']}",
                             headers={**bearer(world.xihu), "If-None-Match": r.headers["etag"]})
    assert again.status_code == 304 and again.content == b""


async def test_png_and_pdf_are_accepted_and_a_generic_type_is_decided_by_content(client, world, files_dir):
    ins = await inspection(client, world)
    for content, name, declared, expected in [
        (PNG, "seal.png", "image/png", "image/png"),
        (PDF, "检验报告.pdf", "application/pdf", "application/pdf"),
        (JPEG, "photo", "application/octet-stream", "image/jpeg"),
        (JPEG, "IMG_2026.11.20", "image/jpg", "image/jpeg"),  # a numeric suffix is no extension
    ]:
        r = await upload(client, world.xihu, ins, content, name=name, ctype=declared)
        assert r.status_code == 201, r.text
        assert r.json()["content_type"] == expected


@pytest.mark.parametrize(("content", "name", "ctype"), [
    (b"<html><script>alert(1)</script></html>", "photo.jpg", "image/jpeg"),  # claims JPEG, is not
    (b"GIF89a" + b"\x00" * 100, "photo.jpg", "image/jpeg"),
    (b"", "empty.jpg", "image/jpeg"),
    (PNG, "photo.jpg", "image/png"),  # the extension disagrees with the content
    (PNG, "photo.png", "image/jpeg"),  # the declared type disagrees with the content
    (JPEG, "photo.exe", "application/octet-stream"),
    (PDF, "report.pdf", "text/html"),
])
async def test_content_that_is_not_what_it_claims_is_415(client, world, files_dir, connection, content, name, ctype):
    ins = await inspection(client, world)
    r = await upload(client, world.xihu, ins, content, name=name, ctype=ctype)
    assert_problem(r, 415, "unsupported_attachment_type")
    assert stored_files(files_dir) == []  # the temporary file is gone too
    assert await count(connection, "SELECT count(*) FROM attachment") == 0


@pytest.mark.parametrize("size", [MAX + 1, 3 * MAX])  # caught while streaming / by Content-Length
async def test_a_file_over_the_limit_is_413(client, world, files_dir, connection, size):
    ins = await inspection(client, world)
    r = await upload(client, world.xihu, ins, JPEG[:12] + b"\x00" * (size - 12))
    assert_problem(r, 413, "attachment_too_large")
    assert stored_files(files_dir) == []
    assert await count(connection, "SELECT count(*) FROM attachment") == 0


async def test_a_file_at_the_limit_is_accepted(client, world, files_dir):
    ins = await inspection(client, world)
    r = await upload(client, world.xihu, ins, JPEG[:12] + b"\x00" * (MAX - 12))
    assert r.status_code == 201, r.text
    assert r.json()["size_bytes"] == MAX


async def test_upload_needs_a_multipart_file_field(client, world, files_dir):
    ins = await inspection(client, world)
    url = f"{URL}/{ins}/attachments"
    r = await client.post(url, headers=bearer(world.xihu), files={"photo": ("a.jpg", JPEG, "image/jpeg")})
    assert_problem(r, 422, "file_required")
    r = await client.post(url, headers=bearer(world.xihu), data={"file": "not a file"},
                          files={"other": ("a.jpg", JPEG, "image/jpeg")})
    assert_problem(r, 422, "file_required")
    r = await client.post(url, headers=bearer(world.xihu), json={"file": "x"})
    assert_problem(r, 415, "unsupported_media_type")
    headers, content = raw_multipart(b"a.jpg", JPEG)
    r = await client.post(url, headers={**bearer(world.xihu), **headers}, content=content[:-30])
    assert_problem(r, 422, "invalid_multipart")  # cut off: the body ends without its closing boundary
    two = [("file", ("a.jpg", JPEG, "image/jpeg")), ("file", ("b.jpg", JPEG, "image/jpeg"))]
    assert_problem(await client.post(url, headers=bearer(world.xihu), files=two), 422, "too_many_files")
    assert stored_files(files_dir) == []


async def test_county_inspector_cannot_attach_to_list_or_download_from_other_county(client, world, files_dir,
                                                                                     connection):
    theirs = await inspection(client, world, token=world.shangcheng, ent=world.ent_shangcheng)
    a = (await upload(client, world.shangcheng, theirs, JPEG)).json()
    assert_problem(await upload(client, world.xihu, theirs, PNG, name="x.png", ctype="image/png"),
                   404, "inspection_not_found")
    assert await count(connection, "SELECT count(*) FROM attachment") == 1
    assert len(stored_files(files_dir)) == 1
    assert_problem(await client.get(f"{URL}/{theirs}/attachments", headers=bearer(world.xihu)),
                   404, "inspection_not_found")
    r = await client.get(f"{URL}/{theirs}/attachments/{a['id']}", headers=bearer(world.xihu))
    assert_problem(r, 404, "attachment_not_found")
    # and not through an inspection of its own either
    mine = await inspection(client, world)
    assert_problem(await client.get(f"{URL}/{mine}/attachments/{a['id']}", headers=bearer(world.xihu)),
                   404, "attachment_not_found")
    # their own bureau reads it
    r = await client.get(f"{URL}/{theirs}/attachments/{a['id']}", headers=bearer(world.shangcheng))
    assert r.status_code == 200 and r.content == JPEG


async def test_leaders_read_attachments_but_do_not_upload(client, world, files_dir):
    ins = await inspection(client, world)
    a = (await upload(client, world.xihu, ins, JPEG)).json()
    leader = await user_token(client, world.admin, username="xihu.leader", region_code=XIHU, roles=["leader"])
    assert_problem(await upload(client, leader, ins, JPEG), 403, "forbidden")
    listed = await client.get(f"{URL}/{ins}/attachments", headers=bearer(leader))
    assert [i["id"] for i in listed.json()["items"]] == [a["id"]]
    assert (await client.get(f"{URL}/{ins}/attachments/{a['id']}", headers=bearer(leader))).content == JPEG


async def test_list_is_newest_first_and_paged(client, world, files_dir):
    ins = await inspection(client, world)
    ids = [(await upload(client, world.xihu, ins, JPEG, name=f"{i}.jpg")).json()["id"] for i in range(3)]
    first = (await client.get(f"{URL}/{ins}/attachments", headers=bearer(world.xihu), params={"limit": 2})).json()
    second = (await client.get(f"{URL}/{ins}/attachments", headers=bearer(world.xihu),
                               params={"limit": 2, "cursor": first["next_cursor"]})).json()
    assert [i["id"] for i in first["items"] + second["items"]] == ids[::-1]
    assert second["next_cursor"] is None
    assert "storage_key" not in str(first)


async def test_the_file_is_removed_when_the_transaction_fails(client, world, files_dir, connection, monkeypatch):
    ins = await inspection(client, world)
    real = attachment_service.audit.record

    async def failing_record(session: Any, **kw: Any) -> None:
        if kw["entity_type"] == "attachment":
            await session.execute(text("INSERT INTO enterprise (id) VALUES (gen_random_uuid())"))  # NOT NULL
        await real(session, **kw)

    monkeypatch.setattr(attachment_service.audit, "record", failing_record)
    r = await upload(client, world.xihu, ins, JPEG)
    assert_problem(r, 422, "missing_value")
    assert stored_files(files_dir) == []
    assert await count(connection, "SELECT count(*) FROM attachment") == 0


async def test_an_idempotency_key_replays_the_upload(client, world, files_dir, connection):
    ins = await inspection(client, world)
    headers = {"Idempotency-Key": "upload-0001"}
    multipart, content = raw_multipart(b"a.jpg", JPEG)
    url = f"{URL}/{ins}/attachments"
    first = await client.post(url, headers={**bearer(world.xihu), **headers, **multipart}, content=content)
    again = await client.post(url, headers={**bearer(world.xihu), **headers, **multipart}, content=content)
    assert first.status_code == again.status_code == 201, again.text
    assert again.headers["idempotent-replayed"] == "true" and again.json() == first.json()
    assert await count(connection, "SELECT count(*) FROM attachment") == 1
    assert len(stored_files(files_dir)) == 1


async def test_a_missing_inspection_is_404(client, world, files_dir):
    assert_problem(await upload(client, world.xihu, str(uuid.uuid4()), JPEG), 404, "inspection_not_found")
    assert_problem(await client.get(f"{URL}/{uuid.uuid4()}/attachments/{uuid.uuid4()}", headers=bearer(world.xihu)),
                   404, "attachment_not_found")
