"""The running service and composition root: settings, the tick, transports, the HTTP app, the CLI."""
