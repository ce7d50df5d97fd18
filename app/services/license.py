"""Production licences (生产许可证): number format, recording, status kept current, and the
enterprise's ``licensed`` that follows from them.

Decisions:
- A licence is recorded by the bureau that keeps the enterprise's archive (any inspector, officer or
  admin whose jurisdiction holds the enterprise), whatever level issued it: ``issuer_level`` is a
  fact about the licence, not about the caller.
- Provincial numbers are stored with full-width parentheses, ``（鄂）XK12-001-00018``; ASCII ones
  are accepted and normalised, so the unique number cannot be recorded twice in two spellings.
- A licence is valid through its ``expires_on`` (China Standard Time). The expiry job persists
  ``expired`` (audited, ``licensed`` recomputed); until it has run, reads already report a valid
  licence past its date as ``expired`` and the ``status`` filter agrees with what is shown.
"""

from __future__ import annotations

import re
import uuid
from datetime import date, datetime, timedelta, timezone
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, exists, or_, text, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.attributes import set_committed_value
from sqlalchemy.orm.util import identity_key
from sqlmodel import col, select

from app.errors import Conflict, Unprocessable
from app.models.common import Level, utcnow
from app.models.enterprise import NUMBER_CORE, Enterprise, License, LicenseCreate, LicensePublic, LicenseStatus
from app.models.reference import ProductCategory
from app.scope import Scope, get_visible
from app.services import audit, versioned
from app.services import enterprise as enterprise_service

CHINA_TZ = timezone(timedelta(hours=8), "CST")  # no daylight saving: a fixed offset is exact

# Province code prefix -> the one-character abbreviations used on provincial licence numbers.
PROVINCE_ABBREVIATIONS: dict[str, tuple[str, ...]] = {
    "11": ("京",), "12": ("津",), "13": ("冀",), "14": ("晋",), "15": ("蒙",), "21": ("辽",), "22": ("吉",),
    "23": ("黑",), "31": ("沪",), "32": ("苏",), "33": ("浙",), "34": ("皖",), "35": ("闽",), "36": ("赣",),
    "37": ("鲁",), "41": ("豫",), "42": ("鄂",), "43": ("湘",), "44": ("粤",), "45": ("桂",), "46": ("琼",),
    "50": ("渝",), "51": ("川",), "52": ("贵", "黔"), "53": ("云", "滇"), "54": ("藏",), "61": ("陕",),
    "62": ("甘", "陇"), "63": ("青",), "64": ("宁",), "65": ("新",), "71": ("台",), "81": ("港",), "82": ("澳",),
}
_ABBREVIATED = {a for abbrs in PROVINCE_ABBREVIATIONS.values() for a in abbrs}
_NATIONAL = re.compile(f"^{NUMBER_CORE}$")
_PROVINCIAL = re.compile(f"^[(（](?P<abbr>[^()（）])[)）](?P<rest>{NUMBER_CORE})$")
NUMBER_FORMAT = ("a licence number is XK, 2 category digits, 3 digits and 5 digits (national, e.g. "
                 "XK12-001-00018), or that preceded by the issuing province's abbreviation in parentheses "
                 "(provincial, e.g. （鄂）XK12-001-00018)")


def today() -> date:
    """The regulators' calendar day (UTC+8)."""
    return datetime.now(CHINA_TZ).date()


def start_of_day(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=CHINA_TZ)


def local_date(at: datetime) -> date:
    return at.astimezone(CHINA_TZ).date()


def _number_problem(detail: str, code: str = "invalid_license_number", where: str = "body") -> Unprocessable:
    return Unprocessable(detail, code=code, extra={"errors": [{"loc": [where, "number"], "msg": detail}]})


