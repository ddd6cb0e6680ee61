"""The SeedFold model: an AlphaFold3-class structure predictor with width, depth and triangle-attention
variant as configuration. Nothing here imports from ``harness``.

Entry points: ``SeedFold`` (models.model), ``compute_losses`` (models.losses), ``get_preset`` / ``miniaturize``
(models.presets), ``count_parameters`` / ``forward_flops`` (models.accounting)."""

from models.config import ModelConfig

__all__ = ["ModelConfig"]
