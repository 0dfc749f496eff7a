"""``server.log_format``: "text" (the default line) or "json": one JSON object a line with the time, level,
logger and message, and, when the line is about one, the channel, the session key (masked as
``botkit.core.keys.shown`` does), the event id and the trace id."""
from __future__ import annotations

import logging
import time
from collections.abc import Iterable

import orjson

from botkit.core.keys import shown
from botkit.observe import scope, tracing

FORMATS = ("text", "json")
TEXT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, object] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        channel, key, event = scope.channel.get(), scope.session_key.get(), scope.event_id.get()
        if channel is not None:
            line["channel"] = channel
        if key is not None:
            line["session_key"] = shown(key)
        if event is not None:
            line["event_id"] = event
        trace = tracing.trace_id()
        if trace is not None:
            line["trace_id"] = trace
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            line["exception"] = record.exc_text
        return orjson.dumps(line, default=str).decode()


def install(log_format: str, loggers: Iterable[str] = ()) -> None:
    """Give the handlers of the root logger (and of ``loggers``, such as gunicorn's own) the format."""
    formatter = JsonFormatter() if log_format == "json" else None
    for name in (None, *loggers):
        for handler in logging.getLogger(name).handlers:
            if formatter is not None:
                handler.setFormatter(formatter)
