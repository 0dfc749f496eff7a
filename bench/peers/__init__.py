"""Other frameworks in the bench: the same counting bot behind the same Telegram webhook, against the same
fake Bot API, measured like botkit's rows (``python -m bench --peers``).

Bottender 1.5.5 (Node.js): ``bench/peers/bottender`` holds its package.json, the bot (``index.js``, as
Bottender's session guide writes it) and ``bottender.config.js`` (memory sessions, the Telegram channel
with ``origin`` pointed at the fake API). Its ``node_modules`` are not in git:

    (cd bench/peers/bottender && npm install --ignore-scripts)

The bench runs that itself the first time a peers row is asked for and npm is there; without Node.js and
npm the row is reported as not available, with that command.
"""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

BOTTENDER_DIR = Path(__file__).resolve().parent / "bottender"
BOTTENDER_VERSION = "1.5.5"
INSTALL = "(cd bench/peers/bottender && npm install --ignore-scripts)"
NODE_MISSING = f"Node.js and npm not found: install them (tested with Node 20), then {INSTALL}"


@dataclass
class Launch:
    """How to start a server: its command, folder, extra environment, and whether it has ``/healthz``."""

    argv: list[str]
    cwd: Path | None = None
    env: dict[str, str] = field(default_factory=dict)
    healthz: bool = True


def installed_version() -> str | None:
    try:
        return str(json.loads((BOTTENDER_DIR / "node_modules" / "bottender" / "package.json").read_text())["version"])
    except (OSError, ValueError, KeyError):
        return None


def node_version() -> str | None:
    node = shutil.which("node")
    if node is None:
        return None
    done = subprocess.run([node, "--version"], capture_output=True, text=True, timeout=30)
    return done.stdout.strip() or None


def unavailable(peer: str, install: bool = True) -> str | None:
    """Why the peer cannot run here, or None. Installs Bottender with npm first when it is missing and
    ``install`` is true."""
    if peer != "bottender":
        return f"unknown peer {peer!r}"
    if shutil.which("node") is None:
        return NODE_MISSING
    version = installed_version()
    if version is None and install:
        npm = shutil.which("npm")
        if npm is None:
            return NODE_MISSING
        print(f"bench: installing Bottender {BOTTENDER_VERSION}: {INSTALL}", file=sys.stderr)
        done = subprocess.run([npm, "install", "--ignore-scripts", "--no-audit", "--no-fund"], cwd=BOTTENDER_DIR,
                              capture_output=True, text=True, timeout=600)
        if done.returncode != 0:
            return f"npm install failed ({done.stderr.strip().splitlines()[-1:] or ['?']}); run {INSTALL}"
        version = installed_version()
    if version is None:
        return f"Bottender not installed: {INSTALL}"
    if version != BOTTENDER_VERSION:
        return f"Bottender {version} installed, the bench expects {BOTTENDER_VERSION}: {INSTALL}"
    return None


def bottender(port: int, api_base: str, token: str, *, max_size: int, sync: bool = True) -> Launch:
    """``NODE_ENV=production bottender start --port P`` in bench/peers/bottender. No ``/healthz``: the
    bench waits for the port. Bottender 1.5.5 does not check Telegram's secret-token header (the load
    generator sends it anyway)."""
    env = {
        "NODE_ENV": "production",
        "TELEGRAM_ACCESS_TOKEN": token,
        "TELEGRAM_API_ORIGIN": api_base,
        "SESSION_MAX_SIZE": str(max_size),
        "BOTTENDER_SYNC": "true" if sync else "false",
    }
    argv = [str(BOTTENDER_DIR / "node_modules" / ".bin" / "bottender"), "start", "--port", str(port)]
    return Launch(argv, cwd=BOTTENDER_DIR, env=env, healthz=False)
