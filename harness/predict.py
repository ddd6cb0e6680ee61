"""Sample structures from a trained checkpoint and write them as predictions (mmCIF + confidences JSON).

Inputs are structure files (mmCIF/PDB, plain or gzipped): their sequences, ligands and bonds define what is
predicted; their coordinates are never shown to the model (only the CCD reference conformers are). The output
layout is ``analysis.structure_io.prediction_paths``, which ``harness eval`` reads.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import yaml

from harness.config import RunConfig
from harness.errors import HarnessError


class CheckpointError(HarnessError):
    """A checkpoint or run folder that cannot be used for prediction."""


class PredictInputError(HarnessError):
    """An input structure that cannot be featurised."""


@dataclass
class LoadedModel:
    config: RunConfig
    model: torch.nn.Module
    step: int
    ema: bool


def resolve_checkpoint(path: str | Path) -> Path:
    """A ``.ckpt`` file, or a run folder holding ``checkpoints/last.ckpt``."""
    from harness.tracking.run_folder import RunFolder

    path = Path(path)
    if path.is_dir():
        path = RunFolder(path).last_checkpoint
    if not path.is_file():
        raise CheckpointError(f"{path}: no checkpoint (expected a .ckpt file or a run folder with checkpoints/)")
    return path


def load_model(path: str | Path, *, use_ema: bool = True, device: str = "cpu") -> LoadedModel:
    """Build the model from the config stored in the checkpoint and load its (EMA) weights."""
    from models.model import SeedFold

    ckpt_path = resolve_checkpoint(path)
    try:
        ckpt = torch.load(ckpt_path, map_location=device, weights_only=True)
    except Exception as exc:  # torch raises many types for a torn or foreign file
        raise CheckpointError(f"{ckpt_path}: not a readable checkpoint ({exc.__class__.__name__}: {exc})") from None
    harness_state = ckpt.get("harness", {})
    if "config_yaml" not in harness_state:
        raise CheckpointError(f"{ckpt_path}: not a harness checkpoint (no stored run config)")
    config = RunConfig.model_validate(yaml.safe_load(harness_state["config_yaml"]))
    model = SeedFold(config.model.architecture())
    weights = {k.removeprefix("model."): v for k, v in ckpt["state_dict"].items()}
    ema_state = ckpt.get("callbacks", {}).get("EMA")
    used_ema = bool(use_ema and ema_state and ema_state.get("updates", 0) > 0)
    if used_ema:
        weights |= {k.removeprefix("model."): v for k, v in ema_state["shadow"].items()}
    model.load_state_dict(weights)
    model.to(device).eval()
    return LoadedModel(config, model, int(ckpt["global_step"]), used_ema)


def featurise_input(path: Path, config: RunConfig, msa_dir: Path | None = None):
    """Every token of the structure (no crop) as a batch of one, its flat arrays and its chains.

    MSAs: per entity from ``msa_dir`` (as in ``harness data prepare``), else query-only.
    Raises a ``RecordError`` (a HarnessError naming the file) when the structure cannot be used.
    """
    from harness.data.cache import build_example
    from harness.data.collate import collate
    from harness.data.featurize import featurize

    if not path.is_file():
        raise PredictInputError(f"{path}: no such structure file")
    structure, tokens, _ = build_example(path, msa_dir, max_msa_rows=config.data.max_msa_rows_cached,
                                         drop_crystallization_aids=config.data.drop_crystallization_aids)
    arrays = tokens.arrays
    example = featurize(arrays, np.arange(tokens.n_tokens), config.data.max_msa_rows, np.random.default_rng(0))
    return collate([example]), arrays, structure.entry_id, tokens.chains


def atom_array(arrays: dict[str, np.ndarray], chain_list: list[dict], coords: np.ndarray):
    """A biotite AtomArray of the featurised atoms at ``coords`` (A, 3), named as in the input."""
    import biotite.structure as struc
    import gemmi

    from harness.data.constants import LIGAND

    token = arrays["atom_to_token"]
    chains = {c["asym_id"]: c for c in chain_list}
    n = len(token)
    atoms = struc.AtomArray(n)
    atoms.coord = coords.astype(np.float32)
    asym = arrays["asym_id"][token]
    seq_pos = arrays["residue_index"][token]
    atoms.chain_id = np.array([chains[a]["auth_id"] for a in asym])
    atoms.res_id = seq_pos
    names = arrays["ref_atom_name_chars"]
    atoms.atom_name = np.array(["".join(chr(c + 32) for c in row).strip() for row in names])
    atoms.element = np.array([gemmi.Element(int(z)).name.upper() if z > 0 else "X" for z in arrays["ref_element"]])
    res_names = []
    for a, p in zip(asym, seq_pos, strict=True):
        seq = chains[a]["sequence"]
        res_names.append(seq[min(max(p - 1, 0), len(seq) - 1)])
    atoms.res_name = np.array(res_names)
    atoms.hetero = np.array([chains[a]["mol_type"] == LIGAND for a in asym])
    return atoms


def predict(
    checkpoint: str | Path,
    inputs: list[Path],
    out_dir: str | Path,
    *,
    n_samples: int = 5,
    seeds: list[int] | None = None,
    n_steps: int = 200,
    n_cycles: int | None = None,
    msa_dir: Path | None = None,
    use_ema: bool = True,
) -> list[Path]:
    """Write ``n_samples`` predictions per seed for every input; returns the written structure paths.

    With a trained confidence head (the run's ``train.confidence_loss``) every sample carries AF3's ranking
    score; otherwise the samples keep their order (``ranking_score`` = -sample index, so top-1 is the first)
    and the confidences JSON says that ranking is unavailable."""
    from analysis.structure_io import write_prediction
    from harness.ranking import UNAVAILABLE_NOTE, fraction_disordered, ranking_available
    from models.confidence_metrics import ranking_score

    loaded = load_model(checkpoint, use_ema=use_ema)
    cycles = n_cycles or loaded.config.train.max_cycles
    rank = ranking_available(loaded.config)
    written: list[Path] = []
    for path in inputs:
        batch, arrays, target_id, chains = featurise_input(Path(path), loaded.config, msa_dir)
        sample = 0
        for seed in seeds or [0]:
            g = torch.Generator().manual_seed(seed)
            with torch.no_grad():
                out = loaded.model.sample(batch, n_cycles=cycles, n_samples=n_samples, n_steps=n_steps, generator=g)
            for k in range(n_samples):
                coords = out["coords"][0, k].numpy()
                atoms = atom_array(arrays, chains, coords)
                plddt = out["plddt"][0, k].numpy() if "plddt" in out else np.full(len(coords), 50.0)
                ptm = float(out["ptm"][0, k]) if "ptm" in out else 0.0
                iptm = float(out["iptm"][0, k]) if "iptm" in out else 0.0
                confidences = {"ptm": ptm, "iptm": iptm, "checkpoint_step": loaded.step, "ema": loaded.ema,
                               "ranking_available": rank}
                if rank:
                    disorder = fraction_disordered(atoms)
                    clash = bool(out["has_clash"][0, k])
                    score = float(ranking_score(out["ptm"][:, k : k + 1], out["iptm"][:, k : k + 1],
                                                out["multichain"], torch.tensor([[disorder]]),
                                                out["has_clash"][:, k : k + 1])[0, 0])
                    confidences |= {"fraction_disordered": disorder, "has_clash": clash}
                else:
                    score = -float(sample)
                    confidences["ranking_note"] = UNAVAILABLE_NOTE
                paths = write_prediction(
                    out_dir, target_id, sample, atoms, plddt, ranking=score, seed=seed, confidences=confidences,
                )
                written.append(paths.structure)
                sample += 1
    return written
