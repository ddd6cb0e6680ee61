"""Sample structures from a trained checkpoint and write them as predictions (mmCIF + confidences JSON).

Inputs are AlphaFold3 input JSON files, FASTA files (``harness.inputs``) or structure files (mmCIF/PDB, plain
or gzipped), whose sequences, ligands and bonds define what is predicted; coordinates are never shown to the model
(only CCD or RDKit reference conformers are). The output layout is ``analysis.structure_io.prediction_paths``,
which ``harness eval`` reads.

Inference runs on the GPU when there is one (``device="auto"``), with the model's fast triangle-attention path
(``kernel_impl`` of the checkpoint's config, ``auto`` by default) and row chunking of the triangle operations,
chosen from the target's size unless given, so large targets fit in memory.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import yaml

from harness.config import RunConfig, load_record
from harness.errors import HarnessError

# AF3's num_recycles at inference: trunk passes after the first (its code runs num_recycles + 1 passes).
INFERENCE_RECYCLES = 10


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


def resolve_device(device: str = "auto") -> torch.device:
    """``auto``: the first CUDA device when there is one, else the CPU; otherwise what is named."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except RuntimeError:
        raise PredictInputError(f"--device {device!r}: expected auto, cpu, cuda or cuda:N") from None
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise PredictInputError(f"--device {device!r}: no CUDA device is available")
    return resolved


def auto_chunk_size(n_tokens: int) -> int | None:
    """Rows per chunk of the pair operations: none below 256 tokens, then 128 → 32 as the target grows
    (the (rows, n, n, heads) logits of one chunk stay under ~1 GB in fp32 up to ~2,000 tokens at 4 heads; at
    2,000 tokens and c_z 128 a chunked Pairformer block adds ~5 z-sized tensors, BENCHMARKS.md)."""
    if n_tokens <= 256:
        return None
    if n_tokens <= 768:
        return 128
    return 64 if n_tokens <= 1536 else 32


def set_chunk_size(model: torch.nn.Module, chunk_size: int | None) -> None:
    """Row chunking of every pair operation of ``model`` at inference (changes no parameter or value;
    ``models.model.SeedFold.set_chunk_size``)."""
    model.set_chunk_size(chunk_size)


def load_model(path: str | Path, *, use_ema: bool = True, device: str | torch.device = "cpu") -> LoadedModel:
    """Build the model from the config stored in the checkpoint and load its (EMA) weights.

    The checkpoint is memory-mapped on the CPU: only the weights used (EMA or model) are read and then moved to
    ``device``; the optimizer's moments and the other copy never reach it."""
    from models.model import SeedFold

    ckpt_path = resolve_checkpoint(path)
    try:
        ckpt = torch.load(ckpt_path, map_location="cpu", weights_only=True, mmap=True)
    except Exception as exc:  # torch raises many types for a torn or foreign file
        raise CheckpointError(f"{ckpt_path}: not a readable checkpoint ({exc.__class__.__name__}: {exc})") from None
    harness_state = ckpt.get("harness", {})
    if "config_yaml" not in harness_state:
        raise CheckpointError(f"{ckpt_path}: not a harness checkpoint (no stored run config)")
    config = load_record(yaml.safe_load(harness_state["config_yaml"]), f"{ckpt_path} (its stored run config)")
    model = SeedFold(config.model.architecture())
    model.config.policy.apply_backend()  # TF32 on CUDA, as in training
    weights = {k.removeprefix("model."): v for k, v in ckpt["state_dict"].items()}
    ema_state = ckpt.get("callbacks", {}).get("EMA")
    used_ema = bool(use_ema and ema_state and ema_state.get("updates", 0) > 0)
    if used_ema:
        weights |= {k.removeprefix("model."): v for k, v in ema_state["shadow"].items()}
    model.load_state_dict(weights)
    model.to(device).eval()
    return LoadedModel(config, model, int(ckpt["global_step"]), used_ema)


@dataclass
class Target:
    """One thing to fold: every token (no crop) as a batch of one, its flat arrays and chains, and from an AF3
    JSON its seeds and the notes on what of the input was not used."""

    name: str
    batch: dict
    arrays: dict[str, np.ndarray]
    chains: list[dict]
    seeds: list[int]
    notes: list[str]
    msa_sources: dict[str, str]

    @property
    def n_tokens(self) -> int:
        return len(self.arrays["restype"])


def _featurised(arrays, config: RunConfig) -> dict:
    from harness.data.collate import collate
    from harness.data.featurize import featurize

    example = featurize(arrays, np.arange(len(arrays["restype"])), config.data.max_msa_rows,
                        np.random.default_rng(0))
    return collate([example])


