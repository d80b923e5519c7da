"""Bundled checkpoints, colour table and default configurations."""
