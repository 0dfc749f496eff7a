"""The app: the composition root (Bot), the config file and the channel registry."""
