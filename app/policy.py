"""Gate 2: what a caller may do, beyond where (gate 1, app/scope.py). Each rule returns True or the
reason it refuses; ``require`` turns a reason into a 403."""

from __future__ import annotations

from collections.abc import Iterable

from app.errors import NotPermitted
from app.models.common import Role
from app.scope import Scope

Decision = bool | str


def require(decision: Decision, *, code: str = "forbidden") -> None:
    if decision is not True:
        raise NotPermitted(str(decision), code=code)


def is_admin(scope: Scope) -> Decision:
    if scope.principal_type == "user" and Role.admin in scope.roles:
        return True
    return "only administrators manage users and service accounts"


def can_grant_roles(scope: Scope, roles: Iterable[str]) -> Decision:
    missing = sorted(set(roles) - set(scope.roles))
    return True if not missing else f"you cannot grant roles you do not hold: {', '.join(missing)}"


def can_manage_user(scope: Scope, target_roles: Iterable[str]) -> Decision:
    """Changing someone who holds a role you lack (e.g. resetting their password) would let you act
    with that role: the same rule as granting it."""
    missing = sorted(set(target_roles) - set(scope.roles))
    return True if not missing else f"you cannot change a user who holds roles you do not hold: {', '.join(missing)}"


def can_manage_service_accounts(scope: Scope) -> Decision:
    admin = is_admin(scope)
    if admin is not True:
        return admin
    if scope.level.value not in ("national", "provincial"):
        return "only national or provincial administrators manage service accounts"
    return True


def can_read_audit(scope: Scope) -> Decision:
    if scope.principal_type == "user" and (Role.admin in scope.roles or Role.leader in scope.roles):
        return True
    return "only administrators and leaders read the audit log"


def can_verify_audit_chain(scope: Scope) -> Decision:
    if scope.is_national and scope.principal_type == "user" and Role.admin in scope.roles:
        return True
    return "only national administrators verify the whole audit chain"
