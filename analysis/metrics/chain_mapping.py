"""Map reference chains onto model chains.

Candidates for a reference chain are the model chains of the same polymer kind whose sequence identity is
within 10% of the best match (and at least 30%), i.e. copies of the same entity. Among the injective mappings
over candidates, the one maximising a caller-given score wins (total DockQ for interfaces, lDDT for
lDDT); beyond ``max_enumerated`` mappings a seeded greedy search chain by chain is used instead.
``strict`` mapping only pairs chains with the same id.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Iterator

from analysis.metrics.correspondence import Chain, sequence_identity

MIN_IDENTITY = 0.3
RELATIVE_IDENTITY = 0.9


def candidate_chains(
    ref_chains: dict[str, Chain], model_chains: dict[str, Chain], *, strict: bool = False
) -> dict[str, list[str]]:
    """Model chain ids each reference chain may map to (possibly empty)."""
    candidates: dict[str, list[str]] = {}
    identity_cache: dict[tuple[str, str, str, str], float] = {}
    for ref_id, ref in ref_chains.items():
        if strict:
            model = model_chains.get(ref_id)
            ok = model is not None and sequence_identity(ref, model) >= MIN_IDENTITY
            candidates[ref_id] = [ref_id] if ok else []
            continue
        scores = {}
        for model_id, model in model_chains.items():
            key = (ref.kind, ref.sequence, model.kind, model.sequence)
            if key not in identity_cache:
                identity_cache[key] = sequence_identity(ref, model)
            scores[model_id] = identity_cache[key]
        best = max(scores.values(), default=0.0)
        candidates[ref_id] = [m for m, s in scores.items() if s >= MIN_IDENTITY and s >= RELATIVE_IDENTITY * best]
    return candidates


def enumerate_mappings(candidates: dict[str, list[str]]) -> Iterator[dict[str, str]]:
    """All injective mappings; reference chains without a free candidate stay unmapped."""
    ref_ids = list(candidates)

    def extend(k: int, used: set[str], current: dict[str, str]) -> Iterator[dict[str, str]]:
        if k == len(ref_ids):
            yield dict(current)
            return
        ref_id = ref_ids[k]
        free = [m for m in candidates[ref_id] if m not in used]
        if not free:
            yield from extend(k + 1, used, current)
            return
        for model_id in free:
            current[ref_id] = model_id
            yield from extend(k + 1, used | {model_id}, current)
            del current[ref_id]

    yield from extend(0, set(), {})


def map_chains_by_score(
    ref_chains: dict[str, Chain],
    model_chains: dict[str, Chain],
    score: Callable[[dict[str, str]], float],
    *,
    strict: bool = False,
    max_enumerated: int = 720,
) -> dict[str, str]:
    """The mapping (reference id → model id) that maximises ``score``; NaN scores count as −inf.

    With one candidate per chain no scoring happens. Ties keep the first mapping found, which favours the
    identity mapping when chain ids agree.
    """
    candidates = candidate_chains(ref_chains, model_chains, strict=strict)
    # Put the same-id candidate first so that ties resolve to the natural mapping.
    for ref_id, options in candidates.items():
        if ref_id in options:
            options.remove(ref_id)
            options.insert(0, ref_id)
    chosen = [c[0] for c in candidates.values() if c]
    if all(len(c) <= 1 for c in candidates.values()) and len(set(chosen)) == len(chosen):
        return {r: c[0] for r, c in candidates.items() if c}

    def safe(mapping: dict[str, str]) -> float:
        value = score(mapping)
        return -math.inf if value != value else value

    mappings = list(itertools.islice(enumerate_mappings(candidates), max_enumerated + 1))
    if len(mappings) <= max_enumerated:
        return max(mappings, key=safe)
    # Too many: seed with each candidate of the largest chain, extend greedily chain by chain (scoring the
    # partial mapping), keep the best complete result.
    order = sorted(candidates, key=lambda r: -ref_chains[r].n_residues)
    results = []
    for seed in candidates[order[0]] or [None]:
        mapping: dict[str, str] = {} if seed is None else {order[0]: seed}
        for ref_id in order[1:]:
            free = [m for m in candidates[ref_id] if m not in mapping.values()]
            if free:
                mapping[ref_id] = max(free, key=lambda m, r=ref_id: safe({**mapping, r: m}))
        results.append(mapping)
    return max(results, key=safe)
