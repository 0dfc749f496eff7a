"""The file driver's rate-limit counters: one JSON file, ``<dirname>/.counters``, changed under an
exclusive ``flock`` so that processes sharing the folder (``--workers``) count together."""
from __future__ import annotations

import fcntl
import os
from pathlib import Path

import orjson

from botkit.storage.atomic import write_atomically

FILE_NAME = ".counters"
"""No ``.json`` suffix: the file driver lists sessions by that suffix."""


def count(dirname: Path, name: str, window: float, now: float) -> tuple[int, float]:
    """One hit on ``name`` in a fixed window of ``window`` seconds: the hits in it and the seconds left."""
    path = dirname / FILE_NAME
    fd = os.open(dirname / (FILE_NAME + ".lock"), os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        try:
            counters: dict[str, list[float]] = orjson.loads(path.read_bytes())
        except (FileNotFoundError, orjson.JSONDecodeError):
            counters = {}
        hits, resets_at = counters.get(name, (0, 0.0))
        if resets_at <= now:
            hits, resets_at = 0, now + window
            counters = {key: value for key, value in counters.items() if value[1] > now}
        counters[name] = [hits + 1, resets_at]
        write_atomically(path, orjson.dumps(counters))
        return int(hits) + 1, resets_at - now
    finally:
        os.close(fd)
