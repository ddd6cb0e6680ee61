"""Find the sampled structures and ranking scores of one target in the folder layout a predictor writes.

``predictions_dir`` is the folder holding one sub-folder per target (job), as each tool writes it; ``target``
is the job name (FoldBench: the ``pdb_id``, e.g. ``7yf2-assembly1``). Folder names are matched
case-insensitively (AlphaFold 3 3.0.0 lower-cases job names). Layouts, and the tool version each follows:

- ``seedfold`` (``harness predict``): ``{target}/{target}_sample_{k}.cif`` and
  ``{target}_sample_{k}_confidences.json`` → ``ranking_score``.
- ``alphafold3`` (AlphaFold 3 3.0.1; 3.0.0's unprefixed names too): ``{target}/seed-{s}_sample-{k}/``
  ``{target}_seed-{s}_sample-{k}_model.cif`` and ``..._summary_confidences.json`` → ``ranking_score``
  (3.0.0: ``model.cif``, ``summary_confidences.json``).
- ``boltz`` (Boltz 1.0 / 2.x): ``{target}/{target}_model_{k}.cif`` and ``confidence_{target}_model_{k}.json`` →
  ``confidence_score``, found under ``predictions_dir``, ``predictions_dir/predictions`` or
  ``predictions_dir/boltz_results_{target}/predictions``.
- ``protenix`` (Protenix 0.3–0.5): ``{target}/seed_{s}/predictions/{target}_seed_{s}_sample_{k}.cif`` and
  ``{target}_seed_{s}_summary_confidence_sample_{k}.json`` → ``ranking_score``.
- ``chai1`` (chai-lab 0.5/0.6): ``{target}/pred.model_idx_{k}.cif`` and ``scores.model_idx_{k}.npz`` →
  ``aggregate_score``.

Samples are numbered 0..n−1 in (seed, sample) order; ``name`` keeps the tool's own label (``seed-1_sample-3``).
A ranking score that is missing or not finite is ``None`` (top-1 selection then refuses to guess).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

AUTO = "auto"
LAYOUTS = ("seedfold", "alphafold3", "boltz", "protenix", "chai1")
_STRUCTURE = r"(\.cif|\.cif\.gz|\.pdb|\.pdb\.gz|\.bcif)"


@dataclass(frozen=True)
class Sample:
    """One sampled structure: ``index`` 0..n−1, the tool's ``name`` for it, its file and ranking score."""

    index: int
    structure: Path
    ranking_score: float | None
    name: str = ""
    layout: str = "seedfold"


def _child(folder: Path, name: str) -> Path | None:
    """``folder/name``, matching the name case-insensitively; None when absent."""
    exact = folder / name
    if exact.is_dir():
        return exact
    if not folder.is_dir():
        return None
    lower = name.lower()
    for child in folder.iterdir():
        if child.is_dir() and child.name.lower() == lower:
            return child
    return None


def _json_score(path: Path, key: str) -> float | None:
    try:
        value = json.loads(path.read_text()).get(key)
        value = float(value)
    except (OSError, ValueError, TypeError, AttributeError):
        return None
    return value if math.isfinite(value) else None


def _npz_score(path: Path, key: str) -> float | None:
    try:
        with np.load(path) as scores:
            value = float(np.asarray(scores[key]).reshape(-1)[0])
    except (OSError, ValueError, KeyError, IndexError):
        return None
    return value if math.isfinite(value) else None


def _numbered(entries: list[tuple[tuple[int, ...], str, Path, float | None]], layout: str) -> list[Sample]:
    entries.sort(key=lambda e: e[0])
    return [Sample(i, path, score, name, layout) for i, (_, name, path, score) in enumerate(entries)]


def _seedfold(predictions_dir: Path, target: str) -> list[Sample]:
    folder = _child(predictions_dir, target)
    if folder is None:
        return []
    pattern = re.compile(rf"^(.+)_sample_(\d+){_STRUCTURE}$")
    entries = []
    for path in folder.iterdir():
        match = pattern.match(path.name)
        if not match or match.group(1).lower() != target.lower():
            continue
        k = int(match.group(2))
        confidences = folder / f"{match.group(1)}_sample_{k}_confidences.json"
        entries.append(((k,), f"sample_{k}", path, _json_score(confidences, "ranking_score")))
    return _numbered(entries, "seedfold")


