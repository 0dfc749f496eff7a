"""The lease protocol of the stores that several processes share (Redis, PostgreSQL, MongoDB).

A lease is the right to handle the next event of one session. It lives in the store beside the record,
carries this store object's random ``owner`` token and a time to live (``lease`` seconds), and:

- ``begin`` takes the lease and reads the record in one round trip; while another process holds it,
  ``begin`` polls with a short exponential backoff, up to ``lock_timeout`` seconds;
- while the handler runs, a timer renews the lease every ``lease / 3`` seconds, so a slow handler keeps
  it and a crashed process loses it ``lease`` seconds after its last renewal;
- ``commit`` saves the record and appends to its history log only if no other process holds a live
  lease (fencing) and the stored version is the one read (or there is no live record), then ends the
  lease, in one round trip;
- ``release`` ends the lease without saving.

The token names the process, not the event: events of one session never overlap inside a process (the
dispatcher's per-key lock), so a lease this process left behind (its release failed while the store was
down) is simply taken back by its next ``begin`` instead of blocking the session for ``lease`` seconds.
"""
from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Mapping
from typing import Any

from botkit.core.errors import ConfigError, StoreUnavailable, VersionConflict
from botkit.core.keys import shown
from botkit.core.session import key_of
from botkit.storage.base import NOTHING, Appended, Lease, SessionStore

log = logging.getLogger("botkit.drivers")

SAVED, STALE, LEASE_LOST = 1, 0, -1
"""What ``_write`` reports: saved; refused, the stored version moved on; refused, another process
holds the lease."""

FIRST_WAIT = 0.001
LONGEST_WAIT = 0.02


class SharedStore(SessionStore):
    """Base of the stores shared between processes. Subclasses implement the four ``_`` methods, each
    one round trip, plus ``load``, ``history``, ``delete``, ``keys`` and ``incr``."""

    shared = True

    def __init__(self, settings: Mapping[str, Any], **kwargs: Any) -> None:
        super().__init__(settings, **kwargs)
        self.lease: float = float(self.settings["lease"])
        self.owner = secrets.token_urlsafe(16)
        self._renewals: dict[str, list[Any]] = {}
        self._renewing: set[asyncio.Task[None]] = set()

    @classmethod
    def validate(cls, settings: Mapping[str, Any]) -> None:
        super().validate(settings)
        lease = settings.get("lease", cls.defaults.get("lease"))
        if isinstance(lease, bool) or not isinstance(lease, (int, float)) or lease < 0.1:
            raise ConfigError(f"session.stores.{cls.name}.lease", f"must be seconds (at least 0.1), not {lease!r}")

    # -- what a driver implements ----------------------------------------------------------------

    async def _take(self, key: str) -> tuple[bool, dict[str, Any] | None]:
        """Take the lease on ``key`` if it is free, expired or already this owner's; return whether it
        was taken and, if so, the live record (None when missing or expired)."""
        raise NotImplementedError

    async def _write(self, record: dict[str, Any], owner: str | None, appended: Appended) -> int:
        """Save ``record`` and append ``appended`` to its history unless another owner holds a live lease
        or the stored live record's version is not ``record['version'] - 1``; end ``owner``'s lease
        either way. SAVED, STALE or LEASE_LOST."""
        raise NotImplementedError

    async def _give_back(self, key: str) -> None:
        """End this owner's lease on ``key`` if it still holds it."""
        raise NotImplementedError

    async def _extend(self, key: str) -> bool:
        """Push this owner's lease on ``key`` ``lease`` seconds ahead; False if it no longer holds it."""
        raise NotImplementedError

    # -- the lease protocol -----------------------------------------------------------------------

    async def begin(self, key: str) -> Lease:
        loop = asyncio.get_running_loop()
        wait = FIRST_WAIT
        deadline = loop.time() + self.lock_timeout
        while True:
            taken, record = await self._take(key)
            if taken:
                self._keep_alive(key)
                return Lease(key, record, self.owner)
            if loop.time() >= deadline:
                raise StoreUnavailable(f"session {key} stayed leased by another process for {self.lock_timeout}s")
            await asyncio.sleep(wait)
            wait = min(wait * 2, LONGEST_WAIT)

    async def commit(self, lease: Lease, record: dict[str, Any], appended: Appended = NOTHING) -> None:
        self._stop_renewing(lease.key)
        # The lease ends here even if the store does not answer: left in the store, it is this owner's,
        # so the next begin takes it back; no second round trip to a store that just failed one.
        lease.token = None
        outcome = await self._write(record, self.owner, appended)
        if outcome == LEASE_LOST:
            raise VersionConflict(f"session {lease.key}: the lease ran out and another process took it")
        if outcome == STALE:
            raise VersionConflict(f"session {lease.key} changed since it was loaded")

    async def release(self, lease: Lease) -> None:
        if lease.token is None:
            return
        lease.token = None
        self._stop_renewing(lease.key)
        await self._give_back(lease.key)

    async def save(self, record: dict[str, Any], appended: Appended = NOTHING) -> None:
        outcome = await self._write(record, None, appended)
        if outcome == LEASE_LOST:
            raise VersionConflict(f"session {key_of(record)} is leased by another process")
        if outcome == STALE:
            raise VersionConflict(f"session {key_of(record)} changed since it was loaded")

    async def close(self) -> None:
        for key in list(self._renewals):
            self._stop_renewing(key)
        running = list(self._renewing)
        for task in running:
            task.cancel()
        await asyncio.gather(*running, return_exceptions=True)

    # -- renewal ------------------------------------------------------------------------------------

    def _keep_alive(self, key: str) -> None:
        loop = asyncio.get_running_loop()
        period = self.lease / 3
        entry: list[Any] = []

        def due() -> None:
            task = loop.create_task(renew())
            self._renewing.add(task)
            task.add_done_callback(self._renewing.discard)

        async def renew() -> None:
            try:
                kept = await asyncio.wait_for(self._extend(key), self.timeout)
            except Exception as exc:  # the store is away; the lease may still hold, try again
                log.warning("could not renew the lease on session %s: %s", shown(key), exc)
                kept = True
            if not kept:
                log.warning("the lease on session %s ran out while its handler ran; its save will be refused", shown(key))
            elif self._renewals.get(key) is entry:
                entry[0] = loop.call_later(period, due)

        entry.append(loop.call_later(period, due))
        self._renewals[key] = entry

    def _stop_renewing(self, key: str) -> None:
        entry = self._renewals.pop(key, None)
        if entry is not None:
            entry[0].cancel()


def expiry_ms(record: dict[str, Any], now: float) -> int:
    """Milliseconds the record has left to live (at least 1), or 0 when it never expires."""
    expires_at = record.get("expires_at")
    if expires_at is None:
        return 0
    return max(1, int((expires_at - now) * 1000))
