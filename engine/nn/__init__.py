"""What every network shares: checkpoints (safetensors + JSON), training helpers, slices."""
