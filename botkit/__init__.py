"""botkit: one async handler, every messaging platform, sessions that never lose an update."""
from botkit.app.bot import Bot
from botkit.app.config import Config, env, load_config
from botkit.core.errors import BotkitError, ConfigError, SendError, SkipSave, StoreUnavailable
from botkit.core.events import Event
from botkit.core.messages import Button, Buttons, Card, Cards, File, Image, Location, Message, QuickReplies, Text, Typing
from botkit.core.session import Session
from botkit.engine.context import Context
from botkit.flows.router import Flows
from botkit.flows.routes import Router

__all__ = [
    "Bot",
    "BotkitError",
    "Button",
    "Buttons",
    "Card",
    "Cards",
    "Config",
    "ConfigError",
    "Context",
    "Event",
    "File",
    "Flows",
    "Image",
    "Location",
    "Message",
    "QuickReplies",
    "Router",
    "SendError",
    "Session",
    "SkipSave",
    "StoreUnavailable",
    "Text",
    "Typing",
    "env",
    "load_config",
]
__version__ = "0.1.0"
