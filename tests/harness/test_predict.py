"""`harness predict` from a trained checkpoint, then `harness eval` on what it wrote: the full loop."""

import json
import subprocess
import sys

import numpy as np
import pytest

from analysis.structure_io import read_structure
from harness.config import RunConfig, parse_config
from harness.data.starter import starter_dir
from harness.predict import CheckpointError, load_model, predict
from harness.train.run import train_run

ENTRY = "1ahsa"  # a 126-residue monomer of the starter set


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("predict")
    config = parse_config(RunConfig, {
        "name": "predict", "runs_dir": str(root / "runs"),
        "model": {"preset": "base", "miniature": True},
        "data": {"crop_size": 32, "max_msa_rows": 4, "val_max_tokens": 32},
        "train": {"max_steps": 4, "val_every": 100, "val_batches": 1, "diffusion_batch": 2, "max_cycles": 1,
                  "threads": 1, "checkpoint_every": 2, "val_sampling_steps": 20},
    }, "<test>")
    train_run(config, root / "run")
    return root / "run", config


def test_checkpoint_alone_rebuilds_the_model(trained_run):
    run_dir, config = trained_run
    loaded = load_model(run_dir)
    assert loaded.step == 4 and loaded.ema
    assert loaded.config.config_hash() == config.config_hash()


def test_the_loaded_weights_are_the_ema_copy_read_from_a_cpu_mapping(trained_run):
    """The model's weights are the checkpoint's EMA shadow (not the trained weights, which differ after 4 steps);
    the checkpoint itself was mapped on the CPU, so its optimizer moments never reach the model's device."""
    import torch

    from harness.predict import resolve_checkpoint

    run_dir, _ = trained_run
    ckpt = torch.load(resolve_checkpoint(run_dir), map_location="cpu", weights_only=True)
    shadow = {k.removeprefix("model."): v for k, v in ckpt["callbacks"]["EMA"]["shadow"].items()}
    trained = {k.removeprefix("model."): v for k, v in ckpt["state_dict"].items()}
    state = load_model(run_dir).model.state_dict()
    assert shadow and all(torch.equal(state[k], v) for k, v in shadow.items())
    assert any(not torch.equal(trained[k], v) for k, v in shadow.items())


