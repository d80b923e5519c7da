"""Does synthetic data help a segmenter on real hearts? (issue 22, part 3: evaluate utility)."""
