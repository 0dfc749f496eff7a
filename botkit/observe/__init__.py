"""Observability: Prometheus metrics, OpenTelemetry traces and the log's context (docs/observability.md).

A layer of its own just above the core, so that the stores, the outbound HTTP client and the engine can
record what they do without importing the app: every recording function is a no-op (one check) until
``metrics.enable()`` or a configured OpenTelemetry SDK turns it on."""
