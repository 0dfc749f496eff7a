"""Atomic file writes and removals, shared by the file session store, step store and bot memory."""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

SUFFIX = ".json"


def write_atomically(path: Path, data: bytes, *, fsync: bool = False) -> None:
    """Write ``data`` to a temporary file beside ``path`` and rename it over ``path``: a reader sees the
    old content or the new, never half of it, whatever happens mid-write."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=SUFFIX)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
            if fsync:
                out.flush()
                os.fsync(out.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def remove(path: Path) -> bool:
    """Delete ``path``; whether it was there."""
    try:
        path.unlink()
    except FileNotFoundError:
        return False
    return True
