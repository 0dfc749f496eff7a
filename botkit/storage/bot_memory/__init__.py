"""Bot memory: values that outlive sessions, shared by every session, process and machine using the
store (``context.bot_memory``, ``bot.bot_memory``). A session store names its bot memory, in its own
engine (``SessionStore.bot_memory``): a dict, files, a Redis hash, a PostgreSQL table, a Mongo collection."""
from botkit.storage.bot_memory.base import BotMemory, ValueTooLarge
from botkit.storage.bot_memory.memory import MemoryBotMemory

__all__ = ["BotMemory", "MemoryBotMemory", "ValueTooLarge"]
