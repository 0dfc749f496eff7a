"""The event loop every bench process uses: uvloop when installed, as botkit.server does."""
from __future__ import annotations

import asyncio


def install_uvloop() -> bool:
    try:
        import uvloop
    except ImportError:
        return False
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    return True
