"""Building blocks of the SeedFold model, one AF3 algorithm (or a small family of them) per file."""
