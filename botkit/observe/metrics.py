"""Prometheus metrics (``server.metrics = True``). Until ``enable()`` every recording function returns at its
first line, so the hot path pays one check when metrics are off. prometheus_client is imported by
``enable()`` only; under ``botkit start --workers N`` it runs in its multiprocess mode (the master sets
``PROMETHEUS_MULTIPROC_DIR``) and a scrape of any worker sums them all.

Label values are bounded: channel names come from bot.config.py, event types from the core's list
(anything else counts as ``other``), statuses are HTTP status codes; no session key, no user id."""
from __future__ import annotations

import asyncio
import os
import time
from bisect import bisect_left
from typing import Any

from botkit.core.events import EventType

HANDLED, DUPLICATE, SKIPPED, FAILED, RATE_LIMITED = "handled", "duplicate", "skipped", "failed", "rate_limited"
OUTCOMES = (HANDLED, DUPLICATE, SKIPPED, FAILED, RATE_LIMITED)
"""The ``outcome`` label of ``botkit_events_total``."""
OUTCOME = "metrics_outcome"
"""``event.meta`` key a middleware sets (``count_as``) to have the event counted with another outcome."""
ACTIVE_WINDOW = 300.0
"""Seconds since its last event within which a session counts as active."""
MAX_TRACKED = 100_000
"""Sessions the active-session sample remembers at most (older ones are forgotten first)."""

_TYPES = frozenset(str(member) for member in EventType) | {"scheduled", "push", "handback"}
_live: _Live | None = None


STORE_BUCKETS = (.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10)
LEASE_BUCKETS = (*STORE_BUCKETS, 30)
HANDLER_BUCKETS = (.005, .01, .025, .05, .075, .1, .25, .5, .75, 1, 2.5, 5, 7.5, 10)
LATE_BUCKETS = (.05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 300)
FLUSH_EVERY = 1.0
"""Seconds between flushes of this process's figures into prometheus_client (``flusher``)."""

Counts = dict[tuple[Any, ...], int]
Observed = dict[tuple[Any, ...], list[float]]
"""Per label tuple: the count in each bucket (the last one +Inf), then the sum."""


class _Live:
    """The figures as plain dicts, a few hundred nanoseconds to bump on the hot path, flushed into
    prometheus_client's metrics (microseconds each, and under --workers a write to a shared file) once a
    second and before every scrape."""

    def __init__(self, multiprocess: bool) -> None:
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

        self.multiprocess = multiprocess
        self.registry = CollectorRegistry(auto_describe=True)
        reg = self.registry
        self.webhooks_metric = Counter("botkit_webhooks", "Webhook requests answered, by channel and HTTP status.",
                                       ["channel", "status"], registry=reg)
        self.events_metric = Counter("botkit_events", "Events handled, by channel, type and outcome.",
                                     ["channel", "type", "outcome"], registry=reg)
        self.sends_metric = Counter("botkit_sends", "Outbound platform API calls, by channel and final HTTP status "
                                    "(error: no answer).", ["channel", "status"], registry=reg)
        self.retries_metric = Counter("botkit_send_retries", "Outbound API calls tried again, by channel.", ["channel"],
                                      registry=reg)
        self.handler_metric = Histogram("botkit_handler_seconds", "Time the handler (and its middleware) took per event.",
                                        ["channel"], registry=reg, buckets=HANDLER_BUCKETS)
        self.store_metric = Histogram("botkit_store_call_seconds", "Session store calls by operation.", ["operation"],
                                      registry=reg, buckets=STORE_BUCKETS)
        self.lease_metric = Histogram("botkit_lease_wait_seconds", "Time an event waited for its session (this "
                                      "process's queue and the store's lease).", registry=reg, buckets=LEASE_BUCKETS)
        self.late_metric = Histogram("botkit_scheduled_step_lateness_seconds", "How long after its due time a "
                                     "scheduled step started to run.", registry=reg, buckets=LATE_BUCKETS)
        self.depth = Gauge("botkit_inbox_depth", "Events waiting in the inbox (sampled at scrape).", registry=reg,
                           multiprocess_mode="livemostrecent")
        self.oldest = Gauge("botkit_inbox_oldest_age_seconds", "Age of the oldest waiting event (sampled at scrape).",
                            registry=reg, multiprocess_mode="livemostrecent")
        self.due = Gauge("botkit_scheduled_steps_due", "Scheduled steps due and not run yet (sampled at scrape).",
                         registry=reg, multiprocess_mode="livemostrecent")
        self.active = Gauge("botkit_active_sessions", f"Sessions with an event in the last {ACTIVE_WINDOW:g} s, per "
                            "process, summed (sampled at scrape).", registry=reg, multiprocess_mode="livesum")
        self.webhooks: Counts = {}
        self.events: Counts = {}
        self.sends: Counts = {}
        self.retries: Counts = {}
        self.handler: Observed = {}
        self.store: Observed = {}
        self.lease: Observed = {}
        self.late: Observed = {}
        self.seen: dict[str, float] = {}

    def flush(self) -> None:
        for name in ("webhooks", "events", "sends", "retries"):
            counts: Counts = getattr(self, name)
            if counts:
                setattr(self, name, {})
                metric = getattr(self, name + "_metric")
                for labels, count in counts.items():
                    metric.labels(*map(str, labels)).inc(count)
        for name in ("handler", "store", "lease", "late"):
            observed: Observed = getattr(self, name)
            if observed:
                setattr(self, name, {})
                metric = getattr(self, name + "_metric")
                for labels, figures in observed.items():
                    child = metric.labels(*labels) if labels else metric
                    for bucket, observations in zip(child._buckets, figures, strict=False):  # as observe() adds them
                        if observations:
                            bucket.inc(observations)
                    child._sum.inc(figures[-1])


