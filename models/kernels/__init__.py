"""Triangle-attention kernels (Triton) behind one function with a pure-PyTorch reference.

``triangle_attention(q, k, v, bias, mask, *, variant, bias_activation="relu", impl="auto")``; see
``models.kernels.dispatch`` for shapes and semantics. Importing this package does not import Triton.
"""

from models.kernels.dispatch import triangle_attention
from models.kernels.errors import KernelUnavailableError, TriangleAttentionInputError
from models.kernels.launch_config import tile_override

__all__ = ["KernelUnavailableError", "TriangleAttentionInputError", "tile_override", "triangle_attention"]
