"""botkit: one async handler, every messaging platform, sessions that never lose an update."""
from botkit.app.bot import Bot
from botkit.app.config import Config, env, load_config
from botkit.core.errors import BotkitError, ConfigError, SendError, SkipSave, StoreUnavailable
from botkit.core.events import Event
from botkit.core.session import Session
from botkit.engine.context import Context
from botkit.flows.router import Flows
from botkit.flows.routes import Router

__all__ = [
    "Bot",
    "BotkitError",
    "Config",
    "ConfigError",
    "Context",
    "Event",
    "Flows",
    "Router",
    "SendError",
    "Session",
    "SkipSave",
    "StoreUnavailable",
    "env",
    "load_config",
]
__version__ = "0.1.0"
