"""The recipe layer: each derived setting, each validation error (naming its key), duplicate YAML keys, and the
paper profile pinned to SPEC.md §2.8 as `harness sweep --dry-run` resolves it."""

import pytest
import yaml
from typer.testing import CliRunner

from harness.cli import app
from harness.config import RunConfig, load_run_config, parse_config
from harness.errors import ConfigError
from harness.recipe import plan_stages, resolve
from harness.sweep.expand import load_sweep
from harness.sweep.service import prepare


def config(**sections) -> RunConfig:
    return parse_config(RunConfig, sections, "<test>")


def problems(**sections) -> str:
    with pytest.raises(ConfigError) as err:
        config(**sections)
    return str(err.value)


# ---- atom budget ---------------------------------------------------------------------------------------------

def test_atom_budget_follows_every_stage_crop():
    c = config(data={"crop_size": 384}, train={"max_steps": 100, "stages": [{"start_step": 60, "crop_size": 640}]})
    assert c.data.atom_budget == 4608  # AF3: 4608 atoms at 384 tokens
    assert [s.atom_budget for s in plan_stages(c)] == [4608, 7680]
    assert resolve(c).atom_budget_source == "derived: crop x 12"
    assert config(data={"crop_size": 32, "atoms_per_token": 16}).data.atom_budget == 512


def test_a_binding_atom_budget_is_an_error_naming_the_key():
    msg = problems(data={"crop_size": 384, "max_atoms": 768})
    assert "data.max_atoms=768 binds before data.crop_size=384" in msg and "~98 protein tokens" in msg
    msg = problems(data={"crop_size": 64, "max_atoms": 1000},
                   train={"max_steps": 10, "stages": [{"start_step": 5, "crop_size": 384}]})
    assert "binds before train.stages.0.crop_size=384" in msg
    assert "data.atoms_per_token=6" in problems(data={"atoms_per_token": 6})
    assert config(data={"crop_size": 384, "max_atoms": 5000}).data.atom_budget == 5000


def test_msa_depth_beyond_the_cache_is_an_error():
    assert "data.max_msa_rows=2048 exceeds data.max_msa_rows_cached=1024" in problems(data={"max_msa_rows": 2048})
    assert resolve(config(data={"max_msa_rows": 64})).msa_rows == 64


# ---- global batch and accumulation --------------------------------------------------------------------------

@pytest.mark.parametrize(("per_device", "devices", "nodes", "accumulation"),
                         [(1, 8, 1, 32), (2, 8, 1, 16), (1, 8, 2, 16), (4, 4, 2, 8)])
def test_accumulation_from_the_global_batch(per_device, devices, nodes, accumulation):
    r = resolve(config(data={"batch_size": per_device},
                       train={"global_batch": 256, "devices": devices, "num_nodes": nodes}))
    assert r.accumulation == accumulation and r.global_batch == 256


def test_without_a_global_batch_nothing_accumulates():
    r = resolve(config(train={"devices": 8}))
    assert r.accumulation == 1 and r.global_batch == 8


def test_an_impossible_global_batch_is_an_error():
    msg = problems(train={"global_batch": 250, "devices": 8})
    assert "train.global_batch=250 is not a multiple of data.batch_size x devices x nodes = 1 x 8 x 1 = 8" in msg
    assert "train.global_batch needs an integer train.devices" in problems(train={"global_batch": 256})


# ---- stage loss weights -------------------------------------------------------------------------------------

def test_bond_and_pae_are_on_only_in_fine_tuning_stages():
    c = config(train={"max_steps": 100, "confidence_loss": True, "stages": [
        {"start_step": 0}, {"start_step": 50, "fine_tune": True}, {"start_step": 80, "bond_weight": 0.5}]})
    assert [(s.bond_weight, s.pae_weight) for s in plan_stages(c)] == [(0.0, 0.0), (1.0, 1.0), (0.5, 0.0)]
    assert [(s.bond_weight, s.pae_weight) for s in plan_stages(config())] == [(0.0, 0.0)]


def test_a_stage_weight_outside_a_stage_is_an_error():
    assert "train.bond_weight is a stage setting" in problems(train={"bond_weight": 1.0})
    assert "train.loss_weights.pae_weight is a stage setting" in problems(train={"loss_weights": {"pae_weight": 1}})
    assert "train.fine_tune is a stage setting" in problems(train={"fine_tune": True})
    msg = problems(train={"max_steps": 10, "stages": [{"start_step": 10, "fine_tune": True}]})
    assert "train.stages.0.start_step=10 is not before train.max_steps=10" in msg
    msg = problems(train={"max_steps": 10, "stages": [{"start_step": 0, "pae_weight": 1.0}]})
    assert "train.stages.0: a PAE loss weight needs train.confidence_loss: true" in msg


def test_the_loss_takes_the_stage_weights():
    import torch

    from models.losses import compute_losses
    from models.model import SeedFold
    from tests.models.conftest import collate, random_example, tiny_config

    batch = collate([random_example(12, seed=0)])
    out = SeedFold(tiny_config())(batch, n_cycles=1, diffusion_batch=2, generator=torch.Generator().manual_seed(0),
                                  with_confidence=True)
    off = compute_losses(out, batch, confidence=True, weights={"bond": 0.0, "pae": 0.0})
    on = compute_losses(out, batch, confidence=True, weights={"bond": 1.0, "pae": 1.0})
    assert float(on["pae"].detach()) > 0
    torch.testing.assert_close(on["loss"] - off["loss"], 4.0 * on["bond"] + 1e-4 * on["pae"])


