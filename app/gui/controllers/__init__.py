"""Controllers of the main window: panels that edit the app state and turn it into requests."""
