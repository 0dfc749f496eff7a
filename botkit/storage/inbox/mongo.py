"""The inbox in MongoDB: a collection of entries (``<collection>_inbox``, in insertion order by their
ObjectIds) and a collection of the sessions ready to claim (``<collection>_inbox_ready``, ``_id`` the
session key). A put bumps the session's ``gen`` before it inserts its entry, and a release deletes the
ready document only if ``gen`` is the one its claim saw and no entry waits, so an entry is never left
without its ready document. Workers find new entries by polling (change streams need a replica set)."""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pymongo import ASCENDING, ReturnDocument

from botkit.storage.inbox.base import Claim, Entry, Inbox, InboxStats

POLL = 0.2


class MongoInbox(Inbox):
    shared = True
    durable = True

    poll = POLL

    def __init__(self, database: Any, collection: str) -> None:
        """``database``: a callable returning the session store's AsyncDatabase (there once it is open)."""
        super().__init__()
        self._database = database
        self.name = collection

    @property
    def entries(self) -> Any:
        return self._database()[f"{self.name}_inbox"]

    @property
    def ready(self) -> Any:
        return self._database()[f"{self.name}_inbox_ready"]

    async def open(self) -> None:
        await self.entries.create_index([("key", ASCENDING), ("_id", ASCENDING)])
        await self.ready.create_index([("ready_at", ASCENDING)])

    async def put(self, items: Sequence[tuple[str, dict[str, Any]]], now: float, origin: str | None = None) -> list[str]:
        for key in dict.fromkeys(key for key, _ in items):
            await self.ready.update_one({"_id": key}, {"$setOnInsert": {"ready_at": 0.0, "owner": None}, "$inc": {"gen": 1}},
                                        upsert=True)
        documents = [{"key": key, "event": event, "at": now, "origin": origin} for key, event in items]
        result = await self.entries.insert_many(documents, ordered=True)
        return [str(found) for found in result.inserted_ids]

    async def claim(self, owner: str, now: float, lease_until: float, limit: int) -> list[Claim]:
        claimed: dict[str, Any] = {}
        while len(claimed) < limit:
            found = await self.ready.find_one_and_update(
                {"ready_at": {"$lte": now}}, {"$set": {"ready_at": lease_until, "owner": owner}},
                sort=[("ready_at", ASCENDING)], return_document=ReturnDocument.AFTER)
            if found is None:
                break
            claimed[found["_id"]] = found.get("gen", 0)
        if not claimed:
            return []
        waiting: dict[str, list[Entry]] = {key: [] for key in claimed}
        async for document in self.entries.find({"key": {"$in": list(claimed)}}).sort("_id", ASCENDING):
            waiting[document["key"]].append(Entry(str(document["_id"]), document["key"], document["event"],
                                                  float(document["at"]), document.get("origin")))
        return [Claim(key, entries, claimed[key]) for key, entries in waiting.items()]

    async def ack(self, key: str, entry_id: str) -> None:
        from bson import ObjectId

        await self.entries.delete_one({"_id": ObjectId(entry_id)})

    async def extend(self, owner: str, keys: Sequence[str], lease_until: float) -> None:
        if keys:
            await self.ready.update_many({"_id": {"$in": list(keys)}, "owner": owner}, {"$set": {"ready_at": lease_until}})

    async def release(self, owner: str, claim: Claim, ready_at: float) -> None:
        if await self.entries.find_one({"key": claim.key}, projection={"_id": 1}) is None:
            gone = await self.ready.delete_one({"_id": claim.key, "owner": owner, "gen": claim.token})
            if gone.deleted_count:
                return
        await self.ready.update_one({"_id": claim.key, "owner": owner}, {"$set": {"ready_at": ready_at, "owner": None}})

    async def stats(self) -> InboxStats:
        depth = await self.entries.count_documents({})
        oldest = await self.entries.find_one({}, sort=[("at", ASCENDING)], projection={"at": 1})
        return InboxStats(int(depth), None if oldest is None else float(oldest["at"]))
