"""All tables, imported here so that Alembic's metadata sees every one of them."""

from app.models.audit import AuditEvent
from app.models.auth import LoginThrottle, RefreshToken, RevokedAccessToken
from app.models.idempotency import IdempotencyRecord
from app.models.reference import ProductCategory, Region
from app.models.user import ServiceAccount, User

__all__ = [
    "AuditEvent",
    "IdempotencyRecord",
    "LoginThrottle",
    "ProductCategory",
    "RefreshToken",
    "Region",
    "RevokedAccessToken",
    "ServiceAccount",
    "User",
]
