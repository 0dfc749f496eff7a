"""botkit: one async handler, every messaging platform, sessions that never lose an update."""
from .bot import Bot
from .config import Config, env, load_config
from .context import Context
from .errors import BotkitError, ConfigError, SendError, SkipSave, StoreUnavailable
from .event import Event
from .flows import Flows
from .session import Session

__all__ = [
    "Bot",
    "BotkitError",
    "Config",
    "ConfigError",
    "Context",
    "Event",
    "Flows",
    "SendError",
    "SkipSave",
    "Session",
    "StoreUnavailable",
    "env",
    "load_config",
]
__version__ = "0.1.0"