def parse_number(raw: str, *, where: str = "body") -> tuple[str, str | None]:
    """(normalised number, province abbreviation or None for a national number); 422 when malformed."""
    number = raw.strip().upper()
    if _NATIONAL.match(number):
        return number, None
    m = _PROVINCIAL.match(number)
    if m is None:
        raise _number_problem(f"{raw!r} is not a licence number: {NUMBER_FORMAT}", where=where)
    abbr = m.group("abbr")
    if abbr not in _ABBREVIATED:
        raise _number_problem(f"{abbr!r} is not the abbreviation of a province", where=where)
    return f"（{abbr}）{m.group('rest')}", abbr


def check_number(abbr: str | None, *, issuer_level: Level, enterprise_region: str) -> None:
    """The number's form says who issued it; a provincial number names the enterprise's province."""
    if abbr is None and issuer_level is not Level.national:
        raise Unprocessable("a number without a province abbreviation is a national licence: issuer_level must "
                            "be national", code="issuer_level_mismatch")
    if abbr is not None and issuer_level is not Level.provincial:
        raise Unprocessable(f"a number beginning with （{abbr}） is a provincial licence: issuer_level must be "
                            "provincial", code="issuer_level_mismatch")
    if abbr is not None:
        expected = PROVINCE_ABBREVIATIONS.get(enterprise_region[:2], ())
        if abbr not in expected:
            raise _number_problem(
                f"（{abbr}） is not the province of the enterprise ({enterprise_region[:2]}0000"
                f"{', abbreviated ' + ' or '.join(expected) if expected else ''})", code="license_province_mismatch")


def status_on(status: str, expires_on: date, day: date | None = None) -> LicenseStatus:
    """The status a licence stored as ``status`` and ``expires_on`` has on ``day`` (today): a valid one
    past its expiry is expired before the expiry job writes it."""
    if status == LicenseStatus.valid and expires_on < (day or today()):
        return LicenseStatus.expired
    return LicenseStatus(status)


def effective_status(lic: License, day: date | None = None) -> LicenseStatus:
    return status_on(lic.status, lic.expires_on, day)


def to_public(lic: License, day: date | None = None) -> LicensePublic:
    return LicensePublic(
        id=lic.id, number=lic.number, enterprise_id=lic.enterprise_id, region_code=lic.region_code,
        category_code=lic.category_code, issued_on=lic.issued_on, expires_on=lic.expires_on,
        issuer_level=lic.issuer_level, status=effective_status(lic, day), version=lic.version,
        created_at=lic.created_at)


def _snapshot(lic: License) -> dict[str, Any]:
    return to_public(lic).model_dump(mode="json", exclude={"created_at"}) | {"status": lic.status.value}


def valid_condition(day: date) -> ColumnElement[bool]:
    """A licence row that is valid on ``day``: the ONE definition used by ``licensed``, the flags,
    the filters and the key-region figures."""
    return and_(col(License.status) == LicenseStatus.valid, col(License.expires_on) >= day)


def holds_valid_licence(enterprise_id: Any, day: date) -> ColumnElement[bool]:
    """EXISTS a valid licence of the enterprise whose id is ``enterprise_id`` (a correlated column)."""
    return exists().where(col(License.enterprise_id) == enterprise_id, valid_condition(day))


def status_condition(status: LicenseStatus, day: date) -> ColumnElement[bool]:
    if status is LicenseStatus.valid:
        return valid_condition(day)
    if status is LicenseStatus.expired:
        return or_(col(License.status) == LicenseStatus.expired,
                   and_(col(License.status) == LicenseStatus.valid, col(License.expires_on) < day))
    return col(License.status) == status


def _same(lic: License, number: str, data: LicenseCreate) -> bool:
    return (lic.number, lic.enterprise_id, lic.category_code, lic.issued_on, lic.expires_on, lic.issuer_level) == (
        number, data.enterprise_id, data.category_code, data.issued_on, data.expires_on, data.issuer_level)


