"""Sweep YAML → validated runs: grids, zips, profiles, seeds, stable keys, and errors naming file and key."""

from __future__ import annotations

import pytest
import yaml
from sweep_files import write_sweep

from harness.errors import ConfigError
from harness.sweep.expand import load_and_expand


def test_grid_zip_seeds_cartesian_product(tmp_path):
    path = write_sweep(tmp_path, runs={"a": {}}, grid={"train.max_steps": [10, 20]},
                       zip={"train.lr": [0.1, 0.2, 0.3], "train.warmup_steps": [1, 2, 3]}, seeds=[0, 1])
    _, specs = load_and_expand(path)
    assert len(specs) == 2 * 3 * 2
    combos = {(s.config.train.max_steps, s.config.train.lr, s.config.train.warmup_steps, s.config.seed)
              for s in specs}
    assert len(combos) == 12
    assert all((lr, wu) in {(0.1, 1), (0.2, 2), (0.3, 3)} for _, lr, wu, _ in combos)  # zip pairs, not product
    labels = [s.label for s in specs]
    assert "a-max_steps10-lr0.1-warmup_steps1-s0" in labels and len(set(labels)) == 12


def test_keys_are_stable_and_hash_the_resolved_config(tmp_path):
    path = write_sweep(tmp_path)
    _, first = load_and_expand(path)
    _, again = load_and_expand(path)
    assert [s.key for s in first] == [s.key for s in again]
    assert first[0].key == f"a-{first[0].config.config_hash()}"
    assert first[0].run_dir == (tmp_path / "runs" / "toy" / first[0].key).resolve()
    _, changed = load_and_expand(path, extra={"train.max_steps": 99})
    assert all(c.key != f.key for c, f in zip(changed, first, strict=True))


def test_profile_order_run_values_beat_profile_overrides(tmp_path):
    path = write_sweep(tmp_path, runs={"fast": {"train.lr": 0.3}, "slow": {}},
                       profiles={"mini": {"overrides": {"train.lr": 0.01, "train.max_steps": 3},
                                          "runs": {"slow": {"train.warmup_steps": 7}}}})
    _, specs = load_and_expand(path, "mini")
    by = {s.label: s.config.train for s in specs}
    assert by["fast"].lr == 0.3 and by["slow"].lr == 0.01
    assert by["fast"].max_steps == 3 and by["slow"].warmup_steps == 7
    assert all(s.config.tracking.experiment == "toy" for s in specs)


def test_paper_sweeps_expand_to_the_papers_table():
    _, specs = load_and_expand("sweeps/width_vs_depth.yaml", "paper")
    rows = {s.label: (s.config.model.c_z, s.config.model.n_pairformer_blocks, s.config.model.n_diffusion_blocks)
            for s in specs}
    assert rows == {"base": (128, 48, 24), "medium": (256, 48, 24), "large": (512, 48, 24),
                    "deep_pairformer": (128, 96, 24), "deep_structure": (128, 48, 48)}
    large = next(s for s in specs if s.label == "large").config.train
    assert (large.lr, large.warmup_steps) == (1.0e-3, 3000)
    _, mini = load_and_expand("sweeps/width_vs_depth.yaml", "mini")
    assert all(s.config.model.miniature and s.config.model.c_z <= 64 for s in mini)
    _, ablation = load_and_expand("sweeps/attention_ablation.yaml", "mini")
    assert {s.config.model.triangle_attention for s in ablation} == {"vanilla", "additive", "gated"}
    assert len({s.config.model.c_z for s in ablation}) == 1  # equal width
    _, lr = load_and_expand("sweeps/lr_stability.yaml", "paper")
    assert {(s.config.model.c_z, s.config.train.lr, s.config.train.warmup_steps) for s in lr} == {
        (512, 1.8e-3, 1000), (512, 1.0e-3, 3000)}


def test_a_profile_sets_its_own_seeds(tmp_path):
    path = write_sweep(tmp_path, runs={"a": {}}, seeds=[0], profiles={"mini": {"seeds": [3, 4]}, "paper": {}})
    _, mini = load_and_expand(path, "mini")
    assert sorted((s.label, s.config.seed) for s in mini) == [("a-s3", 3), ("a-s4", 4)]
    _, paper = load_and_expand(path, "paper")
    assert [(s.label, s.config.seed) for s in paper] == [("a", 0)]
    # The shipped mini profiles run every configuration with more than one seed; the paper ones with one.
    for sweep, n_seeds in (("sweeps/width_vs_depth.yaml", 2), ("sweeps/attention_ablation.yaml", 3)):
        _, specs = load_and_expand(sweep, "mini")
        seeds_per_config: dict[str, set[int]] = {}
        for s in specs:
            seeds_per_config.setdefault(s.label.rsplit("-s", 1)[0], set()).add(s.config.seed)
        assert all(len(v) == n_seeds for v in seeds_per_config.values()), (sweep, seeds_per_config)


@pytest.mark.parametrize("sections, expected", [
    ({"grid": {"train.lrr": [1]}}, "grid.train.lrr: unknown key 'lrr' under train"),
    ({"grid": {"train.lr.x": [1]}}, "train.lr is a value, not a mapping"),
    ({"runs": {"a": {"train.lr": "fast"}}}, "run a: train.lr: Input should be a valid number"),
    ({"runs": {"a": {"model.preset": "huge"}}}, "run a: model: Value error, unknown preset 'huge'"),
    ({"zip": {"train.lr": [0.1], "train.warmup_steps": [1, 2]}}, "zip axes must have equal lengths"),
    ({"runs": {"a": {}, "b": {"train.lr": 0.2}}, "base": {"runs_dir": "r", "train": {"lr": 0.2}}},
     "run b: resolves to the same config as run a"),
    ({"seeds": [1, 1]}, "seeds must be distinct"),
    ({"profiles": {"mini": {"seeds": [2, 2]}}}, "seeds must be distinct"),
    ({"profiles": {"mini": {"runs": {"zzz": {}}}}}, "profiles.mini.runs names unknown runs ['zzz']"),
    ({"executor": {"kind": "cloud"}}, "executor.kind: Input should be 'auto', 'local' or 'slurm'"),
])
def test_bad_sweeps_name_the_file_and_key(tmp_path, sections, expected):
    path = write_sweep(tmp_path, **sections)
    with pytest.raises(ConfigError) as err:
        load_and_expand(path)
    assert expected in str(err.value)
    assert str(err.value).startswith(str(path))


def test_unknown_profile_and_bad_yaml(tmp_path):
    path = write_sweep(tmp_path)
    with pytest.raises(ConfigError, match="no profile 'paper'"):
        load_and_expand(path, "paper")
    broken = tmp_path / "broken.yaml"
    broken.write_text("name: x\nruns: [\n")
    with pytest.raises(ConfigError, match="invalid YAML"):
        load_and_expand(broken)
    listy = tmp_path / "list.yaml"
    listy.write_text(yaml.safe_dump([1, 2]))
    with pytest.raises(ConfigError, match="expected a mapping"):
        load_and_expand(listy)
