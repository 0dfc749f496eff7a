"""What the engine needs of a channel's sender: one conversation's outbound path."""
from __future__ import annotations

from typing import Any


class Sender:
    """Sends to one conversation. Channels subclass it with the platform's other sends (``send_image``,
    ``send_buttons``, …). A sender that batches (LINE's reply token takes five messages in one call)
    overrides ``flush``: the engine awaits it once the handler returns."""

    async def send_text(self, text: str, **options: Any) -> Any:
        raise NotImplementedError

    async def send_typing(self, **options: Any) -> Any:
        """Show that the bot is writing; nothing where the platform has no such thing."""
        return None

    async def api(self, method: str, payload: Any = None, *, verb: str = "POST") -> Any:
        """A platform call the channel does not wrap (``context.api``), with its auth; channels that have
        an API override it."""
        raise NotImplementedError(f"{type(self).__name__} offers no platform API calls")

    async def flush(self) -> None:
        """Deliver what the sender holds back."""
        return None
