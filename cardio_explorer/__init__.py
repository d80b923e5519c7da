"""cardio-explorer: generative models of cardiac anatomy, their engine and their explorer."""

__version__ = "0.1.0"
