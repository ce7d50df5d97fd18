"""通报 (notifications) to other agencies, their webhook outbox and receipts.

A notification is written with its audit row (whose id is the event id in ``/api/v1/events``) and one
``webhook_delivery`` row per matching subscription, all in the transaction that creates it: the
transactional outbox. The delivery worker (app/workers/delivery.py) sends them afterwards; nothing
is lost when a receiver is down, and every delivery carries the same event id as the feed.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import uuid
from typing import Any

import httpx
from sqlalchemy import Select, and_, false, or_, text
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from app import policy
from app.config import Settings
from app.errors import Conflict, NotFound, NotPermitted, Unprocessable
from app.models.case import CaseEvent, Notification, NotificationPublic, PenaltyCase, Recipient
from app.models.common import Role, prefix_of, utcnow
from app.models.integration import ReceiptBody, WebhookSubscription
from app.models.user import ServiceAccount
from app.scope import Scope, get_visible
from app.services import audit


def to_public(n: Notification) -> NotificationPublic:
    return NotificationPublic.model_validate(n, from_attributes=True)


async def addressed_account(session: AsyncSession, *, client_id: str, recipients: list[Recipient],
                            region: str) -> uuid.UUID:
    """The service account a notice is addressed to: active, of the one agency kind named, and covering
    the case's region (422 otherwise; nothing about other accounts is revealed)."""
    if len(set(recipients)) != 1:
        raise Unprocessable("a notice addressed to one agency's system names one kind of recipient",
                            code="one_recipient_kind")
    sa = (await session.execute(select(ServiceAccount).where(ServiceAccount.client_id == client_id)
                                .execution_options(unscoped=True))).scalar_one_or_none()
    if sa is None or not sa.active or sa.agency is None or sa.agency.value != recipients[0].value \
            or not region.startswith(prefix_of(sa.region_code)):
        raise Unprocessable(f"no active {recipients[0].value} client {client_id} serves region {region}",
                            code="unknown_recipient_client")
    return sa.id


def to_public_row(row: Any) -> dict[str, Any]:
    """A notification row (a mapping) as the JSON a webhook receives."""
    return NotificationPublic.model_validate(dict(row)).model_dump(mode="json")


def secret_for(settings: Settings, subscription_id: uuid.UUID) -> str:
    """A subscription's signing secret, derived from the service's webhook key: nothing to store."""
    mac = hmac.new(settings.webhook_key.encode(), b"webhook:" + str(subscription_id).encode(), hashlib.sha256)
    return base64.urlsafe_b64encode(mac.digest()).decode().rstrip("=")


def signature(secret: str, timestamp: str, body: bytes) -> str:
    """``X-Signature``: ``sha256=`` + hex HMAC-SHA256 over ``<X-Timestamp>.<body>`` with the secret."""
    return "sha256=" + hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()


async def publish(session: AsyncSession, notifications: list[Notification]) -> None:
    """Audit each new notification (its event) and queue one delivery per matching subscription: an
    active client of that agency whose region contains the notification's."""
    if not notifications:
        return
    events = []
    for n in notifications:
        events.append((n, await audit.record(
            session, action="notification.create", entity_type="notification", entity_id=str(n.id),
            region_code=n.region_code, after=to_public(n).model_dump(mode="json"))))
    await session.flush()
    for n, event in events:
        n.event_id = event.id if event is not None else None
    await session.execute(text("""
        INSERT INTO webhook_delivery (id, notification_id, subscription_id, region_code, status, attempts,
                                      next_attempt_at, created_at)
        SELECT gen_random_uuid(), n.id, w.id, n.region_code, 'pending', 0, now(), now()
        FROM notification n
        JOIN service_account s ON s.agency = n.recipient AND s.active AND 'notifications:read' = ANY(s.scopes)
             AND (n.recipient_account IS NULL OR n.recipient_account = s.id)
        JOIN webhook_subscription w ON w.service_account_id = s.id AND w.active
        WHERE n.id = ANY(:ids) AND n.region_code LIKE (CASE WHEN w.region_code = '000000' THEN ''
              WHEN w.region_code LIKE '__0000' THEN substr(w.region_code, 1, 2)
              WHEN w.region_code LIKE '____00' THEN substr(w.region_code, 1, 4)
              ELSE w.region_code END) || '%'
    """), {"ids": [n.id for n in notifications]})


