"""The dataset factory: plans, cases, layouts and writers behind ``cardio-explorer synthesize``."""
