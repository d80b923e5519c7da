"""Networks: label VAE, SPADE generator, conditional 4D VAE."""