def _reader(scope: Scope) -> Any:
    """Staff read the notifications of their jurisdiction; a machine client those addressed to its agency."""
    if scope.principal_type == "user":
        return None
    policy.require(policy.has_scope(scope, "notifications:read"), code="scope_missing")
    if not scope.agency:
        return false()
    return and_(col(Notification.recipient) == scope.agency,
                or_(col(Notification.recipient_account).is_(None),
                    col(Notification.recipient_account) == scope.principal_id))


def list_query(scope: Scope, *, case_id: uuid.UUID | None, recipient: Recipient | None,
               status: str | None) -> Select[Any]:
    stmt = select(Notification)
    mine = _reader(scope)
    if mine is not None:
        stmt = stmt.where(mine)
    if case_id is not None:
        stmt = stmt.where(Notification.case_id == case_id)
    if recipient is not None:
        stmt = stmt.where(Notification.recipient == recipient)
    if status is not None:
        stmt = stmt.where(Notification.status == status)
    return stmt.order_by(col(Notification.created_at).desc(), col(Notification.id).desc())


async def get(session: AsyncSession, *, scope: Scope, notification_id: uuid.UUID,
              for_update: bool = False) -> Notification:
    """One notification through the same rule as the list (another agency's is as invisible as one
    outside the region: 404)."""
    stmt = select(Notification).where(Notification.id == notification_id)
    mine = _reader(scope)
    if mine is not None:
        stmt = stmt.where(mine)
    n = (await session.execute(stmt.with_for_update() if for_update else stmt)).scalar_one_or_none()
    if n is None:
        raise NotFound(f"No notification {notification_id}", code="notification_not_found")
    return n


async def receipt(session: AsyncSession, *, scope: Scope, notification_id: uuid.UUID,
                  body: ReceiptBody) -> Notification:
    """The notified agency acknowledges: received, and the measures it took. Its own client does, or
    an officer or leader records a receipt that came on paper. Shown on the case's timeline."""
    n = await get(session, scope=scope, notification_id=notification_id, for_update=True)
    if scope.principal_type == "user" and not ({Role.officer, Role.leader} & scope.roles):
        raise NotPermitted("only the notified agency, or an officer or leader for it, records a receipt",
                           code="role_not_permitted")
    if n.receipt_at is not None:
        raise Conflict(f"notification {n.id} was already acknowledged at {n.receipt_at.isoformat()}",
                       code="already_acknowledged")
    before = to_public(n).model_dump(mode="json")
    now = utcnow()
    n.receipt_at, n.receipt_by, n.receipt_measures = now, scope.username, body.measures_taken
    if n.status != "delivered":
        n.status, n.delivered_at = "delivered", n.delivered_at or now
    await session.flush()
    await audit.record(session, action="notification.receipt", entity_type="notification", entity_id=str(n.id),
                       region_code=n.region_code, before=before, after=to_public(n).model_dump(mode="json"))
    if n.case_id is not None:
        case = (await session.execute(select(PenaltyCase).where(PenaltyCase.id == n.case_id))).scalar_one()
        session.add(CaseEvent(case_id=case.id, region_code=case.region_code, action="receipt",
                              from_status=case.status.value, to_status=case.status.value,
                              actor_id=scope.principal_id, actor=scope.username, actor_bureau=scope.region_code,
                              at=now, detail={"notification_id": str(n.id), "recipient": n.recipient.value,
                                              "measures_taken": body.measures_taken}))
    return n


