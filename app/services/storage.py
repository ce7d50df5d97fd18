"""Attachment files on disk.

An upload is parsed as it arrives (python-multipart's streaming parser, no spooled copy of the whole
body): the `file` part goes in chunks into a temporary file under ``<files_dir>/tmp`` while it is
hashed (sha256) and counted, and the upload stops with 413 as soon as it passes the size limit. Its
type is taken from the content's magic bytes; the declared content type and the file name's
extension must agree with it. The file is then moved to a path made from the attachment id alone
(``<files_dir>/<2 hex>/<32 hex>``; the client's file name is metadata only) and removed again if
the request's transaction rolls back. A crash between the move and the commit can leave a file no
row points to: harmless (files are only ever served through their row) and safe to sweep.
"""

from __future__ import annotations

import hashlib
import os
import re
import unicodedata
import uuid
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import anyio
from python_multipart.exceptions import FormParserError
from python_multipart.multipart import MultipartParser, parse_options_header
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session, SessionTransaction

from app.errors import AppError, Unprocessable

# content type -> (magic bytes at offset 0, file-name extensions)
TYPES: dict[str, tuple[bytes, tuple[str, ...]]] = {
    "image/jpeg": (b"\xff\xd8\xff", (".jpg", ".jpeg")),
    "image/png": (b"\x89PNG\r\n\x1a\n", (".png",)),
    "application/pdf": (b"%PDF-", (".pdf",)),
}
ALIASES = {"image/jpg": "image/jpeg", "image/pjpeg": "image/jpeg", "application/x-pdf": "application/pdf"}
GENERIC = {"", "application/octet-stream"}  # "I don't know": the content decides
HEAD_BYTES = 8
OTHER_PARTS_MAX = 64 * 1024  # form fields besides the file (ignored) may not carry more
EXTENSION = re.compile(r"^\.[A-Za-z][A-Za-z0-9]{0,7}$")
PENDING_KEY = "storage.pending_files"


class TooLarge(AppError):
    status, code, title = 413, "attachment_too_large", "Attachment too large"


class UnsupportedType(AppError):
    status, code, title = 415, "unsupported_attachment_type", "Unsupported attachment type"


@dataclass
class Received:
    """A file part written to a temporary file."""

    tmp_path: Path
    filename: str
    declared_type: str
    size: int = 0
    sha256: str = ""
    head: bytes = b""


@dataclass
class _Events:
    """python-multipart calls back synchronously; the events are handled (with awaits) after each chunk."""

    queue: list[tuple[str, Any]] = field(default_factory=list)
    ended: bool = False
    header_name: bytes = b""
    header_value: bytes = b""
    headers: dict[bytes, bytes] = field(default_factory=dict)

    def callbacks(self) -> Any:
        return {
            "on_part_begin": self._begin, "on_part_data": self._data,
            "on_header_field": self._hfield, "on_header_value": self._hvalue,
            "on_header_end": self._hend, "on_headers_finished": self._hdone, "on_end": self._end,
        }

    def _end(self) -> None:
        self.ended = True

    def _begin(self) -> None:
        self.headers = {}

    def _hfield(self, data: bytes, start: int, end: int) -> None:
        self.header_name += data[start:end]

    def _hvalue(self, data: bytes, start: int, end: int) -> None:
        self.header_value += data[start:end]

    def _hend(self) -> None:
        self.headers[self.header_name.lower()] = self.header_value
        self.header_name, self.header_value = b"", b""

    def _hdone(self) -> None:
        self.queue.append(("part", dict(self.headers)))

    def _data(self, data: bytes, start: int, end: int) -> None:
        self.queue.append(("data", data[start:end]))


def _decode(raw: bytes) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("latin-1")


def safe_filename(name: str) -> str:
    """The client's name without directories, control characters or surrounding dots and spaces."""
    base = re.split(r"[/\\]", name)[-1]
    base = "".join(c for c in base if unicodedata.category(c)[0] != "C").strip().strip(".").strip()
    if len(base) > 200:
        stem, dot, ext = base.rpartition(".")
        base = (stem[: 200 - len(ext) - 1] + dot + ext) if dot and len(ext) <= 8 else base[:200]
    return base or "attachment"


