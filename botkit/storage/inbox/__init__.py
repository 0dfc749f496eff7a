"""The inbox: where a webhook's events wait, durably, between the platform's 200 and their handler.

Each session key has its own queue; a worker leases a session (not a partition), handles its entries in
arrival order and acknowledges each, so one slow handler never holds up another session. A session
store names its inbox (``SessionStore.inbox``) in the same engine: memory, Redis, PostgreSQL.
"""
from botkit.storage.inbox.base import Claim, Entry, Inbox, InboxStats
from botkit.storage.inbox.memory import MemoryInbox

__all__ = ["Claim", "Entry", "Inbox", "InboxStats", "MemoryInbox"]
