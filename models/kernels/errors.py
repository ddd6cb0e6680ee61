"""Typed errors of the triangle-attention kernels: bad inputs or an implementation that cannot run here."""


class TriangleAttentionInputError(ValueError):
    """An argument of ``triangle_attention`` has the wrong shape, dtype, device or value."""


class KernelUnavailableError(RuntimeError):
    """``impl="triton"`` was asked for where Triton cannot run (no CUDA and no ``TRITON_INTERPRET=1``)."""
