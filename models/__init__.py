"""The SeedFold model: an AlphaFold3-class structure predictor with width, depth and triangle-attention
variant as configuration. Nothing here imports from ``harness``."""

from models.config import ModelConfig

__all__ = ["ModelConfig"]
