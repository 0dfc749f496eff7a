"""The live bus: messages every process of a bot hears at once (not stored): a worker telling the
webhook's process that its events are handled, a reply pushed to a web page whose event stream another
process holds. Memory: this process; Redis: PUBLISH/SUBSCRIBE; PostgreSQL: NOTIFY/LISTEN."""
from botkit.storage.live.base import Bus, MemoryBus

__all__ = ["Bus", "MemoryBus"]
