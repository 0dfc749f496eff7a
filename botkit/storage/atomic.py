"""Atomic file writes, shared by the file session store and the file step store."""
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
