"""The desktop app and the command line: controllers, worker threads, CLI."""
