"""Keyset cursor pagination (sqlakeyset) behind the contract's {items, next_cursor} shape."""

from __future__ import annotations

import base64
import binascii
import csv
from typing import Annotated, Any, Generic, TypeVar

from fastapi import Depends, Query
from pydantic import BaseModel, ConfigDict, Field
from sqlakeyset import BadBookmark
from sqlakeyset.asyncio import select_page
from sqlalchemy import Select
from sqlalchemy.exc import ArgumentError, DBAPIError, StatementError
from sqlalchemy.ext.asyncio import AsyncSession

from app.db import is_autocommit
from app.errors import Unprocessable

T = TypeVar("T")


class Page(BaseModel, Generic[T]):
    items: list[T]
    next_cursor: str | None = None


MAX_LIMIT, DEFAULT_LIMIT, MAX_CURSOR = 200, 50, 1024
LIMIT_TEXT, CURSOR_TEXT = f"Page size, 1..{MAX_LIMIT}", "next_cursor of the previous page"


class PageParams(BaseModel):
    """The page a list asks for. A list whose parameters are all read as one model (app/query.py)
    declares them in a subclass; the others take ``PageDep``."""

    model_config = ConfigDict(frozen=True)

    limit: int = Field(DEFAULT_LIMIT, ge=1, le=MAX_LIMIT, description=LIMIT_TEXT)
    cursor: str | None = Field(None, max_length=MAX_CURSOR, description=CURSOR_TEXT)


async def _page_params(
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT, description=LIMIT_TEXT)] = DEFAULT_LIMIT,
    cursor: Annotated[str | None, Query(max_length=MAX_CURSOR, description=CURSOR_TEXT)] = None,
) -> PageParams:
    return PageParams.model_construct(limit=limit, cursor=cursor)  # validated as query parameters


PageDep = Annotated[PageParams, Depends(_page_params)]


def encode_cursor(bookmark: str) -> str:
    return base64.urlsafe_b64encode(bookmark.encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> str:
    try:
        return base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError) as exc:
        raise Unprocessable("cursor is not a cursor this service issued", code="invalid_cursor") from exc


# what reading a client's bookmark may raise (sqlakeyset reads them with the csv module, whose errors
# are not ValueErrors), and what running a page from one may raise
BAD_BOOKMARK = (BadBookmark, ValueError, TypeError, IndexError, csv.Error)
_BAD_CURSOR = (*BAD_BOOKMARK, ArgumentError, StatementError, DBAPIError)


def invalid_cursor() -> Unprocessable:
    return Unprocessable("cursor is not a cursor this service issued for this list", code="invalid_cursor")


async def paginate(session: AsyncSession, stmt: Select[Any], params: PageParams, *,
                   rows: bool = False) -> tuple[list[Any], str | None]:
    """Run ``stmt`` (which must have a total, unique ORDER BY) one page at a time; the first entity of
    each row, or the whole rows with ``rows=True``."""
    bookmark = decode_cursor(params.cursor) if params.cursor else None
    if bookmark is not None and not bookmark.startswith(">"):
        raise Unprocessable("cursor is not a cursor this service issued", code="invalid_cursor")
    if bookmark is None:
        page = await select_page(session, stmt, per_page=params.limit)
    elif is_autocommit(session):  # no transaction to keep usable: a rejected statement ends on its own
        try:
            page = await select_page(session, stmt, per_page=params.limit, page=bookmark)
        except _BAD_CURSOR as exc:
            raise invalid_cursor() from exc
    else:
        # A client-made cursor may carry values of the wrong type for this list's sort key; the
        # savepoint keeps the request's transaction usable when the database rejects them.
        try:
            async with session.begin_nested():
                page = await select_page(session, stmt, per_page=params.limit, page=bookmark)
        except _BAD_CURSOR as exc:
            raise invalid_cursor() from exc
    items = [tuple(row) for row in page] if rows else [row[0] for row in page]
    nxt = encode_cursor(page.paging.bookmark_next) if page.paging.has_next else None
    return items, nxt
