"""Loading and validating ``bot.config.py``: a Python file of module-level settings."""
from __future__ import annotations

import importlib
import ipaddress
import math
import os
import runpy
import sys
import types
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from botkit.core.errors import ConfigError

DEFAULT_CONFIG_NAME = "bot.config.py"

SESSION_DEFAULTS: dict[str, Any] = {
    "driver": "memory",
    "expires_in": None,
    "history": 50,
    "timeout": 5.0,
    "lock_timeout": 30.0,
    "max_state_size": 1024 * 1024,
    "dedupe_window": 48 * 3600.0,
    "stores": {},
}
SERVER_DEFAULTS: dict[str, Any] = {
    "host": "127.0.0.1",
    "port": 5000,
    "client_max_size": 1024 * 1024,
    "shutdown_timeout": 30.0,
    "access_log": True,
    "ack_within": 1.0,
    "header_timeout": 10.0,
    "read_timeout": 30.0,
    "max_connections": None,
    "trusted_proxies": (),
    "metrics": False,
    "log_format": "text",
}
HTTP_DEFAULTS: dict[str, Any] = {"timeout": 10.0, "attempts": 4, "backoff": 0.5, "max_wait": 30.0}


def env(name: str, default: Any = None) -> Any:
    """An environment variable, or ``default`` when it is unset or empty."""
    value = os.environ.get(name)
    return default if value in (None, "") else value


@dataclass(slots=True)
class Config:
    root: Path
    path: Path | None = None
    app: Any = "bot:app"
    initial_state: dict[str, Any] = field(default_factory=dict)
    session: dict[str, Any] = field(default_factory=lambda: dict(SESSION_DEFAULTS))
    channels: dict[str, dict[str, Any]] = field(default_factory=dict)
    server: dict[str, Any] = field(default_factory=lambda: dict(SERVER_DEFAULTS))
    http: dict[str, Any] = field(default_factory=lambda: dict(HTTP_DEFAULTS))
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def enabled_channels(self) -> dict[str, dict[str, Any]]:
        return {name: s for name, s in self.channels.items() if s.get("enabled", True) is not False}

    def store_settings(self, driver: str | None = None) -> dict[str, Any]:
        return dict(self.session["stores"].get(driver or self.session["driver"]) or {})

    def resolve_path(self, value: str | os.PathLike[str]) -> Path:
        path = Path(value)
        return path if path.is_absolute() else self.root / path


def find_config(path: str | os.PathLike[str] | None) -> Path:
    if path is None:
        candidate = Path.cwd() / DEFAULT_CONFIG_NAME
        if not candidate.is_file():
            raise ConfigError("--config", f"no {DEFAULT_CONFIG_NAME} in {Path.cwd()}; pass --config PATH or run `botkit init`")
        return candidate
    candidate = Path(path)
    if candidate.is_dir():
        candidate = candidate / DEFAULT_CONFIG_NAME
    if not candidate.is_file():
        raise ConfigError("--config", f"{candidate} does not exist")
    return candidate.resolve()


def load_config(path: str | os.PathLike[str] | None = None) -> Config:
    """Run the config file and validate what it defines."""
    file = find_config(path)
    try:
        names = runpy.run_path(str(file))
    except ConfigError:
        raise
    except Exception as exc:  # the user's file: report, don't trace
        line = _line_of(exc, file)
        raise ConfigError(file.name + line, f"{type(exc).__name__}: {exc}") from None
    settings = {k: v for k, v in names.items() if not k.startswith("_") and not isinstance(v, types.ModuleType)}
    return config_from_mapping(settings, root=file.parent, path=file)


def config_from_mapping(settings: Mapping[str, Any], *, root: Path | None = None, path: Path | None = None) -> Config:
    """Build a Config from a mapping of settings (what a config file defines); used by tests too."""
    config = Config(root=Path(root or Path.cwd()).resolve(), path=path)
    config.app = settings.get("app", "bot:app")
    if not (callable(config.app) or (isinstance(config.app, str) and ":" in config.app)):
        raise ConfigError("app", f'must be "module:attribute" of the async handler, not {config.app!r}')
    config.initial_state = _mapping(settings, "initial_state", {})
    config.session = _section(settings, "session", SESSION_DEFAULTS)
    config.server = _section(settings, "server", SERVER_DEFAULTS)
    config.http = _section(settings, "http", HTTP_DEFAULTS)
    channels = _mapping(settings, "channels", {})
    for name, channel in channels.items():
        if not isinstance(channel, Mapping):
            raise ConfigError(f"channels.{name}", "must be a dict of the channel's settings")
    config.channels = {name: dict(channel) for name, channel in channels.items()}
    config.extra = {k: v for k, v in settings.items() if k not in {"app", "initial_state", "session", "server", "http", "channels"}}
    _validate(config)
    return config


