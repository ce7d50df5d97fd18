"""Gate 2: what a caller may do, beyond where (gate 1, app/scope.py). Each rule returns True or the
reason it refuses; ``require`` turns a reason into a 403."""

from __future__ import annotations

from collections.abc import Iterable

from app.errors import NotPermitted
from app.models.common import Level, Role
from app.scope import Scope

Decision = bool | str


def require(decision: Decision, *, code: str = "forbidden") -> None:
    if decision is not True:
        raise NotPermitted(str(decision), code=code)


def is_admin(scope: Scope) -> Decision:
    if scope.principal_type == "user" and Role.admin in scope.roles:
        return True
    return "only administrators manage users and service accounts"


def _missing_roles(scope: Scope, roles: Iterable[str]) -> list[str]:
    return sorted(set(roles) - set(scope.roles))


def can_grant_roles(scope: Scope, roles: Iterable[str]) -> Decision:
    missing = _missing_roles(scope, roles)
    return True if not missing else f"you cannot grant roles you do not hold: {', '.join(missing)}"


def can_manage_user(scope: Scope, target_roles: Iterable[str]) -> Decision:
    """Changing someone who holds a role you lack (e.g. resetting their password) would let you act
    with that role: the same rule as granting it."""
    missing = _missing_roles(scope, target_roles)
    return True if not missing else f"you cannot change a user who holds roles you do not hold: {', '.join(missing)}"


def require_role(scope: Scope, *roles: str, doing: str, at_or_above: Level | None = None) -> None:
    """The one role rule of the workflows: a person holding one of ``roles`` (in a bureau at
    ``at_or_above`` or higher, when given) may do ``doing``; anyone else is 403 ``role_not_permitted``."""
    level_ok = at_or_above is None or scope.at_or_above(at_or_above)
    if scope.principal_type != "user" or not (set(roles) & scope.roles) or not level_ok:
        where = f" of a {at_or_above.value} bureau or above" if at_or_above is not None else ""
        raise NotPermitted(f"only {' or '.join(sorted(roles))}s{where} {doing}", code="role_not_permitted")


def has_scope(scope: Scope, needed: str) -> Decision:
    """Machine clients read what their scopes name; people are governed by their roles."""
    if scope.principal_type == "user" or needed in scope.scopes:
        return True
    return f"this client lacks the scope {needed}"


# Who did what inside a bureau (staff usernames) is the bureaus' own business: machine clients get the
# bureau codes and the facts, not the names (see redact_people).
STAFF_NAME_KEYS = frozenset({"proposed_by", "by", "actor", "created_by", "set_by", "receipt_by", "asked_by",
                             "answered_by", "actor_id"})


def redact_people(value: object, scope: Scope) -> object:
    """``value`` with staff names removed, for a machine client; unchanged for people."""
    if scope.principal_type == "user":
        return value
    if isinstance(value, dict):
        return {k: redact_people(v, scope) for k, v in value.items() if k not in STAFF_NAME_KEYS}
    if isinstance(value, list):
        return [redact_people(v, scope) for v in value]
    return value


def can_keep_archives(scope: Scope) -> Decision:
    """Inspectors, officers and admins of a bureau keep its archives (enterprises, licences, manual
    key flags); leaders and machine clients read them."""
    if scope.principal_type == "user" and {Role.inspector, Role.officer, Role.admin} & scope.roles:
        return True
    return "only inspectors, officers and admins change archives"


def can_record_inspections(scope: Scope) -> Decision:
    """Inspectors and officers record inspections, their changes and attachments."""
    if scope.principal_type == "user" and {Role.inspector, Role.officer} & scope.roles:
        return True
    return "only inspectors and officers record inspections"


def can_designate_key_regions(scope: Scope) -> Decision:
    if (scope.principal_type == "user" and {Role.leader, Role.admin} & scope.roles
            and scope.at_or_above(Level.provincial)):
        return True
    return "key regions are designated by leaders or admins of national and provincial bureaus"


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
