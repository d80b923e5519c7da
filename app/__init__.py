"""The app: Qt-free jobs (jobs/), the command line (commands/, cli.py), the window (gui/)."""
