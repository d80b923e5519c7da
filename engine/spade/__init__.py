"""SPADE label-to-image synthesis: data, losses, training, inference and the fidelity check."""
