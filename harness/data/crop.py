"""AF3 croppers (SI §2.7): contiguous, spatial and spatial-interface, with a token and an atom budget.

Each cropper returns the sorted indices of the kept tokens. Inputs are the cached token arrays of one
example (see ``tokenize.py``): ``asym_id`` (N,), ``atom_count`` (N,), ``center_atom`` (N,), and the atom
arrays ``gt_coords`` (A, 3) Å / ``gt_atom_mask`` (A,).
"""

from __future__ import annotations

import numpy as np

INTERFACE_CUTOFF = 15.0  # Å between token centres of different chains (AF3 SI §2.7.3)


def _within_atom_budget(
    order: np.ndarray, atom_count: np.ndarray, max_tokens: int, max_atoms: int
) -> np.ndarray:
    """The longest prefix of ``order`` that fits both budgets."""
    order = order[:max_tokens]
    fits = np.cumsum(atom_count[order]) <= max_atoms
    return order[: int(fits.sum()) if fits.all() else int(np.argmin(fits))]


def contiguous_crop(
    arrays: dict[str, np.ndarray], max_tokens: int, max_atoms: int, rng: np.random.Generator
) -> np.ndarray:
    """Algorithm 1 of AF3 SI §2.7.1: chains in random order, one random contiguous segment per chain."""
    asym = arrays["asym_id"]
    atom_count = arrays["atom_count"]
    chains = [np.flatnonzero(asym == a) for a in np.unique(asym)]
    rng.shuffle(chains)
    remaining = sum(len(c) for c in chains)
    tokens_left, atoms_left = max_tokens, max_atoms
    kept = []
    for idx in chains:
        n = len(idx)
        remaining -= n
        crop_max = min(tokens_left, n)
        crop_min = min(n, max(0, tokens_left - remaining))
        if crop_max <= 0:
            continue
        size = int(rng.integers(crop_min, crop_max + 1))
        start = int(rng.integers(0, n - size + 1))
        segment = idx[start : start + size]
        segment = _within_atom_budget(segment, atom_count, size, atoms_left)
        kept.append(segment)
        tokens_left -= len(segment)
        atoms_left -= int(atom_count[segment].sum())
    return np.sort(np.concatenate(kept)) if kept else np.zeros(0, dtype=np.int64)


def _token_centres(arrays: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    centre = arrays["center_atom"]
    return arrays["gt_coords"][centre], arrays["gt_atom_mask"][centre]


def spatial_crop(
    arrays: dict[str, np.ndarray],
    max_tokens: int,
    max_atoms: int,
    rng: np.random.Generator,
    candidates: np.ndarray | None = None,
) -> np.ndarray:
    """AF3 SI §2.7.2: the tokens nearest a random resolved reference token (ties broken by token index)."""
    pos, resolved = _token_centres(arrays)
    pool = np.flatnonzero(resolved) if candidates is None else candidates
    if len(pool) == 0:
        return contiguous_crop(arrays, max_tokens, max_atoms, rng)
    ref = int(rng.choice(pool))
    dist = np.linalg.norm(pos - pos[ref], axis=-1)
    dist = np.where(resolved, dist, np.inf) + np.arange(len(dist)) * 1e-3
    order = np.argsort(dist, kind="stable")
    return np.sort(_within_atom_budget(order, arrays["atom_count"], max_tokens, max_atoms))


def interface_tokens(
    arrays: dict[str, np.ndarray], cutoff: float = INTERFACE_CUTOFF, chains: tuple[int, ...] | None = None
) -> np.ndarray:
    """Resolved tokens with a resolved token of another chain within ``cutoff`` Å (centre atoms).

    ``chains``: only tokens of these asym ids, in contact with another of them (a pair: that interface) or,
    for one chain, with any other chain."""
    pos, resolved = _token_centres(arrays)
    asym_all = arrays["asym_id"]
    idx = np.flatnonzero(resolved)
    if len(idx) == 0:
        return idx
    p, asym = pos[idx], asym_all[idx]
    partners = np.ones(len(idx), dtype=bool) if chains is None or len(chains) < 2 else np.isin(asym, chains)
    out = np.zeros(len(idx), dtype=bool)
    for start in range(0, len(idx), 512):  # bounded memory on large complexes
        d = np.linalg.norm(p[start : start + 512, None] - p[None], axis=-1)
        other = (asym[start : start + 512, None] != asym[None]) & partners[None]
        out[start : start + 512] = ((d < cutoff) & other).any(axis=1)
    if chains is not None:
        out &= np.isin(asym, chains)
    return idx[out]


def focus_tokens(arrays: dict[str, np.ndarray], focus: tuple[int, ...]) -> np.ndarray:
    """Resolved tokens of the sampled unit (AF3 SI §2.5.1, §2.7.2): a chain's tokens for ``(asym,)``; the
    interface tokens of the two chains for ``(asym_a, asym_b)`` (all their tokens if none is within reach)."""
    _, resolved = _token_centres(arrays)
    in_unit = np.flatnonzero(resolved & np.isin(arrays["asym_id"], focus))
    if len(focus) < 2:
        return in_unit
    contact = interface_tokens(arrays, chains=focus)
    return contact if len(contact) else in_unit


def spatial_interface_crop(
    arrays: dict[str, np.ndarray],
    max_tokens: int,
    max_atoms: int,
    rng: np.random.Generator,
    candidates: np.ndarray | None = None,
) -> np.ndarray:
    """AF3 SI §2.7.3: spatial crop around a token at a chain interface (plain spatial if there is none);
    ``candidates`` (the sampled unit's tokens) narrows the interface tokens to those among them."""
    at_interface = interface_tokens(arrays)
    if candidates is not None:
        narrowed = np.intersect1d(at_interface, candidates)
        at_interface = narrowed if len(narrowed) else candidates
    return spatial_crop(arrays, max_tokens, max_atoms, rng, at_interface if len(at_interface) else None)


CROPPERS = {
    "contiguous": contiguous_crop,
    "spatial": spatial_crop,
    "spatial_interface": spatial_interface_crop,
}


def crop(
    arrays: dict[str, np.ndarray],
    max_tokens: int,
    max_atoms: int,
    weights: dict[str, float],
    rng: np.random.Generator,
    focus: tuple[int, ...] | None = None,
) -> np.ndarray:
    """Pick a cropper by ``weights`` and return kept token indices; all tokens if the example already fits.

    ``focus``: the asym id(s) of the sampled chain or interface; the spatial croppers take their reference
    token from it, as AF3 does (the contiguous cropper, chain by chain over the whole entry, ignores it).
    """
    n = len(arrays["asym_id"])
    if n <= max_tokens and int(arrays["atom_count"].sum()) <= max_atoms:
        return np.arange(n)
    names = [k for k, w in weights.items() if w > 0]
    p = np.array([weights[k] for k in names], dtype=np.float64)
    name = names[int(rng.choice(len(names), p=p / p.sum()))]
    if focus is None or name == "contiguous":
        return CROPPERS[name](arrays, max_tokens, max_atoms, rng)
    candidates = focus_tokens(arrays, focus)
    return CROPPERS[name](arrays, max_tokens, max_atoms, rng, candidates if len(candidates) else None)
