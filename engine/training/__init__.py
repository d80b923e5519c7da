"""Training loops for the engine's models (label VAE; shared helpers in ``loop``)."""