async def redeliver(session: AsyncSession, *, scope: Scope, notification_id: uuid.UUID) -> Notification:
    """Put a notification's failed deliveries back in the queue (admins and leaders)."""
    policy.require_role(scope, Role.admin, Role.leader, doing="redeliver notifications")
    n = await get(session, scope=scope, notification_id=notification_id, for_update=True)
    await session.execute(text(
        "UPDATE webhook_delivery d SET status = 'pending', next_attempt_at = now(), attempts = 0, last_error = NULL"
        " FROM webhook_subscription w WHERE d.notification_id = :id AND d.status = 'failed'"
        " AND w.id = d.subscription_id AND w.active"), {"id": n.id})
    if n.status == "failed":
        n.status = "pending"
    await audit.record(session, action="notification.redeliver", entity_type="notification", entity_id=str(n.id),
                       region_code=n.region_code)
    return n


def subscriptions_query(scope: Scope) -> Select[Any]:
    stmt = select(WebhookSubscription).where(col(WebhookSubscription.active))
    if scope.principal_type != "user":
        stmt = stmt.where(WebhookSubscription.service_account_id == scope.principal_id)
    else:
        policy.require(policy.is_admin(scope))
    return stmt.order_by(col(WebhookSubscription.created_at).desc(), col(WebhookSubscription.id).desc())


def host_allowed(settings: Settings, host: str) -> bool:
    """``APP_WEBHOOK_ALLOWED_HOSTS``: exact names, or ``.suffix`` for a whole domain; empty allows any."""
    allowed = [h.strip().lower() for h in settings.webhook_allowed_hosts.split(",") if h.strip()]
    host = host.lower().rstrip(".")
    return not allowed or any(host == a or (a.startswith(".") and host.endswith(a)) for a in allowed)


async def subscribe(session: AsyncSession, *, scope: Scope, url: str,
                    settings: Settings | None = None) -> WebhookSubscription:
    if scope.principal_type != "service":
        raise NotPermitted("webhooks are subscribed by machine clients (service accounts)", code="machine_clients_only")
    policy.require(policy.has_scope(scope, "notifications:read"), code="scope_missing")
    if scope.agency is None:
        raise NotPermitted("this client speaks for no agency (`agency` on the service account), so no 通报 is "
                           "addressed to it", code="no_agency")
    try:  # a URL pydantic accepts may still be one no HTTP client can send to (e.g. an invalid IDNA host)
        httpx.Request("POST", url)
    except Exception as exc:  # noqa: BLE001 - the URL's fault, told to the caller
        raise Unprocessable(f"webhook url cannot be used: {exc}", code="invalid_webhook_url") from exc
    if settings is not None and not host_allowed(settings, httpx.URL(url).host):
        raise Unprocessable(f"webhooks may only point at the hosts allowed by APP_WEBHOOK_ALLOWED_HOSTS "
                            f"({settings.webhook_allowed_hosts})", code="webhook_host_not_allowed")
    sub = WebhookSubscription(service_account_id=scope.principal_id, region_code=scope.region_code, url=url)
    session.add(sub)
    await session.flush()
    await audit.record(session, action="webhook.subscribe", entity_type="webhook_subscription",
                       entity_id=str(sub.id), region_code=sub.region_code, after={"url": url})
    return sub


async def unsubscribe(session: AsyncSession, *, scope: Scope, subscription_id: uuid.UUID) -> None:
    sub = await get_visible(session, WebhookSubscription, subscription_id, what="webhook", for_update=True)
    mine = scope.principal_type == "service" and sub.service_account_id == scope.principal_id
    if not (mine or policy.is_admin(scope) is True) or not sub.active:
        raise NotFound(f"webhook {subscription_id} not found", code="webhook_not_found")
    sub.active = False
    await session.execute(text("UPDATE webhook_delivery SET status = 'failed', last_error = 'unsubscribed'"
                               " WHERE subscription_id = :id AND status = 'pending'"), {"id": sub.id})
    await audit.record(session, action="webhook.unsubscribe", entity_type="webhook_subscription",
                       entity_id=str(sub.id), region_code=sub.region_code, before={"url": sub.url})