def _alphafold3(predictions_dir: Path, target: str) -> list[Sample]:
    folder = _child(predictions_dir, target)
    if folder is None:
        return []
    entries = []
    for sub in folder.iterdir():
        match = re.match(r"^seed-(-?\d+)_sample-(\d+)$", sub.name)
        if not match or not sub.is_dir():
            continue
        models = sorted(sub.glob("*model.cif"))
        if not models:
            continue
        model = models[0]
        summary = Path(str(model)[: -len("model.cif")] + "summary_confidences.json")
        entries.append(
            ((int(match.group(1)), int(match.group(2))), sub.name, model, _json_score(summary, "ranking_score"))
        )
    return _numbered(entries, "alphafold3")


def _boltz(predictions_dir: Path, target: str) -> list[Sample]:
    results = predictions_dir / f"boltz_results_{target}" / "predictions"
    bases = (predictions_dir, predictions_dir / "predictions", results)
    for base in bases:
        folder = _child(base, target)
        if folder is None:
            continue
        pattern = re.compile(rf"^(.+)_model_(\d+){_STRUCTURE}$")
        entries = []
        for path in folder.iterdir():
            match = pattern.match(path.name)
            if not match or match.group(1).lower() != folder.name.lower():
                continue
            k = int(match.group(2))
            confidence = folder / f"confidence_{match.group(1)}_model_{k}.json"
            entries.append(((k,), f"model_{k}", path, _json_score(confidence, "confidence_score")))
        if entries:
            return _numbered(entries, "boltz")
    return []


def _protenix(predictions_dir: Path, target: str) -> list[Sample]:
    folder = _child(predictions_dir, target)
    if folder is None:
        return []
    entries = []
    pattern = re.compile(rf"^(.+)_seed_(-?\d+)_sample_(\d+){_STRUCTURE}$")
    for seed_dir in folder.glob("seed_*"):
        predictions = seed_dir / "predictions"
        if not predictions.is_dir():
            continue
        for path in predictions.iterdir():
            match = pattern.match(path.name)
            if not match:
                continue
            stem, seed, k = match.group(1), int(match.group(2)), int(match.group(3))
            summary = predictions / f"{stem}_seed_{seed}_summary_confidence_sample_{k}.json"
            entries.append(((seed, k), f"seed_{seed}_sample_{k}", path, _json_score(summary, "ranking_score")))
    return _numbered(entries, "protenix")


def _chai1(predictions_dir: Path, target: str) -> list[Sample]:
    folder = _child(predictions_dir, target)
    if folder is None:
        return []
    entries = []
    for path in folder.iterdir():
        match = re.match(rf"^pred\.model_idx_(\d+){_STRUCTURE}$", path.name)
        if not match:
            continue
        k = int(match.group(1))
        scores = folder / f"scores.model_idx_{k}.npz"
        entries.append(((k,), f"model_idx_{k}", path, _npz_score(scores, "aggregate_score")))
    return _numbered(entries, "chai1")


_READERS: dict[str, Callable[[Path, str], list[Sample]]] = {
    "seedfold": _seedfold,
    "alphafold3": _alphafold3,
    "boltz": _boltz,
    "protenix": _protenix,
    "chai1": _chai1,
}


def find_samples(predictions_dir: str | Path, target: str, layout: str = AUTO) -> list[Sample]:
    """The target's samples in ``layout`` (or the first layout that finds any, in :data:`LAYOUTS` order)."""
    if layout != AUTO and layout not in _READERS:
        raise ValueError(f"layout {layout!r}: expected {AUTO} or one of {', '.join(LAYOUTS)}")
    predictions_dir = Path(predictions_dir)
    for name in LAYOUTS if layout == AUTO else (layout,):
        samples = _READERS[name](predictions_dir, target)
        if samples:
            return samples
    return []
