"""The run config: presets expand, defaults fill in, and every kind of bad input is one clear error."""

from pathlib import Path

import pytest
import yaml

from harness.config import RunConfig, load_record, load_run_config, parse_config
from harness.errors import ConfigError


def write(tmp_path, data, name="run.yaml"):
    path = tmp_path / name
    path.write_text(data if isinstance(data, str) else yaml.safe_dump(data))
    return path


def test_preset_expands_and_overrides_win(tmp_path):
    cfg = load_run_config(write(tmp_path, {"model": {"preset": "medium", "triangle_attention": "gated"}}))
    assert cfg.model.c_z == 256 and cfg.model.c_m == 128
    assert cfg.model.triangle_attention == "gated"
    assert cfg.model.architecture().tri_att_heads == 256 // 32


def test_miniature_keeps_width_ratio(tmp_path):
    base = load_run_config(write(tmp_path, {"model": {"preset": "base", "miniature": True}}, "a.yaml"))
    large = load_run_config(write(tmp_path, {"model": {"preset": "large", "miniature": True}}, "b.yaml"))
    assert large.model.c_z == 4 * base.model.c_z
    assert large.model.n_pairformer_blocks == base.model.n_pairformer_blocks


def test_typo_key_names_file_and_path(tmp_path):
    path = write(tmp_path, {"train": {"lrr": 1e-3}})
    with pytest.raises(ConfigError) as err:
        load_run_config(path)
    assert str(err.value).count("\n") == 0
    assert f"{path}: train.lrr: unknown key" in str(err.value)


def test_wrong_type_and_range_are_reported_together(tmp_path):
    path = write(tmp_path, {"train": {"max_steps": "many", "lr": -1.0}, "model": {"c_z": 100}})
    with pytest.raises(ConfigError) as err:
        load_run_config(path)
    problems = err.value.problems
    assert any(p.startswith("train.max_steps:") and "'many'" in p for p in problems)
    assert any(p.startswith("train.lr:") and "greater than 0" in p for p in problems)
    assert any(p.startswith("model:") and "multiple of tri_att_head_dim" in p for p in problems)


def test_unknown_preset(tmp_path):
    with pytest.raises(ConfigError, match="unknown preset 'huge'"):
        load_run_config(write(tmp_path, {"model": {"preset": "huge"}}))


def test_missing_file_and_bad_yaml(tmp_path):
    with pytest.raises(ConfigError, match="nope.yaml: file not found"):
        load_run_config(tmp_path / "nope.yaml")
    with pytest.raises(ConfigError, match=r"line \d+, column \d+: invalid YAML"):
        load_run_config(write(tmp_path, "train:\n  lr: 1\n bad: [\n"))
    with pytest.raises(ConfigError, match="expected a mapping"):
        load_run_config(write(tmp_path, "- 1\n- 2\n"))


def test_config_hash_ignores_where_not_what(tmp_path):
    a = parse_config(RunConfig, {"runs_dir": "x", "tracking": {"uri": "http://h:1"}}, "a")
    b = parse_config(RunConfig, {"runs_dir": "y"}, "b")
    c = parse_config(RunConfig, {"train": {"lr": 1e-3}}, "c")
    assert a.config_hash() == b.config_hash() != c.config_hash()


def test_stages_must_increase():
    with pytest.raises(ConfigError, match="strictly increasing"):
        parse_config(RunConfig, {"train": {"stages": [{"start_step": 10}, {"start_step": 5}]}}, "s")


def test_a_key_added_later_keeps_old_run_keys_at_its_default():
    """model.sampler (and model.confidence_pair_readout) came after runs were recorded: at AF3's constants
    (spelled out or not) the run key is the one those runs have; any other value is another run."""
    spec = {"preset": "base", "miniature": True}
    old = RunConfig(model=spec)
    spelled = RunConfig(model=spec | {"sampler": {"gamma_0": 0.8, "step_scale": 1.5}})
    other = RunConfig(model=spec | {"sampler": {"step_scale": 1.0}})
    assert old.config_hash() == spelled.config_hash() != other.config_hash()
    # likewise model.confidence_pair_readout: off (AF3's head) is the recorded runs' model, on is another
    readout_off = RunConfig(model=spec | {"confidence_pair_readout": False})
    readout_on = RunConfig(model=spec | {"confidence_pair_readout": True})
    assert old.config_hash() == readout_off.config_hash() != readout_on.config_hash()
    # likewise train.val_at_start: validating at step 0 is what every recorded run did
    assert old.config_hash() == RunConfig(model=spec, train={"val_at_start": True}).config_hash() \
        != RunConfig(model=spec, train={"val_at_start": False}).config_hash()
    # recorded long-profile runs (written before model.sampler existed) keep the hashes they had then
    root = Path(__file__).parents[1] / "analysis/data/runs/width_vs_depth"
    recorded = {"base-s0-bbb97a1a7cfd": "9f65849610e7", "base-s1-b3d443b5815a": "4f0e9c4ea755",
                "base-s2-3dd14905bf9a": "daf036bad7c9"}
    assert {name: _record(root / name / "config.yaml").config_hash() for name in recorded} == recorded


def _record(path: Path) -> RunConfig:
    raw = yaml.safe_load(path.read_text())
    raw.pop("derived", None)
    return load_record(raw, str(path))


def test_af3_fixes_are_the_default_and_records_before_them_read_as_made(tmp_path):
    """model.transformer_block_order and model.zero_init_conditioning: AF3's sequential order and zero-initialised
    conditioning are the defaults (new run keys); a record written before the keys existed was made with the
    parallel order and LeCun conditioning, reads so and keeps its key, and a config that asks for both gets
    that key too."""
    path = Path(__file__).parents[1] / "analysis/data/runs/width_vs_depth/base-s1-b3d443b5815a/config.yaml"
    record = _record(path)
    arch = record.model.architecture()
    assert (arch.transformer_block_order, arch.zero_init_conditioning) == ("parallel", False)
    assert record.config_hash() == "4f0e9c4ea755"
    raw = yaml.safe_load(path.read_text())
    raw.pop("derived")
    today = RunConfig.model_validate(raw)  # the same YAML as a new config: today's defaults
    assert (today.model.transformer_block_order, today.model.zero_init_conditioning) == ("sequential", True)
    assert today.config_hash() == "f9b6351c820c"
    legacy = {"transformer_block_order": "parallel", "zero_init_conditioning": False}
    explicit = RunConfig.model_validate(raw | {"model": raw["model"] | legacy})
    assert explicit.config_hash() == "4f0e9c4ea755"
    parallel_only = RunConfig.model_validate(raw | {"model": raw["model"] | {"transformer_block_order": "parallel"}})
    assert parallel_only.config_hash() not in ("4f0e9c4ea755", "f9b6351c820c")  # a third model, a third key
    # a record that names the keys keeps them (records written from now on)
    raw["model"] |= {"transformer_block_order": "sequential", "zero_init_conditioning": True}
    assert load_record(raw, "r").model.architecture().transformer_block_order == "sequential"
    assert load_record(raw, "r").model.zero_init_conditioning is True


def test_unknown_block_order_is_one_config_error(tmp_path):
    with pytest.raises(ConfigError) as err:
        load_run_config(write(tmp_path, {"model": {"preset": "base", "miniature": True,
                                                   "transformer_block_order": "serial"}}))
    assert err.value.problems == [
        "model.transformer_block_order: Input should be 'sequential' or 'parallel' (got 'serial')"]
