"""Pathology synthesis in the latent space of the 2D label VAE: atlas, sampling, morph."""