# ---- precision and checkpointing ----------------------------------------------------------------------------

def test_precision_and_checkpointing_are_shown_per_module():
    r = resolve(config(model={"preset": "base", "policy": {"trunk_precision": "bf16", "checkpoint_blocks": True}}))
    assert r.precision == {"template_embedder": "bf16", "msa_module": "bf16", "pairformer": "bf16",
                           "confidence_head": "fp32", "diffusion_module": "fp32", "losses": "fp32"}
    assert r.checkpoint_blocks and r.trainer_precision == "32-true"


# ---- duplicate YAML keys ------------------------------------------------------------------------------------

def test_duplicate_keys_are_rejected_with_file_key_and_line(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text("train:\n  lr: 1.0e-3\n  warmup_steps: 10\n  lr: 2.0e-3\n")
    with pytest.raises(ConfigError) as err:
        load_run_config(path)
    assert str(err.value) == f"{path}: line 4: duplicate key 'lr' (first given on line 2)"
    sweep = tmp_path / "sweep.yaml"
    sweep.write_text("name: s\nruns:\n  a: {train.lr: 1.0e-3, train.lr: 2.0e-3}\n")
    with pytest.raises(ConfigError, match="sweep.yaml: line 3: duplicate key 'train.lr'"):
        load_sweep(sweep)
    merged = tmp_path / "merge.yaml"
    merged.write_text("base: &b {train: {lr: 1.0e-3}}\nname: s\nruns:\n  a:\n    <<: *b\n    name: x\n")
    assert load_sweep(merged).runs["a"]["name"] == "x"  # keys merged with << may be overridden


def test_the_derived_record_is_checked_on_load(tmp_path):
    c = config(train={"global_batch": 8, "devices": 4})
    raw = c.model_dump(mode="json") | {"derived": resolve(c).as_dict()}
    assert RunConfig.model_validate(raw).config_hash() == c.config_hash()
    raw["derived"]["accumulation"] = 1
    with pytest.raises(ValueError, match="derived: does not match"):
        RunConfig.model_validate(raw)


# ---- the paper profile --------------------------------------------------------------------------------------

@pytest.mark.parametrize("sweep", ["width_vs_depth", "attention_ablation"])
def test_paper_profile_is_the_papers_recipe(sweep):
    """SPEC.md §2.8: crop 384 tokens, batch 256, lr 1.8e-3 with warmup 1000 (1e-3 / 3000 at width > 256 where
    the paper lowers it), bf16 for the MSA module and Pairformer, fp32 structure module and losses."""
    specs = prepare(f"sweeps/{sweep}.yaml", profile="paper", executor="local").specs
    assert specs
    for spec in specs:
        r = resolve(spec.config)
        assert (r.crop_tokens, r.atom_budget, r.global_batch) == (384, 4608, 256)
        assert (r.msa_rows, spec.config.data.max_msa_rows_cached) == (1024, 16384)  # AF3's MSA module, SI §2.3
        assert r.per_device_batch * r.devices * r.num_nodes * r.accumulation == 256
        assert r.precision["msa_module"] == r.precision["pairformer"] == "bf16"
        assert r.precision["diffusion_module"] == r.precision["losses"] == "fp32"
        assert r.checkpoint_blocks
        wide = spec.config.model.c_z > 256
        assert (r.lr, r.warmup_steps) == ((1e-3, 3000) if wide else (1.8e-3, 1000)), spec.label
    if sweep == "width_vs_depth":
        assert {s.label: s.config.train.lr for s in specs}["large"] == 1e-3


def test_dry_run_prints_the_recipe_in_effect():
    result = CliRunner().invoke(app, ["sweep", "sweeps/width_vs_depth.yaml", "--profile", "paper", "--dry-run",
                                      "--executor", "local"], env={"COLUMNS": "400"})
    assert result.exit_code == 0, result.output
    assert "384/4608/1024" in result.output and "256 = 1x8x1x32 acc" in result.output
    assert "trunk bf16, conf fp32, diff fp32, loss fp32" in result.output
    assert result.output.count(" on ") >= 5  # checkpointing, one per run
    assert result.output.count("0.8/1.5") >= 5  # AF3's sampler constants, one per run
    assert "pair readout" not in result.output  # AF3's confidence head ...
    readout = CliRunner().invoke(app, ["sweep", "sweeps/width_vs_depth.yaml", "--profile", "mini", "--dry-run",
                                       "--executor", "local", "--set", "model.confidence_pair_readout=true"],
                                 env={"COLUMNS": "400"})
    assert readout.exit_code == 0, readout.output
    assert readout.output.count("conf pair readout") >= 5  # ... or the miniature's, with its readout, one per run


def test_config_show_prints_derived_settings_that_load_back(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump({"data": {"crop_size": 384}, "train": {"global_batch": 16, "devices": 2}}))
    result = CliRunner().invoke(app, ["config", "show", str(path)])
    assert result.exit_code == 0, result.output
    shown = yaml.safe_load(result.output)
    assert shown["derived"]["accumulation"] == 8 and shown["derived"]["atom_budget"] == 4608
    assert "# estimate:" in result.output and "memory_gb_per_gpu" in result.output
    again = tmp_path / "shown.yaml"
    again.write_text(result.output)
    assert load_run_config(again).config_hash() == load_run_config(path).config_hash()
