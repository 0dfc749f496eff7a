"""How PostgreSQL's key columns hold a session key (or counter name): shared by the session store and its
inbox, so that both find a session under the same row key."""
from __future__ import annotations

import hashlib

LONGEST_KEY = 512
"""Bytes of a session key stored as it is in the ``key`` columns; a longer one is stored hashed."""
HASHED = "sha256:"


def row_key(key: str) -> str:
    """What the ``key`` columns hold for the session key (or counter name) ``key``: the key itself, or
    ``sha256:<hex>`` of it when it is longer than ``LONGEST_KEY`` bytes, holds U+0000 (text cannot) or
    starts with ``sha256:`` (so a hashed key never meets a real one)."""
    if (len(key) <= LONGEST_KEY // 4 or len(key.encode(errors="surrogatepass")) <= LONGEST_KEY) \
            and "\x00" not in key and not key.startswith(HASHED):
        return key
    return HASHED + hashlib.sha256(key.encode(errors="surrogatepass")).hexdigest()
