"""``botkit`` with one speed-up taken away, to measure what that speed-up is worth.

    python -m bench.launch "no uvloop" start --config …      # the asyncio event loop instead of uvloop
    python -m bench.launch "stdlib json" start --config …    # json instead of orjson for session records
    python -m bench.launch "default gc" start --config …     # Python's cycle-collector thresholds
"""
from __future__ import annotations

import json
import sys
from collections.abc import Callable
from typing import Any


def without_uvloop() -> None:
    sys.modules["uvloop"] = None  # type: ignore[assignment]  # import uvloop now raises ImportError


def with_stdlib_json() -> None:
    import botkit.core.session as session
    import botkit.storage.memory as memory

    def dumps(record: dict[str, Any]) -> bytes:
        return json.dumps(record, separators=(",", ":"), ensure_ascii=False).encode()

    def loads(data: bytes | str) -> dict[str, Any]:
        return json.loads(data)

    for module in (session, memory):
        module.dumps, module.loads = dumps, loads  # type: ignore[attr-defined]


def with_default_gc() -> None:
    import botkit.shell.server

    botkit.shell.server.tune_gc = lambda: None


VARIANTS: dict[str, Callable[[], None]] = {
    "no uvloop": without_uvloop,
    "stdlib json": with_stdlib_json,
    "default gc": with_default_gc,
}


def main() -> int:
    variant, argv = sys.argv[1], sys.argv[2:]
    VARIANTS[variant]()
    from botkit.shell.cli import main as botkit_main

    return botkit_main(argv)


if __name__ == "__main__":
    sys.exit(main())
