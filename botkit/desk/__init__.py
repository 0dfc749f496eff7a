"""The agent desk (docs/handoff.md): a web page at ``/desk`` and the desk API under ``/desk/api/`` over
the bot's human mode (botkit.app.handoffs). Above the app: it needs the running Bot; the shell serves it."""
from botkit.desk.api import Desk

__all__ = ["Desk"]