async def receive(headers: Mapping[str, str], chunks: AsyncIterator[bytes], *, files_dir: Path,
                  max_bytes: int, field_name: str = "file") -> Received:
    """Stream the ``field_name`` part of a multipart/form-data body into a temporary file."""
    ctype, params = parse_options_header(headers.get("content-type"))
    if ctype != b"multipart/form-data" or b"boundary" not in params:
        raise AppError("send the file as multipart/form-data with a `file` field", status=415,
                       code="unsupported_media_type", title="Unsupported media type")
    length = headers.get("content-length")
    if length is not None and length.isdigit() and int(length) > max_bytes + OTHER_PARTS_MAX:
        raise TooLarge(f"an attachment may have at most {max_bytes} bytes")
    tmp_dir = files_dir / "tmp"
    await anyio.Path(tmp_dir).mkdir(parents=True, exist_ok=True)
    events = _Events()
    try:
        parser = MultipartParser(params[b"boundary"], events.callbacks())
    except FormParserError as exc:
        raise Unprocessable("the multipart boundary is invalid", code="invalid_multipart") from exc
    got: Received | None = None
    out: anyio.AsyncFile[bytes] | None = None
    digest = hashlib.sha256()
    in_file, other = False, 0
    try:
        async for chunk in chunks:
            try:
                parser.write(chunk)
            except FormParserError as exc:
                raise Unprocessable("the multipart body is malformed", code="invalid_multipart") from exc
            for kind, payload in events.queue:
                if kind == "part":
                    _, opts = parse_options_header(payload.get(b"content-disposition"))
                    in_file = opts.get(b"name") == field_name.encode() and b"filename" in opts
                    if in_file and got is not None:
                        raise Unprocessable("send one file per upload", code="too_many_files")
                    if in_file:
                        got = Received(tmp_path=tmp_dir / f"{uuid.uuid4().hex}.part",
                                       filename=safe_filename(_decode(opts[b"filename"])),
                                       declared_type=_decode(payload.get(b"content-type", b"")))
                        out = await anyio.open_file(got.tmp_path, "wb")
                elif in_file and got is not None and out is not None:
                    got.size += len(payload)
                    if got.size > max_bytes:
                        raise TooLarge(f"an attachment may have at most {max_bytes} bytes")
                    if len(got.head) < HEAD_BYTES:
                        got.head = (got.head + payload)[:HEAD_BYTES]
                    digest.update(payload)
                    await out.write(payload)
                else:
                    other += len(payload)
                    if other > OTHER_PARTS_MAX:
                        raise TooLarge("form fields besides the file are too large")
            events.queue.clear()
        parser.finalize()
        if not events.ended:  # a body cut short must not leave a truncated file behind
            raise Unprocessable("the multipart body ends before its closing boundary", code="invalid_multipart")
        if got is None:
            raise Unprocessable(f"the form has no `{field_name}` file field", code="file_required",
                                extra={"errors": [{"loc": ["body", field_name], "msg": "Field required"}]})
        got.sha256 = digest.hexdigest()
        return got
    except BaseException:
        if got is not None:
            got.tmp_path.unlink(missing_ok=True)
        raise
    finally:
        if out is not None:
            await out.aclose()


def detect(head: bytes) -> str | None:
    return next((t for t, (magic, _) in TYPES.items() if head.startswith(magic)), None)


def content_type(got: Received) -> str:
    """The type by content; the declared type and the extension, when they say something, must agree."""
    detected = detect(got.head)
    if detected is None:
        raise UnsupportedType("attachments are JPEG or PNG photos or PDF documents; the content is none of these")
    declared = got.declared_type.split(";")[0].strip().lower()
    declared = ALIASES.get(declared, declared)
    if declared not in GENERIC and declared != detected:
        raise UnsupportedType(f"the file is declared as {declared} but its content is {detected}")
    ext = os.path.splitext(got.filename)[1]
    if EXTENSION.match(ext) and ext.lower() not in TYPES[detected][1]:
        raise UnsupportedType(f"the file name ends in {ext} but its content is {detected}")
    return detected


def storage_key(attachment_id: uuid.UUID) -> str:
    return f"{attachment_id.hex[:2]}/{attachment_id.hex}"


def path_of(files_dir: Path, key: str) -> Path:
    return files_dir / key


async def place(session: AsyncSession, got: Received, files_dir: Path, key: str) -> None:
    """Move the received file to its final path; it is removed again if the transaction rolls back."""
    dest = path_of(files_dir, key)
    await anyio.Path(dest.parent).mkdir(parents=True, exist_ok=True)
    await anyio.to_thread.run_sync(os.replace, got.tmp_path, dest)
    _remove_on_rollback(session.sync_session, dest)


def _remove_on_rollback(session: Session, path: Path) -> None:
    pending: list[Path] = session.info.setdefault(PENDING_KEY, [])
    pending.append(path)
    if not event.contains(session, "after_soft_rollback", _after_rollback):
        event.listen(session, "after_soft_rollback", _after_rollback)
        event.listen(session, "after_commit", _after_commit)


def _after_rollback(session: Session, previous: SessionTransaction) -> None:
    if previous.nested or previous.parent is not None:
        return  # a savepoint: the outer transaction may still commit
    for path in session.info.pop(PENDING_KEY, []):
        path.unlink(missing_ok=True)


def _after_commit(session: Session) -> None:
    if session.get_nested_transaction() is None:  # the request's own commit, not a savepoint's
        session.info.pop(PENDING_KEY, None)


def content_disposition(filename: str) -> str:
    """`attachment` with an ASCII fallback name and the UTF-8 name (RFC 6266 / 5987)."""
    ascii_name = "".join(c if 32 <= ord(c) < 127 and c not in '"\\%' else "_" for c in filename)
    return f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(filename, safe='')}"
