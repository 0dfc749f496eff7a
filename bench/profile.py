"""Where a row's server spends its time: py-spy samples it under the bench's closed-loop load.

    pip install py-spy                       # a profiling tool, not a dependency of botkit
    python -m bench.profile --row memory     # top frames by inclusive and by own time
    python -m bench.profile --row memory --svg /tmp/memory.svg     # and a flame graph
    python -m bench.profile --row "redis inbox" --match Inbox --raw /tmp/r.txt   # frames naming Inbox; the samples kept

Shares are of the samples where the server was running Python (py-spy leaves idle waits out); the
native time of the event loop (uvloop's socket calls) lands on the frame that made the call.
"""
from __future__ import annotations

import argparse
import collections
import shutil
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

from bench import procs
from bench.run import Bench, Settings
from bench.scenarios import ABLATION_ROWS, INBOX_ROWS, MAIN_ROWS, Row, clean_store, server_argv


def frame_name(frame: str) -> str:
    """``func (path/to/file.py:12)`` → ``func file.py:12``."""
    name, _, where = frame.partition(" (")
    return f"{name} {where.rstrip(')').rsplit('/', 1)[-1]}" if where else name


def summarise(raw: Path, top: int, match: str | None = None) -> str:
    inclusive: collections.Counter[str] = collections.Counter()
    own: collections.Counter[str] = collections.Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        samples = int(count)
        total += samples
        frames = [frame_name(f) for f in stack.split(";")]
        for name in set(frames):
            inclusive[name] += samples
        own[frames[-1]] += samples
    out = [f"{total} samples", "", "inclusive:"]
    out += [f"{100 * n / total:5.1f}%  {name}" for name, n in inclusive.most_common(top)]
    out += ["", "own:"]
    out += [f"{100 * n / total:5.1f}%  {name}" for name, n in own.most_common(top)]
    if match:
        out += ["", f"inclusive, frames naming {match!r}:"]
        out += [f"{100 * n / total:5.1f}%  {name}" for name, n in inclusive.most_common() if match in name]
    return "\n".join(out)


def record(row: Row, seconds: float, rate: int, svg: Path | None, top: int, match: str | None = None,
           keep: Path | None = None) -> str:
    py_spy = shutil.which("py-spy")
    if py_spy is None:
        raise SystemExit("py-spy is not installed: pip install py-spy")
    settings = Settings(duration=seconds + (6 if svg else 2), warmup=1.0, connections=64, users=1000, half=False)
    with tempfile.TemporaryDirectory(prefix="botkit-profile-") as workdir:
        bench = Bench(settings, Path(workdir))
        port = procs.free_port()
        clean_store(row.driver)
        server = procs.spawn("server", server_argv(row, Path(workdir), port, bench.api_base), Path(workdir))
        try:
            procs.wait_healthy(server, f"http://127.0.0.1:{port}/healthz")
            load = threading.Thread(target=bench.load, args=(f"http://127.0.0.1:{port}/webhooks/telegram",))
            load.start()
            raw = Path(workdir) / "profile.txt"
            pids = server.tree()
            target = pids[-1] if len(pids) > 1 else pids[0]  # with --workers: one worker
            subprocess.run([py_spy, "record", "-p", str(target), "-d", str(int(seconds)), "-r", str(rate),
                            "-f", "raw", "-o", str(raw)], check=True, capture_output=True, timeout=seconds + 30)
            if svg is not None:
                subprocess.run([py_spy, "record", "-p", str(target), "-d", "3", "-r", str(rate), "-o", str(svg)],
                               check=False, capture_output=True, timeout=40)
            load.join()
            if keep is not None:
                shutil.copyfile(raw, keep)
            return summarise(raw, top, match)
        finally:
            server.stop()
            bench.close()
            clean_store(row.driver)


def main(argv: list[str] | None = None) -> int:
    rows = {row.name: row for row in [Row(None), *MAIN_ROWS, *INBOX_ROWS, *ABLATION_ROWS]}
    parser = argparse.ArgumentParser(prog="python -m bench.profile")
    parser.add_argument("--row", default="memory", choices=sorted(rows))
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--rate", type=int, default=250, help="samples per second")
    parser.add_argument("--top", type=int, default=40)
    parser.add_argument("--svg", type=Path, help="also write a flame graph here")
    parser.add_argument("--match", help="also list every frame whose name contains this (e.g. Inbox, Bot.)")
    parser.add_argument("--raw", type=Path, help="keep py-spy's raw samples here (one stack a line)")
    args = parser.parse_args(argv)
    print(record(rows[args.row], args.seconds, args.rate, args.svg, args.top, args.match, args.raw))
    return 0


if __name__ == "__main__":
    sys.exit(main())
