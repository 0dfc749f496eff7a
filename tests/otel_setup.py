"""A ``BOTKIT_OTEL_SETUP`` hook for the tests: the OpenTelemetry SDK with its in-memory exporter, each
finished span also written as one JSON line to ``$BOTKIT_TEST_SPANS/spans-<pid>.jsonl`` so that a test
can read the spans of every botkit process it started."""
from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path

from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter


class FileExporter(InMemorySpanExporter):
    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        result = super().export(spans)
        folder = os.environ.get("BOTKIT_TEST_SPANS")
        if folder:
            with open(Path(folder) / f"spans-{os.getpid()}.jsonl", "a") as out:
                for span in spans:
                    out.write(json.dumps(as_dict(span)) + "\n")
        return result


def as_dict(span: ReadableSpan) -> dict[str, object]:
    context, parent = span.get_span_context(), span.parent
    return {"name": span.name, "trace_id": format(context.trace_id, "032x"), "span_id": format(context.span_id, "016x"),
            "parent_id": format(parent.span_id, "016x") if parent is not None else None, "pid": os.getpid(),
            "attributes": dict(span.attributes or {})}


exporter = FileExporter()


def setup() -> None:
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
