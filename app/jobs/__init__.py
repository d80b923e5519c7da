"""Qt-free work the app does: requests and their jobs, the models it holds, session files."""
