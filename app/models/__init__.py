"""All tables, imported here so that Alembic's metadata sees every one of them."""

from app.models.audit import AuditChainHead, AuditEvent
from app.models.auth import LoginThrottle, RefreshToken, RevokedAccessToken
from app.models.campaign import Campaign, CampaignDelta, CampaignDirty, CampaignEnterprise, CampaignTarget
from app.models.case import BadRecord, CaseEscalation, CaseEvent, CaseMeasure, Notification, PenaltyCase
from app.models.enterprise import Enterprise, EnterpriseKeyFlag, License
from app.models.focus import KeyRegion
from app.models.idempotency import IdempotencyRecord
from app.models.inspection import Attachment, Inspection
from app.models.integration import WebhookDelivery, WebhookSubscription
from app.models.oversight import Acceptance, RectificationPlan, Supervision
from app.models.recall import Recall, RecallProgress
from app.models.reference import ProductCategory, Region
from app.models.report import Report
from app.models.user import ServiceAccount, User

__all__ = [
    "AuditChainHead",
    "Attachment",
    "AuditEvent",
    "Enterprise",
    "EnterpriseKeyFlag",
    "Inspection",
    "License",
    "PenaltyCase",
    "Campaign",
    "CampaignDelta",
    "CampaignDirty",
    "CampaignEnterprise",
    "CampaignTarget",
    "BadRecord",
    "CaseEscalation",
    "CaseEvent",
    "CaseMeasure",
    "Notification",
    "IdempotencyRecord",
    "KeyRegion",
    "LoginThrottle",
    "ProductCategory",
    "Recall",
    "RectificationPlan",
    "Supervision",
    "Acceptance",
    "RecallProgress",
    "RefreshToken",
    "Region",
    "Report",
    "RevokedAccessToken",
    "ServiceAccount",
    "User",
    "WebhookDelivery",
    "WebhookSubscription",
]
