"""Overlap, surface-distance, clinical-phenotype and distribution metrics."""
