"""Datasets built from cohorts: preloaded label slices and subject splits."""
