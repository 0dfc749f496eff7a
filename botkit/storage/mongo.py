"""Sessions in MongoDB (PyMongo's ``AsyncMongoClient``): one document per session key.

``{_id: <session key>, record: {...}, history: [...], version, expires_at: <BSON date or null>, lease_token,
lease_until}``. A TTL index on ``expires_at`` (created at start-up) lets the server delete expired
sessions; until its monitor passes (once a minute), an expired document counts as missing here too.

The history is the array ``history`` beside ``record`` in the same document: a save appends the event's
entries with ``$push`` (``$each``, ``$slice`` to the limit) in the same ``update_one`` as the record, so it
is atomic with the save, expires with the session under the same TTL index, and is never sent back by
``begin`` or ``load`` (they project ``record`` only).

The lease is two fields. Taking it is one ``find_one_and_update`` with ``upsert``: its filter matches
only a free, expired or own lease, so on a document leased by another process the upsert tries to
insert a second ``_id`` and fails with a duplicate key error, which means "held". Saving is one
``update_one`` filtered on the lease and the version, also an upsert, so a refused save is the same
duplicate key error. Lease times come from the bot's clock: keep the machines' clocks in step (NTP).
"""
from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from bson.errors import InvalidDocument
from pymongo import AsyncMongoClient, ReturnDocument
from pymongo.errors import DuplicateKeyError, OperationFailure

from botkit.core.errors import ConfigError, StoreRefused, StoreUnavailable
from botkit.core.session import key_of
from botkit.storage.base import Appended
from botkit.storage.bot_memory import BotMemory
from botkit.storage.inbox import Inbox
from botkit.storage.shared import LEASE_LOST, SAVED, STALE, SharedStore

LEASE_ONLY_LIFETIME = timedelta(hours=1)
"""How long the TTL index keeps a document that only ever held a lease (its handler raised)."""
TOO_LARGE = {10334, 17419, 17420}
"""Server error codes of a document over the 16 MB BSON limit (BSONObjectTooLarge, and after an update
or an upsert): like an InvalidDocument (a key holding U+0000, a document too large to send), data
MongoDB refuses for good (StoreRefused)."""


def _date(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, UTC)