@pytest.mark.gpu
@pytest.mark.skipif(not __import__("torch").cuda.is_available(), reason="needs CUDA")
def test_loading_on_a_gpu_moves_only_the_model_weights(trained_run):
    """On the GPU after loading: exactly the model's parameters and buffers (each storage rounded up to the
    caching allocator's 512 bytes), none of the checkpoint's Adam moments or second weight copy."""
    import torch

    run_dir, _ = trained_run
    torch.cuda.empty_cache()
    before = torch.cuda.memory_allocated()
    loaded = load_model(run_dir, device="cuda")
    tensors = [*loaded.model.parameters(), *loaded.model.buffers()]
    expected = sum(-(-t.untyped_storage().nbytes() // 512) * 512 for t in tensors)
    assert torch.cuda.memory_allocated() - before == expected


def test_a_checkpoint_from_before_the_af3_fixes_rebuilds_the_model_it_holds(trained_run, tmp_path):
    import torch
    import yaml

    from harness.predict import resolve_checkpoint

    run_dir, config = trained_run
    ckpt = torch.load(resolve_checkpoint(run_dir), weights_only=True)
    stored = yaml.safe_load(ckpt["harness"]["config_yaml"])
    assert stored["model"].pop("transformer_block_order") == "sequential"
    assert stored["model"].pop("zero_init_conditioning") is True
    ckpt["harness"]["config_yaml"] = yaml.safe_dump(stored, sort_keys=False)  # as written before the keys existed
    torch.save(ckpt, tmp_path / "old.ckpt")
    loaded = load_model(tmp_path / "old.ckpt")
    assert loaded.model.diffusion_module.transformer.order == "parallel"
    assert loaded.model.diffusion_module.atom_encoder.transformer.order == "parallel"
    assert loaded.model.config.zero_init_conditioning is False
    legacy = RunConfig.model_validate(config.model_dump() | {"model": config.model.model_dump() | {
        "transformer_block_order": "parallel", "zero_init_conditioning": False}})
    assert loaded.config.config_hash() == legacy.config_hash() != config.config_hash()


def test_predict_writes_samples_that_eval_scores(trained_run, tmp_path):
    run_dir, _ = trained_run
    structure = starter_dir() / "structures" / f"{ENTRY}.pdb.gz"
    out = tmp_path / "preds"
    cmd = [sys.executable, "-m", "harness", "predict", str(run_dir), str(structure), "--out", str(out),
           "--samples", "2", "--steps", "10", "--seed", "0", "--seed", "1"]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr[-3000:]
    cifs = sorted((out / ENTRY).glob("*.cif"))
    assert [p.name for p in cifs] == [f"{ENTRY}_sample_{k}.cif" for k in range(4)]

    reference = read_structure(structure)
    model = read_structure(cifs[0])
    ref_heavy = reference[reference.element != "H"]
    assert set(model.chain_id) == {"A"}
    assert len(np.unique(model.res_id)) == len(np.unique(ref_heavy.res_id))
    assert model.array_length() == ref_heavy.array_length()  # every resolved heavy atom, no more
    assert np.isfinite(model.coord).all()
    plddt = model.b_factor
    assert (plddt >= 0).all() and (plddt <= 100).all()
    conf = json.loads(cifs[0].with_name(f"{ENTRY}_sample_0_confidences.json").read_text())
    assert np.isfinite(conf["ranking_score"]) and conf["checkpoint_step"] == 4
    # this run never trained its confidence head: no ranking, sampling order kept and said so
    assert conf["ranking_available"] is False and "ranking unavailable" in conf["ranking_note"]
    assert conf["sampler"] == {"gamma_0": 0.8, "gamma_min": 1.0, "noise_scale": 1.003, "step_scale": 1.5}  # AF3's
    # AF3's 10 recycles at inference (11 trunk passes), whatever the run trained with (max_cycles 1)
    assert (conf["recycles"], conf["trunk_passes"]) == (10, 11)
    scores = [json.loads(p.with_name(p.stem + "_confidences.json").read_text())["ranking_score"] for p in cifs]
    assert scores == [0.0, -1.0, -2.0, -3.0]

    targets = tmp_path / "targets.csv"
    targets.write_text(f"task,entry_id,chain_ids,reference\nmonomer,{ENTRY},A,{structure}\n")
    res = subprocess.run([sys.executable, "-m", "harness", "eval", "--targets", str(targets), "--predictions",
                          str(out), "--out", str(tmp_path / "eval")], capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr[-3000:]
    raw = (tmp_path / "eval" / "raw.csv").read_text()
    assert ",ok," in raw


def test_a_trained_confidence_head_ranks_with_af3s_score(tmp_path):
    config = parse_config(RunConfig, {
        "name": "ranked", "runs_dir": str(tmp_path / "runs"),
        "model": {"preset": "base", "miniature": True},
        "data": {"crop_size": 32, "max_msa_rows": 4, "val_max_tokens": 32},
        "train": {"max_steps": 2, "val_every": 100, "val_batches": 1, "diffusion_batch": 2, "max_cycles": 1,
                  "threads": 1, "checkpoint_every": 2, "val_sampling_steps": 20, "confidence_loss": True},
    }, "<test>")  # fmt: skip
    train_run(config, tmp_path / "run")
    paths = predict(tmp_path / "run", [starter_dir() / "structures" / f"{ENTRY}.pdb.gz"], tmp_path / "preds",
                    n_samples=2, n_steps=10)  # fmt: skip
    for p in paths:
        conf = json.loads(p.with_name(p.stem + "_confidences.json").read_text())
        assert conf["ranking_available"] is True and "ranking_note" not in conf
        assert 0.0 <= conf["fraction_disordered"] <= 1.0 and isinstance(conf["has_clash"], bool)
        # a monomer: pTM + 0.5·disorder − 100·clash
        expected = conf["ptm"] + 0.5 * conf["fraction_disordered"] - 100.0 * conf["has_clash"]
        assert conf["ranking_score"] == pytest.approx(expected, abs=1e-5)


def test_not_a_checkpoint_is_a_clear_error(tmp_path):
    with pytest.raises(CheckpointError, match="no checkpoint"):
        load_model(tmp_path)
    bad = tmp_path / "x.ckpt"
    bad.write_text("not a checkpoint")
    with pytest.raises(CheckpointError, match="not a readable checkpoint"):
        load_model(bad)


def _sequence_of(entry: str) -> str:
    from harness.data.constants import THREE_TO_ONE
    from harness.data.parse import read_structure

    structure = read_structure(starter_dir() / "structures" / f"{entry}.pdb.gz")
    return "".join(THREE_TO_ONE.get(n, "X") for n in structure.chains[0].sequence)


def test_predict_from_an_af3_json_job(trained_run, tmp_path):
    """Folding from a sequence (AF3 input JSON): the job's name and seeds, what was used and what was not."""
    run_dir, _ = trained_run
    job = {"dialect": "alphafold3", "version": 2, "name": "from_json", "modelSeeds": [3],
           "sequences": [{"protein": {"id": "A", "sequence": _sequence_of(ENTRY), "templates": [{"mmcif": ""}]}},
                         {"ligand": {"id": "B", "smiles": "CCO"}}]}
    path = tmp_path / "job.json"
    path.write_text(json.dumps(job))
    out = tmp_path / "preds"
    cmd = [sys.executable, "-m", "harness", "predict", str(run_dir), str(path), "--out", str(out), "--samples", "1",
           "--steps", "10", "--chunk-size", "16", "--device", "cpu", "--recycles", "2"]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr[-3000:]
    model = read_structure(out / "from_json" / "from_json_sample_0.cif")
    assert set(model.chain_id) == {"A", "B"} and (model.chain_id == "B").sum() == 3  # ethanol: 3 heavy atoms
    conf = json.loads((out / "from_json" / "from_json_sample_0_confidences.json").read_text())
    assert conf["seed"] == 3 and conf["device"] == "cpu" and conf["chunk_size"] == 16
    assert (conf["recycles"], conf["trunk_passes"]) == (2, 3)
    assert conf["msa"] == {"A": "query only", "B": "query only"}
    assert any("templates ignored" in note for note in conf["input_notes"])


def test_bad_fold_input_is_one_clear_line(trained_run, tmp_path):
    run_dir, _ = trained_run
    path = tmp_path / "bad.fasta"
    path.write_text(">A|protein\nMKV*\n")
    res = subprocess.run([sys.executable, "-m", "harness", "predict", str(run_dir), str(path), "--out",
                          str(tmp_path / "p")], capture_output=True, text=True, timeout=600)
    assert res.returncode == 2
    assert f"{path}: chain A: protein sequence has letters '*'" in res.stderr
    assert "Traceback" not in res.stderr


def test_chunked_inference_gives_the_same_structure(trained_run):
    """Row chunking of the triangle operations bounds memory and changes no value."""
    import torch

    from harness.predict import auto_chunk_size, read_targets, set_chunk_size

    run_dir, _ = trained_run
    loaded = load_model(run_dir)
    target = read_targets(starter_dir() / "structures" / f"{ENTRY}.pdb.gz", loaded.config)[0]
    coords = {}
    for chunk in (None, 7):
        set_chunk_size(loaded.model, chunk)
        with torch.no_grad():
            out = loaded.model.sample(target.batch, n_cycles=1, n_samples=2, n_steps=10,
                                      generator=torch.Generator().manual_seed(0))
        coords[chunk] = out
    torch.testing.assert_close(coords[7]["coords"], coords[None]["coords"], atol=1e-4, rtol=1e-4)
    # The confidence head runs one sample at a time when chunking: the same values, no pair logits kept.
    assert loaded.model.confidence_head is not None
    for key in ("plddt", "pae", "ptm", "has_clash"):
        assert coords[7][key].shape == coords[None][key].shape
        torch.testing.assert_close(coords[7][key], coords[None][key], atol=1e-3, rtol=1e-3)
    assert "pae_logits" not in coords[7] and "pae_logits" in coords[None]
    assert auto_chunk_size(200) is None and auto_chunk_size(2000) == 32


def test_step_scale_overrides_the_runs_sampler_and_is_recorded(trained_run, tmp_path):
    run_dir, _ = trained_run
    structure = starter_dir() / "structures" / f"{ENTRY}.pdb.gz"
    coords = {}
    for eta in (1.0, 1.5):
        (cif,) = predict(run_dir, [structure], tmp_path / str(eta), n_samples=1, n_steps=10, step_scale=eta,
                         device="cpu")
        conf = json.loads(cif.with_name(cif.stem + "_confidences.json").read_text())
        assert conf["sampler"]["step_scale"] == eta
        coords[eta] = read_structure(cif).coord
    assert not np.allclose(coords[1.0], coords[1.5], atol=1e-3)  # same seed, another sampler


def test_a_step_scale_that_is_not_positive_is_a_clear_error(trained_run, tmp_path):
    from harness.errors import ConfigError

    structure = starter_dir() / "structures" / f"{ENTRY}.pdb.gz"
    with pytest.raises(ConfigError, match=r"--step-scale: step_scale: .*greater than 0"):
        predict(trained_run[0], [structure], tmp_path, n_samples=1, n_steps=10, step_scale=0.0, device="cpu")
