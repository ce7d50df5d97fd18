"""ETag / If-Match on versioned resources."""

from __future__ import annotations

import re
from typing import Annotated

from fastapi import Depends, Header, Response

from app.errors import PreconditionFailed, PreconditionRequired

# Weak ETags are accepted (proxies weaken ETags when they compress); at most 18 digits.
_ETAG = re.compile(r'^\s*(?:W/)?"([0-9]{1,18})"\s*$')


def etag(version: int) -> str:
    return f'"{version}"'


def set_etag(response: Response, version: int) -> None:
    response.headers["ETag"] = etag(version)


async def _if_match(
    if_match: Annotated[str | None, Header(description='ETag of the version being changed, e.g. "3"')] = None,
) -> int:
    """The version the change was made from. A missing or malformed header is answered (428, 412) only
    once FastAPI has validated the path and the body (require_if_match, which app.routing.AppRoute runs
    before the endpoint): a dependency runs before them, so PATCH /inspections/not-an-id without
    If-Match was a 428 rather than the 422 of its id."""
    if if_match is None:
        return MISSING
    if if_match.strip() == "*":  # RFC 9110: matches whatever the current version is
        return ANY_VERSION
    m = _ETAG.match(if_match)
    return int(m.group(1)) if m else MALFORMED


def require_if_match(version: int) -> None:
    """428 without If-Match, 412 with one that is no ETag of ours."""
    if version == MISSING:
        raise PreconditionRequired("This change needs an If-Match header with the resource's ETag")
    if version == MALFORMED:
        raise PreconditionFailed("If-Match does not match the current version", extra={"current_version": None})


if_match_dependency = _if_match  # what app/routing.py checks every PATCH and action for
IfMatchDep = Annotated[int, Depends(_if_match)]
ANY_VERSION = -1  # If-Match: *
MISSING, MALFORMED = -2, -3  # no If-Match; one that is no ETag of ours


def check_version(current: int, expected: int, *, current_body: object | None = None) -> None:
    """412 when the client changed a stale copy; the body shows the server's copy. ``expected`` is never
    MISSING or MALFORMED: AppRoute, which every route is (app.main), answered those before the endpoint."""
    if expected != ANY_VERSION and current != expected:
        extra: dict[str, object] = {"current_version": current}
        if current_body is not None:
            extra["current"] = current_body
        raise PreconditionFailed(
            f"The resource changed since version {expected}; it is now at version {current}",
            extra=extra,
        )