class MongoStore(SharedStore):
    name = "mongo"
    defaults = {
        "url": "mongodb://127.0.0.1:27017",
        "database": "botkit",
        "collection": "sessions",
        "lease": 10.0,
        "pool_size": 100,
    }

    def __init__(self, settings: Mapping[str, Any], **kwargs: Any) -> None:
        super().__init__(settings, **kwargs)
        self.client: Any = None
        self.sessions: Any = None
        self.counters: Any = None
        self._lease_span = timedelta(seconds=self.lease)

    @classmethod
    def validate(cls, settings: Mapping[str, Any]) -> None:
        super().validate(settings)
        url = settings.get("url", cls.defaults["url"])
        if not isinstance(url, str) or not url.startswith(("mongodb://", "mongodb+srv://")):
            raise ConfigError("session.stores.mongo.url", f"must be a mongodb:// or mongodb+srv:// URL, not {url!r}")
        for name in ("database", "collection"):
            value = settings.get(name, cls.defaults[name])
            if not isinstance(value, str) or not value or "$" in value or "\0" in value:
                raise ConfigError(f"session.stores.mongo.{name}", f"must be a non-empty name without $, not {value!r}")
        size = settings.get("pool_size", cls.defaults["pool_size"])
        if isinstance(size, bool) or not isinstance(size, int) or size < 1:
            raise ConfigError("session.stores.mongo.pool_size", f"must be a positive whole number, not {size!r}")

    def inbox(self) -> Inbox:
        from botkit.storage.inbox.mongo import MongoInbox

        return MongoInbox(lambda: self.client[self.settings["database"]], self.settings["collection"])

    def bot_memory(self) -> BotMemory:
        from botkit.storage.bot_memory.mongo import MongoBotMemory

        return MongoBotMemory(lambda: self.client[self.settings["database"]], self.settings["collection"])

    # -- connection -------------------------------------------------------------------------------

    async def open(self) -> None:
        ms = int(self.timeout * 1000)
        self.client = AsyncMongoClient(
            self.settings["url"],
            tz_aware=True,
            appname="botkit",
            maxPoolSize=self.settings["pool_size"],
            serverSelectionTimeoutMS=ms,
            connectTimeoutMS=ms,
            socketTimeoutMS=ms,
        )
        database = self.client[self.settings["database"]]
        self.sessions = database[self.settings["collection"]]
        self.counters = database[self.settings["collection"] + "_counters"]
        try:
            await self.sessions.create_index("expires_at", expireAfterSeconds=0, name="expires_at_ttl")
            await self.counters.create_index("resets_at", expireAfterSeconds=0, name="resets_at_ttl")
        except Exception as exc:
            await self.close()
            raise StoreUnavailable(f"session store: cannot prepare MongoDB ({type(exc).__name__}: {exc})") from None

    async def close(self) -> None:
        await super().close()
        if self.client is not None:
            client, self.client = self.client, None
            await client.close()

    async def ping(self) -> None:
        await self.client.admin.command("ping")

    # -- filters ----------------------------------------------------------------------------------

    @staticmethod
    def _live(now: datetime) -> dict[str, Any]:
        return {"record": {"$ne": None}, "$or": [{"expires_at": None}, {"expires_at": {"$gt": now}}]}

    def _lease_free(self, now: datetime, owner: str | None) -> dict[str, Any]:
        choices: list[dict[str, Any]] = [{"lease_token": None}, {"lease_until": {"$lte": now}}]
        if owner is not None:
            choices.append({"lease_token": owner})
        return {"$or": choices}

    @staticmethod
    def _is_live(doc: Mapping[str, Any], now: datetime) -> bool:
        expires_at = doc.get("expires_at")
        return doc.get("record") is not None and (expires_at is None or expires_at > now)

    # -- the lease --------------------------------------------------------------------------------

    async def _take(self, key: str) -> tuple[bool, dict[str, Any] | None]:
        now = _date(self.clock())
        try:
            doc = await self.sessions.find_one_and_update(
                {"_id": key, **self._lease_free(now, self.owner)},
                {"$set": {"lease_token": self.owner, "lease_until": now + self._lease_span},
                 "$setOnInsert": {"version": 0, "expires_at": now + LEASE_ONLY_LIFETIME}},
                projection={"record": 1, "expires_at": 1},
                upsert=True,
                return_document=ReturnDocument.AFTER,
            )
        except DuplicateKeyError:
            return False, None
        return True, doc.get("record")

    async def _write(self, record: dict[str, Any], owner: str | None, appended: Appended) -> int:
        key = key_of(record)
        now = _date(self.clock())
        expires_at = record.get("expires_at")
        follows = {"$or": [{"version": record["version"] - 1}, {"record": None}, {"expires_at": {"$lte": now}}]}
        update: dict[str, Any] = {
            "$set": {"record": record, "version": record["version"],
                     "expires_at": None if expires_at is None else _date(expires_at)},
            "$unset": {"lease_token": "", "lease_until": ""},
        }
        entries = list(appended.entries) if appended.limit > 0 else []
        if appended.restart:
            update["$set"]["history"] = entries
        elif entries:
            update["$push"] = {"history": {"$each": entries, "$slice": -appended.limit}}
        try:
            await self.sessions.update_one(
                {"_id": key, "$and": [self._lease_free(now, owner), follows]}, update, upsert=True)
            return SAVED
        except DuplicateKeyError:
            pass
        except (InvalidDocument, OperationFailure) as exc:
            if isinstance(exc, OperationFailure) and exc.code not in TOO_LARGE:
                raise
            raise StoreRefused(f"MongoDB refused the data for good ({type(exc).__name__}"
                               f"{'' if isinstance(exc, InvalidDocument) else f', code {exc.code}'})") from None
        if owner is not None:
            return STALE if await self._give_back_counted(key) else LEASE_LOST
        held = await self.sessions.find_one({"_id": key, "lease_until": {"$gt": now}}, projection={"_id": 1})
        return LEASE_LOST if held is not None else STALE

    async def _give_back_counted(self, key: str) -> int:
        result = await self.sessions.update_one(
            {"_id": key, "lease_token": self.owner}, {"$unset": {"lease_token": "", "lease_until": ""}})
        return int(result.modified_count)

    async def _give_back(self, key: str) -> None:
        await self._give_back_counted(key)

    async def _extend(self, key: str) -> bool:
        result = await self.sessions.update_one(
            {"_id": key, "lease_token": self.owner},
            {"$set": {"lease_until": _date(self.clock()) + self._lease_span}})
        return bool(result.matched_count == 1)

    # -- the rest of the interface ----------------------------------------------------------------

    async def load(self, key: str) -> dict[str, Any] | None:
        doc = await self.sessions.find_one({"_id": key, **self._live(_date(self.clock()))}, projection={"record": 1})
        return None if doc is None else dict(doc["record"])

    async def history(self, key: str, limit: int | None = None) -> list[dict[str, Any]]:
        if limit is not None and limit <= 0:
            return []
        projection: dict[str, Any] = (
            {"_id": 0, "history": 1} if limit is None else {"_id": 0, "record": 0, "history": {"$slice": -limit}})
        doc = await self.sessions.find_one({"_id": key}, projection=projection)
        return [dict(entry) for entry in (doc or {}).get("history") or []]

    async def delete(self, key: str) -> bool:
        doc = await self.sessions.find_one_and_delete({"_id": key}, projection={"record": 1, "expires_at": 1})
        return doc is not None and self._is_live(doc, _date(self.clock()))

    async def keys(self) -> list[str]:
        cursor = self.sessions.find(self._live(_date(self.clock())), projection={"_id": 1})
        return [doc["_id"] async for doc in cursor]

    async def expired(self, now: float, limit: int = 100) -> list[str]:
        """The TTL monitor removes an expired document within about a minute: the end sweep (every
        ``lifecycle.SWEEP_EVERY`` seconds) usually runs before it, but on MongoDB that is not certain."""
        cursor = self.sessions.find(
            {"record": {"$ne": None}, "expires_at": {"$lte": _date(now)}, "record.parts.life.ended": {"$exists": False}},
            projection={"_id": 1}, limit=limit)
        return [doc["_id"] async for doc in cursor]

    async def incr(self, name: str, window: float) -> tuple[int, float]:
        now = _date(self.clock())
        running = {"$gt": ["$resets_at", now]}
        doc = await self.counters.find_one_and_update(
            {"_id": name},
            [{"$set": {
                "hits": {"$cond": [running, {"$add": ["$hits", 1]}, 1]},
                "resets_at": {"$cond": [running, "$resets_at", now + timedelta(seconds=window)]},
            }}],
            upsert=True,
            return_document=ReturnDocument.AFTER,
        )
        return int(doc["hits"]), max(0.0, (doc["resets_at"] - now).total_seconds())
