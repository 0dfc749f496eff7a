"""Channel adapters, one module per platform. Each registers under the ``botkit.adapters`` entry point."""
