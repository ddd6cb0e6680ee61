"""Optimal rigid superposition (Kabsch) and RMSD, in numpy.

All coordinates are in Å; ``(N, 3)`` arrays of corresponding points.
"""

from __future__ import annotations

import numpy as np


def kabsch(mobile: np.ndarray, target: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rotation R (3, 3) and translation t (3,) minimising ``|| mobile @ R.T + t - target ||``.

    ``mobile``, ``target``: (N, 3) with N >= 3 (N < 3 has no unique rotation; the result is still optimal).
    """
    mobile = np.asarray(mobile, dtype=np.float64)
    target = np.asarray(target, dtype=np.float64)
    if mobile.shape != target.shape or mobile.ndim != 2 or mobile.shape[1] != 3:
        raise ValueError(f"kabsch needs two (N, 3) arrays of equal shape, got {mobile.shape} and {target.shape}")
    if len(mobile) == 0:
        raise ValueError("kabsch needs at least one point pair")
    mobile_center = mobile.mean(axis=0)
    target_center = target.mean(axis=0)
    covariance = (mobile - mobile_center).T @ (target - target_center)
    u, _, vt = np.linalg.svd(covariance)
    # Flip the last axis when the best orthogonal map would be a reflection.
    sign = np.sign(np.linalg.det(u @ vt)) or 1.0
    correction = np.diag([1.0, 1.0, sign])
    rotation = (u @ correction @ vt).T
    translation = target_center - mobile_center @ rotation.T
    return rotation, translation


def apply(coords: np.ndarray, rotation: np.ndarray, translation: np.ndarray) -> np.ndarray:
    """Transform (..., 3) coordinates by ``x @ R.T + t``."""
    return np.asarray(coords, dtype=np.float64) @ rotation.T + translation


def rmsd(a: np.ndarray, b: np.ndarray) -> float:
    """RMSD (Å) between corresponding (N, 3) point sets, without superposition."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.shape != b.shape or len(a) == 0:
        raise ValueError(f"rmsd needs two non-empty arrays of equal shape, got {a.shape} and {b.shape}")
    return float(np.sqrt(np.mean(np.sum((a - b) ** 2, axis=-1))))


def superposed_rmsd(mobile: np.ndarray, target: np.ndarray) -> float:
    """RMSD (Å) after optimally superposing ``mobile`` onto ``target``."""
    rotation, translation = kabsch(mobile, target)
    return rmsd(apply(mobile, rotation, translation), target)
