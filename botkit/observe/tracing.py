"""OpenTelemetry traces, when ``opentelemetry-api`` is installed (the ``otel`` extra) and an SDK is
configured: one trace per webhook (webhook → verify, parse, inbox; handle → handler → send), carried
through the inbox in the event's ``meta`` so a worker process's spans join the webhook's trace. Without
the API, or with no SDK configured, ``span`` hands back one shared null context: no span is made.

The SDK is configured as OpenTelemetry's own tools do it (``opentelemetry-instrument botkit start`` with
``OTEL_*`` variables), or by ``BOTKIT_OTEL_SETUP=module:function``: botkit calls that function once in
every process that runs a bot (each ``--workers`` worker, each ``--role`` process), before the bot starts."""
from __future__ import annotations

import contextlib
import importlib
import logging
import os
import time
from collections.abc import Iterator, Mapping
from typing import Any

log = logging.getLogger("botkit.observe")

TRACE = "trace"
"""``event.meta`` key of the W3C trace context an inbox entry carries from its webhook."""
SETUP = "BOTKIT_OTEL_SETUP"

_NULL: contextlib.nullcontext[None] = contextlib.nullcontext()
_api: Any = None
"""``opentelemetry.trace`` once found; False when not installed."""
_setup_done = False
_active = False
_next_check = 0.0
RECHECK = 1.0


def _trace_api() -> Any:
    global _api
    if _api is None:
        try:
            _api = importlib.import_module("opentelemetry.trace")
        except ImportError:  # the otel extra is not installed: tracing stays off
            _api = False
    return _api


def active() -> bool:
    """True when spans are recorded: the API is installed and an SDK's tracer provider is set. Asking the
    API costs microseconds (it reads the environment), so a "no" is kept for ``RECHECK`` seconds: an SDK
    configured later is noticed within that."""
    global _active, _next_check
    if _active:
        return True
    now = time.monotonic()
    if now < _next_check:
        return False
    _next_check = now + RECHECK
    api = _trace_api()
    _active = bool(api) and not isinstance(api.get_tracer_provider(), (api.ProxyTracerProvider, api.NoOpTracerProvider))
    return _active


def span(name: str, attributes: Mapping[str, Any] | None = None, parent: Any = None) -> contextlib.AbstractContextManager[Any]:
    """A span named ``name`` around a block (the current span's child, or ``parent``'s, a context from
    ``extract``); a shared null context when tracing is off."""
    if not active():
        return _NULL
    return _span(name, attributes, parent)


@contextlib.contextmanager
def _span(name: str, attributes: Mapping[str, Any] | None, parent: Any) -> Iterator[Any]:
    tracer = _api.get_tracer("botkit")
    clean = {k: v for k, v in (attributes or {}).items() if v is not None}
    with tracer.start_as_current_span(name, context=parent, attributes=clean) as current:
        yield current


def set_attribute(current: Any, name: str, value: Any) -> None:
    if current is not None and value is not None:
        current.set_attribute(name, value)


def carrier() -> dict[str, str] | None:
    """The current trace context as W3C headers (``traceparent``), to travel with an inbox entry."""
    if not active():
        return None
    from opentelemetry import propagate

    headers: dict[str, str] = {}
    propagate.inject(headers)
    return headers or None


def extract(headers: Any) -> Any:
    """The context ``carrier`` wrote, as a parent for ``span``; None when there is none or tracing is off."""
    if not headers or not isinstance(headers, dict) or not active():
        return None
    from opentelemetry import propagate

    return propagate.extract(headers)


def trace_id() -> str | None:
    """The current trace's id (32 hex digits), for log lines; None outside a recorded span."""
    if not active():
        return None
    context = _api.get_current_span().get_span_context()
    return format(context.trace_id, "032x") if context.is_valid else None


def setup_from_env() -> None:
    """Call ``$BOTKIT_OTEL_SETUP`` (``module:function``) once in this process: it configures the SDK."""
    global _setup_done
    target = os.environ.get(SETUP)
    if _setup_done or not target:
        return
    _setup_done = True
    module, _, name = target.partition(":")
    try:
        getattr(importlib.import_module(module), name or "setup")()
    except Exception:
        log.exception("%s=%s failed; tracing stays off", SETUP, target)
    global _next_check
    _next_check = 0.0