def read_targets(path: Path, config: RunConfig, msa_dir: Path | None = None) -> list[Target]:
    """The targets of one input file: an AF3 JSON (one or several jobs), a FASTA file, or a structure file.

    MSAs: as the input gives them, else per chain from ``msa_dir`` (as in ``harness data prepare``), else
    query-only. Raises a HarnessError naming the file (and the entry or key) when the input cannot be used.
    """
    from harness.data.example import build_example
    from harness.inputs import assemble, read_fold_jobs
    from harness.inputs.read import is_fold_job_file

    if not path.is_file():
        raise PredictInputError(f"{path}: no such input file")
    if is_fold_job_file(path):
        targets = []
        for job in read_fold_jobs(path):
            built = assemble(job, msa_dir=msa_dir, max_msa_rows=config.data.max_msa_rows_cached)
            arrays = built.tokens.arrays
            targets.append(Target(job.name, _featurised(arrays, config), arrays, built.tokens.chains, job.seeds,
                                  job.notes, built.msa_sources))
        return targets
    structure, tokens, rejects = build_example(path, msa_dir, max_msa_rows=config.data.max_msa_rows_cached,
                                               drop_crystallization_aids=config.data.drop_crystallization_aids)
    notes = [r["reason"] for r in rejects]
    return [Target(structure.entry_id, _featurised(tokens.arrays, config), tokens.arrays, tokens.chains, [], notes,
                   {})]


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
    n_recycles: int = INFERENCE_RECYCLES,
    msa_dir: Path | None = None,
    use_ema: bool = True,
    device: str = "auto",
    chunk_size: int | None = None,
    step_scale: float | None = None,
) -> list[Path]:
    """Write ``n_samples`` predictions per seed for every target of every input; returns the structure paths.

    Seeds: ``seeds`` if given, else an AF3 JSON job's ``modelSeeds``, else ``[0]``. ``chunk_size``: rows per
    chunk of the triangle operations; None chooses from each target's size (:func:`auto_chunk_size`).
    ``step_scale``: the sampler's η instead of the run's ``model.sampler.step_scale``. ``n_recycles``: recycling
    iterations as AF3 counts them (``num_recycles``: trunk passes after the first; AF3 infers with 10), whatever
    the run trained with (``train.max_cycles`` trunk passes at most).
    With a trained confidence head (the run's ``train.confidence_loss``) every sample carries AF3's ranking
    score; otherwise the samples keep their order (``ranking_score`` = -sample index, so top-1 is the first)
    and the confidences JSON says that ranking is unavailable.
    """
    from analysis.structure_io import write_prediction
    from harness.ranking import UNAVAILABLE_NOTE, fraction_disordered, ranking_available
    from models.confidence_metrics import ranking_score

    dev = resolve_device(device)
    loaded = load_model(checkpoint, use_ema=use_ema, device=dev)
    if n_recycles < 0:
        raise ValueError(f"n_recycles={n_recycles}; expected >= 0")
    cycles = n_recycles + 1  # trunk passes
    if step_scale is not None:
        from harness.config_files import parse_config
        from models.config import SamplerConfig

        arch = loaded.model.config
        sampler = parse_config(SamplerConfig, arch.sampler.model_dump() | {"step_scale": step_scale}, "--step-scale")
        loaded.model.config = arch.model_copy(update={"sampler": sampler})
    rank = ranking_available(loaded.config)
    written: list[Path] = []
    for path in inputs:
        for target in read_targets(Path(path), loaded.config, msa_dir):
            chunk = chunk_size if chunk_size is not None else auto_chunk_size(target.n_tokens)
            set_chunk_size(loaded.model, chunk)
            batch = {k: v.to(dev) if isinstance(v, torch.Tensor) else v for k, v in target.batch.items()}
            run_info = {"checkpoint_step": loaded.step, "ema": loaded.ema, "device": str(dev), "chunk_size": chunk,
                        "kernel_impl": loaded.config.model.kernel_impl, "sampler_steps": n_steps,
                        "recycles": n_recycles, "trunk_passes": cycles,
                        "sampler": loaded.model.config.sampler.model_dump()}
            if target.msa_sources:
                run_info["msa"] = target.msa_sources
            if target.notes:
                run_info["input_notes"] = target.notes
            sample = 0
            for seed in seeds or target.seeds or [0]:
                g = torch.Generator(device=dev).manual_seed(seed)
                with torch.no_grad():
                    out = loaded.model.sample(batch, n_cycles=cycles, n_samples=n_samples, n_steps=n_steps,
                                              generator=g)
                # What the output files need comes to the host; the (N, N, bins) distogram stays on the device.
                out = {k: v.float().cpu() if isinstance(v, torch.Tensor) else v for k, v in out.items()
                       if k != "distogram_logits"}
                for k in range(n_samples):
                    coords = out["coords"][0, k].numpy()
                    plddt = out["plddt"][0, k].numpy() if "plddt" in out else np.full(len(coords), 50.0)
                    ptm = float(out["ptm"][0, k]) if "ptm" in out else 0.0
                    iptm = float(out["iptm"][0, k]) if "iptm" in out else 0.0
                    atoms = atom_array(target.arrays, target.chains, coords)
                    confidences = {"ptm": ptm, "iptm": iptm, "ranking_available": rank} | run_info
                    if rank:
                        disorder, clash = fraction_disordered(atoms), out["has_clash"][:, k : k + 1].bool()
                        score = float(ranking_score(out["ptm"][:, k : k + 1], out["iptm"][:, k : k + 1],
                                                    out["multichain"].bool(), torch.tensor([[disorder]]), clash))
                        confidences |= {"fraction_disordered": disorder, "has_clash": bool(clash)}
                    else:
                        score = -float(sample)
                        confidences["ranking_note"] = UNAVAILABLE_NOTE
                    paths = write_prediction(
                        out_dir, target.name, sample, atoms, plddt, ranking=score, seed=seed, confidences=confidences,
                    )
                    written.append(paths.structure)
                    sample += 1
    return written
