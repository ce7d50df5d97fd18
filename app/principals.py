"""The caller behind an access token, resolved once and then served from memory.

Every request used to pay a token verification and a database lookup of the principal (roles,
region, active, revoked jti, password changed): about a millisecond, a fifth of a list request.
This cache maps an access token to the ``Scope`` it resolved to. It is safe because it is only used
while it hears about every change that could alter the answer:

* The database announces changes: migration 0017 puts row triggers on ``app_user``,
  ``service_account`` and ``revoked_access_token`` that ``pg_notify('principal_changed')``.
  Each worker process keeps one ``LISTEN`` connection (``PrincipalCache.listen``); a notification
  empties the cache. Changes made by other processes or by hand in ``psql`` are covered alike.
* No listener, no cache: until the ``LISTEN`` connection is up, and from the moment it is lost
  until it is back, lookups miss and nothing is stored, so a lost connection costs speed, never
  correctness.
* A change made in this process empties the cache when its transaction commits (a session hook
  below), before the response that reports it is sent, so the caller's next request already sees it.
  Another worker sees it when the notification arrives, a few milliseconds after the commit.
* A lookup that read the database before a change and finishes after the cache was emptied for it
  is not stored (``generation``), so an in-flight request cannot put back what a change removed.
* A connection that drops without a word (a NAT or firewall timeout) loses notifications silently: the
  listener asks it something every 2 s and turns the cache off when it does not answer in 2 s, so
  such a loss can hide a change for about 4 s at most.
* An entry also ends at the token's ``exp`` and after ``APP_PRINCIPAL_CACHE_SECONDS`` at most, and a
  hit checks that the signing keys, issuer and audience are still the configured ones (a retired
  key stops its tokens at once).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import weakref
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import event
from sqlalchemy.orm import ORMExecuteState, Session

from app.config import Settings
from app.scope import Scope

log = logging.getLogger(__name__)

CHANNEL = "principal_changed"
PRINCIPAL_TABLES = frozenset({"app_user", "service_account", "revoked_access_token"})
_CHANGED = "principals_changed"
_caches: weakref.WeakSet[PrincipalCache] = weakref.WeakSet()


@dataclass(frozen=True)
class _Entry:
    scope: Scope
    jwt_keys: str
    issuer: str
    audience: str
    until: float  # time.time(): the earlier of the token's exp and the cache's own limit


class PrincipalCache:
    def __init__(self, *, max_age_seconds: float = 300.0, max_entries: int = 20_000) -> None:
        self.max_age = max_age_seconds
        self.max_entries = max_entries
        self._entries: dict[str, _Entry] = {}
        self._listening = False
        self.hits = self.misses = self.clears = 0
        self.generation = 0  # bumped by every clear()
        _caches.add(self)

    @property
    def active(self) -> bool:
        return self._listening and self.max_age > 0

    def get(self, token: str, settings: Settings) -> Scope | None:
        entry = self._entries.get(token) if self.active else None
        if entry is None:
            self.misses += 1
            return None
        if (entry.until <= time.time() or settings.jwt_keys != entry.jwt_keys
                or settings.jwt_issuer != entry.issuer or settings.jwt_audience != entry.audience):
            self._entries.pop(token, None)
            self.misses += 1
            return None
        self.hits += 1
        return entry.scope

    def put(self, token: str, settings: Settings, *, exp: float, scope: Scope, generation: int) -> None:
        """Store what a lookup that started at ``generation`` (``self.generation`` then) found: if the
        cache was emptied meanwhile, a change may have committed after the lookup read the database,
        and its answer is not kept."""
        if not self.active or generation != self.generation:
            return
        if len(self._entries) >= self.max_entries:
            self._entries.clear()  # a burst of distinct tokens: start over rather than track ages
        self._entries[token] = _Entry(scope=scope, jwt_keys=settings.jwt_keys, issuer=settings.jwt_issuer,
                                      audience=settings.jwt_audience, until=min(exp, time.time() + self.max_age))

    def clear(self) -> None:
        self._entries.clear()
        self.clears += 1
        self.generation += 1

    def __len__(self) -> int:
        return len(self._entries)

    async def listen(self, connect: Callable[[], Awaitable[Any]], *, retry_seconds: float = 1.0,
                     check_seconds: float = 2.0) -> None:
        """Keep a LISTEN connection (``connect()`` returns an asyncpg connection) for as long as the
        task runs; the cache is active only while it is up (checked every ``check_seconds``).
        Reconnects after a loss."""
        while True:
            conn = None
            lost = asyncio.Event()
            try:
                conn = await connect()
                conn.add_termination_listener(lambda _c, lost=lost: lost.set())
                await conn.add_listener(CHANNEL, lambda *_a: self.clear())
                self.clear()  # anything could have changed while nobody listened
                self._listening = True
                while not lost.is_set():
                    try:
                        await asyncio.wait_for(lost.wait(), timeout=check_seconds)
                    except TimeoutError:
                        # a connection dropped without a word (a silent network) would keep the cache on
                        # while no notification can arrive: ask it something now and then
                        await conn.fetchval("SELECT 1", timeout=check_seconds)
                log.warning("principal cache: LISTEN connection lost; caching off until it is back")
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - any failure only turns the cache off
                log.warning("principal cache: cannot LISTEN (%s); caching off, retrying", exc)
            finally:
                self._listening = False
                self.clear()
                if conn is not None and not conn.is_closed():
                    with contextlib.suppress(Exception):
                        await conn.close(timeout=2)
            await asyncio.sleep(retry_seconds)


def clear_all() -> None:
    """Empty every cache of this process (a principal changed here)."""
    for cache in list(_caches):
        cache.clear()


def _touches_principals(tables: set[str]) -> bool:
    return not PRINCIPAL_TABLES.isdisjoint(tables)


@event.listens_for(Session, "after_flush")
def _note_flushed_changes(session: Session, _ctx: Any) -> None:
    changed = {getattr(obj, "__tablename__", "") for obj in (*session.new, *session.dirty, *session.deleted)}
    if _touches_principals(changed):
        session.info[_CHANGED] = True


@event.listens_for(Session, "do_orm_execute")
def _note_statement_changes(state: ORMExecuteState) -> None:
    if state.is_insert or state.is_update or state.is_delete:
        table = getattr(state.statement, "table", None)
        if getattr(table, "name", None) in PRINCIPAL_TABLES:
            state.session.info[_CHANGED] = True


@event.listens_for(Session, "after_commit")
def _clear_after_commit(session: Session) -> None:
    if session.info.pop(_CHANGED, False):
        clear_all()
