"""The desktop window: the only Qt code (window, controllers, worker thread, display)."""