async def create(session: AsyncSession, *, scope: Scope, data: LicenseCreate) -> tuple[License, bool]:
    """Record a licence in the archive; returns it and whether it was created (False: a replay of a
    client-supplied id). ``licensed`` of the enterprise is recomputed in the same transaction."""
    enterprise_service.require_writer(scope)
    number, abbr = parse_number(data.number)
    existing = await versioned.replayed(session, License, data.id, scope=scope, what="licence",
                                        same=lambda lic: _same(lic, number, data))
    if existing is not None:
        return existing, False
    # Locking the enterprise serialises every change of its licences, so `licensed` never races.
    e = await enterprise_service.get(session, scope=scope, enterprise_id=data.enterprise_id, for_update=True)
    check_number(abbr, issuer_level=data.issuer_level, enterprise_region=e.region_code)
    if data.issued_on >= data.expires_on:
        msg = "expires_on must be after issued_on"
        raise Unprocessable(msg, code="invalid_dates", extra={"errors": [{"loc": ["body", "expires_on"], "msg": msg}]})
    await enterprise_service.check_categories(session, [data.category_code])
    taken = (await session.execute(
        select(License.id).where(License.number == number).execution_options(unscoped=True))).first()
    if taken:
        raise Conflict(f"a licence numbered {number} is already recorded", code="license_number_taken")
    status = LicenseStatus.expired if data.expires_on < today() else LicenseStatus.valid
    lic = License(number=number, enterprise_id=e.id, region_code=e.region_code, category_code=data.category_code,
                  issued_on=data.issued_on, expires_on=data.expires_on, issuer_level=data.issuer_level,
                  status=status)
    if data.id is not None:
        lic.id = data.id
    session.add(lic)
    await session.flush()
    await audit.record(session, action="license.create", entity_type="license", entity_id=str(lic.id),
                       region_code=lic.region_code, after=_snapshot(lic))
    await recompute_licensed(session, [e.id], cause=f"license.create {lic.number}")
    return lic, True


async def get(session: AsyncSession, *, scope: Scope, license_id: uuid.UUID) -> License:
    return await get_visible(session, License, license_id, what="license")


async def list_query(session: AsyncSession, *, scope: Scope, enterprise_id: uuid.UUID | None,
                     status: LicenseStatus | None, category: str | None, region: str | None,
                     expiring_before: date | None, number: str | None) -> Select[Any]:
    stmt = select(License)
    if region is not None:
        stmt = stmt.where(scope.inside(col(License.region_code), region))
    if enterprise_id is not None:
        stmt = stmt.where(License.enterprise_id == enterprise_id)
    if status is not None:
        stmt = stmt.where(status_condition(status, today()))
    if category:
        subs = select(ProductCategory.code).where(ProductCategory.parent_code == category)
        stmt = stmt.where(or_(col(License.category_code) == category, col(License.category_code).in_(subs)))
    if expiring_before is not None:
        stmt = stmt.where(col(License.expires_on) < expiring_before)
    if number:
        stmt = stmt.where(License.number == parse_number(number, where="query")[0])
    return stmt.order_by(col(License.created_at).desc(), col(License.id).desc())


async def set_status(session: AsyncSession, *, scope: Scope, license_id: uuid.UUID, status: LicenseStatus,
                     cause: str) -> License:
    """Change a licence's status for a case (suspension, revocation, cancellation; there is no
    generic PATCH): locks the enterprise then the licence, audits, and recomputes ``licensed``.
    Authority (who may suspend or revoke) is the calling workflow's to check."""
    lic = await get(session, scope=scope, license_id=license_id)
    await enterprise_service.get(session, scope=scope, enterprise_id=lic.enterprise_id, for_update=True)
    await session.refresh(lic, with_for_update=True)
    before = _snapshot(lic)
    lic.status = status
    lic.version += 1
    lic.updated_at = utcnow()
    await session.flush()
    await audit.record(session, action="license.status", entity_type="license", entity_id=str(lic.id),
                       region_code=lic.region_code, before=before, after=_snapshot(lic) | {"cause": cause})
    await recompute_licensed(session, [lic.enterprise_id], cause=f"license.status {lic.number}: {cause}")
    return lic