def _bounds(buckets: tuple[float, ...]) -> tuple[float, ...]:
    return (*buckets, float("inf"))


_HANDLER, _STORE, _LEASE, _LATE = (_bounds(b) for b in (HANDLER_BUCKETS, STORE_BUCKETS, LEASE_BUCKETS, LATE_BUCKETS))


def _observe(observed: Observed, bounds: tuple[float, ...], labels: tuple[Any, ...], value: float) -> None:
    figures = observed.get(labels)
    if figures is None:
        figures = observed[labels] = [0.0] * (len(bounds) + 1)
    figures[bisect_left(bounds, value)] += 1
    figures[-1] += value


def enable() -> None:
    """Turn recording on in this process (idempotent)."""
    global _live
    if _live is None:
        _live = _Live(multiprocess=bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR")))


def enabled() -> bool:
    return _live is not None


def webhook(channel: str, status: int) -> None:
    if _live is not None:
        counts, key = _live.webhooks, (channel, status)
        counts[key] = counts.get(key, 0) + 1


def event(channel: str | None, event_type: str, outcome: str, meta: dict[str, Any] | None = None) -> None:
    """Count an event's outcome; ``meta[OUTCOME]``, when a middleware set it, overrides it."""
    if _live is None:
        return
    if meta:
        outcome = meta.get(OUTCOME, outcome)
    counts, key = _live.events, (channel or "-", event_type if event_type in _TYPES else "other", str(outcome))
    counts[key] = counts.get(key, 0) + 1


def count_as(meta: dict[str, Any], outcome: str) -> None:
    """For a middleware: count this event (its ``event.meta``) with ``outcome`` (``RATE_LIMITED``) instead of
    what the dispatcher would count (a dropped event is ``handled`` to the dispatcher)."""
    meta[OUTCOME] = outcome


def count_event(channel: str | None, event_type: str, outcome: str) -> None:
    """Count an event that never reaches the dispatcher (dropped before it) with ``outcome``."""
    event(channel, event_type, outcome)


def handler_seconds(channel: str | None, seconds: float) -> None:
    if _live is not None:
        _observe(_live.handler, _HANDLER, (channel or "-",), seconds)


def store_call(operation: str, seconds: float) -> None:
    if _live is not None:
        _observe(_live.store, _STORE, (operation,), seconds)


def lease_wait(seconds: float) -> None:
    if _live is not None:
        _observe(_live.lease, _LEASE, (), seconds)


def send(channel: str | None, status: int | None, retries: int) -> None:
    if _live is None:
        return
    name = channel or "-"
    counts, key = _live.sends, (name, "error" if status is None else status)
    counts[key] = counts.get(key, 0) + 1
    if retries:
        _live.retries[(name,)] = _live.retries.get((name,), 0) + retries


def step_late(seconds: float) -> None:
    if _live is not None:
        _observe(_live.late, _LATE, (), max(seconds, 0.0))


def seen(session_key: str) -> None:
    """A session had an event now (for the active-sessions sample)."""
    if _live is None:
        return
    seen = _live.seen
    seen.pop(session_key, None)  # re-inserted last: the dict stays ordered by last activity
    seen[session_key] = time.monotonic()
    if len(seen) > MAX_TRACKED:
        del seen[next(iter(seen))]


def sample(*, inbox_depth: int | None = None, inbox_oldest_age: float | None = None, steps_due: int | None = None) -> None:
    """Set the gauges that are read at scrape time (the app reads the stores)."""
    if _live is None:
        return
    if inbox_depth is not None:
        _live.depth.set(inbox_depth)
        _live.oldest.set(inbox_oldest_age or 0.0)
    if steps_due is not None:
        _live.due.set(steps_due)
    seen, horizon = _live.seen, time.monotonic() - ACTIVE_WINDOW
    while seen:
        key = next(iter(seen))
        if seen[key] >= horizon:
            break
        del seen[key]
    _live.active.set(len(seen))


def flush() -> None:
    """Hand this process's figures to prometheus_client (under --workers: to the files every worker reads)."""
    if _live is not None:
        _live.flush()


async def flusher() -> None:
    """Flush every ``FLUSH_EVERY`` seconds until cancelled (then once more): a scrape that another worker
    answers sees this worker's figures at most that old."""
    try:
        while True:
            await asyncio.sleep(FLUSH_EVERY)
            flush()
    finally:
        flush()


def exposition() -> tuple[bytes, str]:
    """The metrics in the Prometheus text format, and its content type; in multiprocess mode, every
    process's (live and dead) summed."""
    from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

    if _live is None:
        return b"", CONTENT_TYPE_LATEST
    _live.flush()
    if not _live.multiprocess:
        return generate_latest(_live.registry), CONTENT_TYPE_LATEST
    from prometheus_client import multiprocess

    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    return generate_latest(registry), CONTENT_TYPE_LATEST