def _validate(config: Config) -> None:
    session = config.session
    expires = session["expires_in"]
    if expires is not None and (isinstance(expires, bool) or not isinstance(expires, (int, float)) or expires <= 0):
        raise ConfigError("session.expires_in", f"must be minutes (a positive number) or None, not {expires!r}")
    for name in ("history", "timeout", "lock_timeout", "max_state_size"):
        value = session[name]
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
            raise ConfigError(f"session.{name}", f"must be a non-negative number, not {value!r}")
    window = session["dedupe_window"]
    if isinstance(window, bool) or not isinstance(window, (int, float)) or not math.isfinite(window) or window <= 0:
        raise ConfigError("session.dedupe_window", f"must be seconds (a positive number), not {window!r}")
    if not isinstance(session["stores"], Mapping):
        raise ConfigError("session.stores", "must be a dict of driver name to its settings")
    from botkit.storage import driver_class  # drivers validate their own block

    store = driver_class(session["driver"])
    store.validate(config.store_settings())
    port = config.server["port"]
    if isinstance(port, str) and port.isdigit():
        config.server["port"] = port = int(port)
    if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port < 65536:
        raise ConfigError("server.port", f"must be a port number, not {port!r}")
    ack = config.server["ack_within"]
    if ack is not None and (isinstance(ack, bool) or not isinstance(ack, (int, float)) or ack < 0):
        raise ConfigError("server.ack_within", f"must be seconds (0 or more) or None, not {ack!r}")
    size = config.server["client_max_size"]
    if isinstance(size, bool) or not isinstance(size, int) or size <= 0:
        raise ConfigError("server.client_max_size", f"must be a number of bytes, not {size!r}")
    _validate_limits(config.server)
    _validate_observability(config.server)


def _validate_limits(server: dict[str, Any]) -> None:
    """The server's protections: read timeouts, the connection cap, the proxies trusted to name the client."""
    for name in ("header_timeout", "read_timeout"):
        value = server[name]
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
            raise ConfigError(f"server.{name}", f"must be seconds (a positive number), not {value!r}")
    cap = server["max_connections"]
    if cap is not None and (isinstance(cap, bool) or not isinstance(cap, int) or cap < 1):
        raise ConfigError("server.max_connections", f"must be a positive whole number or None (from the open-file limit), not {cap!r}")
    proxies = server["trusted_proxies"]
    if isinstance(proxies, str) or not isinstance(proxies, (list, tuple)):
        raise ConfigError("server.trusted_proxies", f'must be a list of addresses or networks such as ["10.0.0.0/8"], not {proxies!r}')
    for proxy in proxies:
        try:
            ipaddress.ip_network(proxy, strict=False)
        except (TypeError, ValueError):
            raise ConfigError("server.trusted_proxies", f"{proxy!r} is not an IP address or network") from None
    server["trusted_proxies"] = tuple(proxies)


def _validate_observability(server: dict[str, Any]) -> None:
    if not isinstance(server["metrics"], bool):
        raise ConfigError("server.metrics", f"must be True (GET /metrics) or False, not {server['metrics']!r}")
    if server["log_format"] not in ("text", "json"):
        raise ConfigError("server.log_format", f'must be "text" or "json", not {server["log_format"]!r}')


def _mapping(settings: Mapping[str, Any], name: str, default: Any) -> dict[str, Any]:
    value = settings.get(name, default)
    if value is None:
        value = default
    if not isinstance(value, Mapping):
        raise ConfigError(name, f"must be a dict, not {type(value).__name__}")
    return dict(value)


def _section(settings: Mapping[str, Any], name: str, defaults: Mapping[str, Any]) -> dict[str, Any]:
    section = {**defaults, **_mapping(settings, name, {})}
    for key in section:
        if key not in defaults:
            raise ConfigError(f"{name}.{key}", f"unknown setting; known: {', '.join(defaults)}")
    return section


def load_app(config: Config) -> Callable[..., Any]:
    """Import the handler named by ``app`` from the config's folder."""
    target = config.app
    if callable(target):
        app: Callable[..., Any] = target
        return app
    module_name, _, attr = target.partition(":")
    root = str(config.root)
    if root not in sys.path:
        sys.path.insert(0, root)
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ConfigError("app", f"cannot import {module_name!r} from {root} ({exc})") from None
    except Exception as exc:
        raise ConfigError("app", f"importing {module_name!r} raised {type(exc).__name__}: {exc}") from None
    handler = getattr(module, attr, None)
    if handler is None:
        raise ConfigError("app", f"module {module_name!r} has no attribute {attr!r}")
    if not callable(handler):
        raise ConfigError("app", f"{target!r} is not callable; it must be `async def {attr}(context)`")
    found: Callable[..., Any] = handler
    return found


def _line_of(exc: BaseException, file: Path) -> str:
    tb = exc.__traceback__
    line = getattr(exc, "lineno", None)
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == str(file):
            line = tb.tb_lineno
        tb = tb.tb_next
    return f" line {line}" if line else ""
