"""Synthetic 3D+t heart cohort with known pathology, conditions and physiology."""
