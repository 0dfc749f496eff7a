"""The leaf layer: what every other layer speaks in. It imports nothing else of botkit."""