async def recompute_licensed(session: AsyncSession, enterprise_ids: list[uuid.UUID], *, cause: str,
                             day: date | None = None) -> list[uuid.UUID]:
    """Set ``licensed`` of these enterprises from their licences in one UPDATE; audit each change.
    Call it whenever a licence is created or its status changes. The ids must have been resolved
    through the caller's scope (or be a background job's): the statement itself is unscoped."""
    if not enterprise_ids:
        return []
    holds = holds_valid_licence(Enterprise.id, day or today())
    now = utcnow()
    rows = (await session.execute(
        update(Enterprise)
        .where(col(Enterprise.id).in_(enterprise_ids), col(Enterprise.licensed).is_distinct_from(holds))
        .values(licensed=holds, version=col(Enterprise.version) + 1, updated_at=now)
        .returning(col(Enterprise.id), col(Enterprise.region_code), col(Enterprise.licensed), col(Enterprise.version))
        .execution_options(synchronize_session=False, unscoped=True))).all()
    for eid, region_code, licensed, version in rows:
        loaded = session.identity_map.get(identity_key(Enterprise, eid))
        if loaded is not None:  # keep a loaded copy true to the row without another query
            for attr, value in (("licensed", licensed), ("version", version), ("updated_at", now)):
                set_committed_value(loaded, attr, value)
        await audit.record(session, action="enterprise.licensed", entity_type="enterprise", entity_id=str(eid),
                           region_code=region_code, before={"licensed": not licensed},
                           after={"licensed": licensed, "version": version, "cause": cause})
    return [r[0] for r in rows]


async def expire_due(session: AsyncSession, *, day: date | None = None, batch: int = 1000) -> int:
    """Background job: mark valid licences past their date ``expired`` (audited) and recompute
    ``licensed``. Rows another worker holds are skipped, so replicas can run it side by side."""
    day = day or today()
    total = 0
    # thousands of enterprises may change here: their campaign contributions are recomputed after each
    # statement, under its own timeout, not all at COMMIT (migration 0018)
    await session.execute(text("SET CONSTRAINTS pqs_campaign_flush IMMEDIATE"))
    overdue = (col(License.status) == LicenseStatus.valid, col(License.expires_on) < day)
    while True:
        # The producers concerned are locked first, in id order. A licence change marks its producer and
        # (IMMEDIATE) its campaign contribution and key facts are recomputed at once, holding their rows
        # until commit; a request committing meanwhile locks the producer first and those rows second
        # (migrations 0018, 0020), and would deadlock with this transaction's later update of
        # `licensed` if the job had not taken the producer before.
        pending = (select(License.enterprise_id).where(*overdue).order_by(col(License.expires_on)).limit(batch)
                   .execution_options(unscoped=True))
        producers = sorted(set((await session.execute(pending)).scalars()))
        locked = list((await session.execute(
            select(Enterprise.id).where(col(Enterprise.id).in_(producers)).order_by(col(Enterprise.id))
            .with_for_update(key_share=True).execution_options(unscoped=True))).scalars()) if producers else []
        due = (select(License.id).where(*overdue, col(License.enterprise_id).in_(locked))
               .order_by(col(License.expires_on)).limit(batch).with_for_update(skip_locked=True))
        rows = (await session.execute(
            update(License).where(col(License.id).in_(due.scalar_subquery()))
            .values(status=LicenseStatus.expired, version=col(License.version) + 1, updated_at=utcnow())
            .returning(col(License.id), col(License.number), col(License.enterprise_id), col(License.region_code),
                       col(License.expires_on), col(License.version))
            .execution_options(synchronize_session=False, unscoped=True))).all()
        for lid, number, _eid, region_code, expires_on, version in rows:
            await audit.record(session, action="license.expire", entity_type="license", entity_id=str(lid),
                               region_code=region_code, actor_name="licence-expiry job",
                               before={"status": "valid"},
                               after={"status": "expired", "number": number, "expires_on": expires_on.isoformat(),
                                      "version": version})
        await recompute_licensed(session, sorted({r[2] for r in rows}), cause="license.expire", day=day)
        total += len(rows)
        if len(rows) < batch:
            return total

