"""The engine: runs the handler for each event (per-session order, lease, dedupe, load → run → save),
builds what a handler sees (Context) and runs scheduled work when it is due."""
