"""Integration: 通报 (/api/v1/notifications), webhooks for machine clients, and the pull feed
(/api/v1/events)."""

from __future__ import annotations

import uuid
from typing import Annotated, Literal

from fastapi import Query, Response

from app.deps import ScopeDep, SessionDep, SettingsDep
from app.errors import problem_responses
from app.models.case import NotificationPublic, Recipient
from app.models.integration import FeedEvent, ReceiptBody, WebhookCreate, WebhookCreated, WebhookPublic
from app.pagination import Page, PageDep, paginate
from app.routers import secured_router
from app.routing import autocommit_reads
from app.services import events as events_service
from app.services import notification as notification_service

router = secured_router(machine_scope=None, tags=["notifications"])

SIGNING = """Each delivery is `POST <url>` with the notification as JSON
(`{"event_id", "type": "notification.created", "notification": {...}}`) and the headers
`X-Event-Id` (the same id as the change in `GET /api/v1/events`: deduplicate on it, deliveries are at
least once), `X-Timestamp` (Unix seconds) and `X-Signature: sha256=<hex HMAC-SHA256 of
"<X-Timestamp>.<body>" with the subscription's secret>`. A 2xx answer is a delivery; anything else, or
no answer within 5 s, is retried with exponential backoff (2 s doubling, at most an hour, with jitter)
and kept until delivered; after 25 attempts the delivery is `failed` and an admin or leader may
redeliver it."""


@router.get("/api/v1/notifications", response_model=Page[NotificationPublic],
            responses=problem_responses(401, 403, 422))
@autocommit_reads
async def list_notifications(
    scope: ScopeDep, session: SessionDep, page: PageDep, case_id: uuid.UUID | None = None,
    recipient: Recipient | None = None,
    status: Annotated[Literal["pending", "delivered", "failed"] | None, Query()] = None,
) -> Page[NotificationPublic]:
    """Outbound 通报, newest first: staff see those of their jurisdiction; a machine client (scope
    `notifications:read`) those addressed to its agency inside its region."""
    stmt = notification_service.list_query(scope, case_id=case_id, recipient=recipient, status=status)
    items, nxt = await paginate(session, stmt, page)
    return Page[NotificationPublic](items=[notification_service.to_public(n) for n in items], next_cursor=nxt)


@router.get("/api/v1/notifications/{notification_id}", response_model=NotificationPublic,
            responses=problem_responses(401, 403, 404))
@autocommit_reads
async def get_notification(notification_id: uuid.UUID, scope: ScopeDep, session: SessionDep) -> NotificationPublic:
    """One notification (404 outside your jurisdiction, or addressed to another agency)."""
    return notification_service.to_public(
        await notification_service.get(session, scope=scope, notification_id=notification_id))


@router.post("/api/v1/notifications/{notification_id}/receipt", response_model=NotificationPublic,
             responses=problem_responses(401, 403, 404, 409, 422))
async def acknowledge(notification_id: uuid.UUID, body: ReceiptBody, scope: ScopeDep,
                      session: SessionDep) -> NotificationPublic:
    """The notified agency acknowledges the 通报: received, and the measures it took (its own machine
    client, or an officer or leader recording a paper receipt). Shown on the case's timeline; a second
    receipt is 409 `already_acknowledged`."""
    return notification_service.to_public(
        await notification_service.receipt(session, scope=scope, notification_id=notification_id, body=body))


@router.post("/api/v1/notifications/{notification_id}/redeliver", response_model=NotificationPublic,
             responses=problem_responses(401, 403, 404))
async def redeliver(notification_id: uuid.UUID, scope: ScopeDep, session: SessionDep) -> NotificationPublic:
    """Queue the failed webhook deliveries of a notification again (admins and leaders)."""
    return notification_service.to_public(
        await notification_service.redeliver(session, scope=scope, notification_id=notification_id))


@router.get("/api/v1/webhooks", response_model=Page[WebhookPublic], responses=problem_responses(401, 403))
@autocommit_reads
async def list_webhooks(scope: ScopeDep, session: SessionDep, page: PageDep) -> Page[WebhookPublic]:
    """A machine client's own subscriptions; admins see every subscription in their jurisdiction."""
    items, nxt = await paginate(session, notification_service.subscriptions_query(scope), page)
    return Page[WebhookPublic](items=[WebhookPublic.model_validate(w, from_attributes=True) for w in items],
                               next_cursor=nxt)


@router.post("/api/v1/webhooks", status_code=201, response_model=WebhookCreated,
             responses=problem_responses(401, 403, 409, 422), description=(
                 "Subscribe a machine client (a service account with an `agency`) to the 通报 addressed to its "
                 "agency inside its region. The answer carries the signing `secret` once.\n\n" + SIGNING))
async def subscribe(body: WebhookCreate, scope: ScopeDep, session: SessionDep, settings: SettingsDep,
                    response: Response) -> WebhookCreated:
    sub = await notification_service.subscribe(session, scope=scope, url=str(body.url), settings=settings)
    response.headers["Location"] = f"/api/v1/webhooks/{sub.id}"
    return WebhookCreated(**WebhookPublic.model_validate(sub, from_attributes=True).model_dump(),
                          secret=notification_service.secret_for(settings, sub.id))


@router.delete("/api/v1/webhooks/{webhook_id}", status_code=204, responses=problem_responses(401, 404))
async def unsubscribe(webhook_id: uuid.UUID, scope: ScopeDep, session: SessionDep) -> Response:
    """End a subscription (its own client or an admin); its pending deliveries stop."""
    await notification_service.unsubscribe(session, scope=scope, subscription_id=webhook_id)
    return Response(status_code=204)


class FeedPage(Page[FeedEvent]):
    next_cursor: str | None = None


@router.get("/api/v1/events", response_model=FeedPage, responses=problem_responses(401, 403, 422))
@autocommit_reads
async def event_feed(
    scope: ScopeDep, session: SessionDep,
    cursor: Annotated[str | None, Query(max_length=200, description="next_cursor of the previous call")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    entity_type: Annotated[Literal[events_service.FEED_TYPES] | None, Query()] = None,  # type: ignore[valid-type]
) -> FeedPage:
    """Every change you may see (archives, licences, inspections, cases, 通报, bad records), in commit
    order, once the background sealer has chained it (within a few seconds of the commit).
    Store `next_cursor` and call again with it to resume; it is returned even when nothing is
    new, so polling with it never skips or repeats a change. Each event's `id` is stable and is the
    `X-Event-Id` of the webhook delivery of the same change. Machine clients need the scope
    `events:read`."""
    items, nxt = await events_service.feed(session, scope=scope, cursor=cursor, limit=limit,
                                           entity_type=entity_type)
    return FeedPage(items=items, next_cursor=nxt)
