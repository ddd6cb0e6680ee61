"""Profile files (sweeps/profiles/<name>.yaml): lookup, `extends` chains merged child over parent, where each
setting was written, and one ConfigError naming the file and key for an unknown, invalid or circular profile."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from sweep_files import write_sweep

from harness.errors import ConfigError
from harness.sweep.expand import executor_settings, expand, load_and_expand, load_sweep
from harness.sweep.profiles import CHECKOUT_PROFILES, shown


def _profile(tmp_path: Path, name: str, doc: dict) -> Path:
    folder = tmp_path / "profiles"
    folder.mkdir(exist_ok=True)
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


def test_extends_chain_merges_child_over_parent(tmp_path):
    a = _profile(tmp_path, "a", {"description": "A", "overrides": {"train": {"lr": 0.05}, "train.max_steps": 5},
                                 "seeds": [3], "executor": {"kind": "local", "slurm": {"mem_gb": 2}}})
    b = _profile(tmp_path, "b", {"extends": "a", "overrides": {"train.max_steps": 7},
                                 "executor": {"slurm": {"time_min": 9}}})
    path = write_sweep(tmp_path, profiles={"p": {"extends": "b", "overrides": {"train.warmup_steps": 2},
                                                 "runs": {"b": {"train.lr": 0.3}}}})
    sweep = load_sweep(path)
    prof = sweep.profiles["p"]
    assert prof.extends is None and prof.description == "A" and prof.seeds == [3]
    assert prof.overrides == {"train.lr": 0.05, "train.max_steps": 7, "train.warmup_steps": 2}
    assert {k: prof.origin(k, "-") for k in prof.overrides} == {
        "train.lr": shown(a), "train.max_steps": shown(b), "train.warmup_steps": f"{path}: profiles.p"}
    settings = executor_settings(sweep, prof, str(path))
    assert settings.kind == "local" and settings.slurm == {"mem_gb": 2, "time_min": 9}
    _, specs = load_and_expand(path, "p")
    by = {s.label: s.config for s in specs}  # one seed (3): labels carry no seed
    assert sorted(by) == ["a", "b"] and {c.seed for c in by.values()} == {3}
    assert (by["a"].train.lr, by["a"].train.max_steps, by["a"].train.warmup_steps) == (0.05, 7, 2)
    assert by["b"].train.lr == 0.3  # the sweep's profile entry per run beats the named run's 0.1


def test_profile_named_without_a_local_folder_comes_from_the_checkout(tmp_path):
    path = write_sweep(tmp_path, profiles={"paper": {"extends": "paper"}})
    prof = load_sweep(path).profiles["paper"]
    assert prof.overrides["train.global_batch"] == 256 and prof.executor["slurm_profile"] == "gpu_node_8"
    assert prof.origin("train.global_batch", "-") == shown(CHECKOUT_PROFILES / "paper.yaml")


def test_checkout_profiles_build_on_mini():
    sweep = load_sweep("sweeps/width_vs_depth.yaml")
    long, study, mini = sweep.profiles["long"], sweep.profiles["study"], sweep.profiles["mini"]
    assert long.origin("data.crop_size", "-") == shown(CHECKOUT_PROFILES / "mini.yaml")
    assert long.origin("train.max_steps", "-") == shown(CHECKOUT_PROFILES / "long.yaml")
    assert (long.overrides["train.max_steps"], long.overrides["data.crop_size"], long.seeds) == (1600, 32, [0, 1, 2])
    assert study.study.lr == "scan" and study.origin("study", "-") == shown(CHECKOUT_PROFILES / "study.yaml")
    assert mini.origin("study", "-") == "sweeps/width_vs_depth.yaml: profiles.mini"
    assert mini.overrides["train.lr"] == 7.5e-3 and mini.runs["large"]["train.lr"] == 8.5e-3


def test_mini_trains_each_configuration_at_the_lr_the_committed_study_chose():
    """The quickstart's learning rates are the committed study's scan choices, not hand-set numbers."""
    chosen = json.loads((Path(__file__).parents[3] / "docs" / "examples" / "width_vs_depth_study" / "runs"
                         / "width_vs_depth" / "lr_choice.json").read_text())
    sweep = load_sweep("sweeps/width_vs_depth.yaml")
    runs = {(r.label.rsplit("-s", 1)[0], r.config.train.lr) for r in expand(sweep, profile="mini")}
    assert runs == {(c, v["lr"]) for c, v in chosen.items()}


def test_unknown_profile_name_names_the_sweep_key(tmp_path):
    _profile(tmp_path, "a", {})
    path = write_sweep(tmp_path, profiles={"p": {"extends": "nope"}})
    with pytest.raises(ConfigError) as err:
        load_sweep(path)
    assert str(err.value).startswith(f"{path}: profiles.p.extends: no profile file nope.yaml in ")
    assert "'a'" in str(err.value) and "'paper'" in str(err.value)  # what there is, here and in the checkout


def test_unknown_profile_in_a_profile_file_names_that_file(tmp_path):
    a = _profile(tmp_path, "a", {"extends": "nope"})
    with pytest.raises(ConfigError) as err:
        load_sweep(write_sweep(tmp_path, profiles={"p": {"extends": "a"}}))
    assert str(err.value).startswith(f"{shown(a)}: extends: no profile file nope.yaml")


@pytest.mark.parametrize("doc, expected", [
    ({"overides": {"train.lr": 1}}, "overides: unknown key"),
    ({"runs": {"a": {}}}, "runs: unknown key"),  # named runs belong to a sweep
    ({"seeds": [1, 1]}, "seeds: Value error, seeds must be distinct"),
])
def test_invalid_profile_file_names_the_file_and_key(tmp_path, doc, expected):
    a = _profile(tmp_path, "a", doc)
    with pytest.raises(ConfigError) as err:
        load_sweep(write_sweep(tmp_path, profiles={"p": {"extends": "a"}}))
    assert str(err.value).startswith(f"{shown(a)}: {expected}")


def test_unknown_key_in_profile_overrides_names_the_profile_file(tmp_path):
    a = _profile(tmp_path, "a", {"overrides": {"train.lrr": 1}})
    with pytest.raises(ConfigError) as err:
        load_and_expand(write_sweep(tmp_path, profiles={"p": {"extends": "a"}}), "p")
    assert f"{shown(a)}: overrides.train.lrr: unknown key 'lrr' under train" in str(err.value)


def test_circular_extends_is_refused(tmp_path):
    a = _profile(tmp_path, "a", {"extends": "b"})
    b = _profile(tmp_path, "b", {"extends": "a"})
    with pytest.raises(ConfigError) as err:
        load_sweep(write_sweep(tmp_path, profiles={"p": {"extends": "a"}}))
    assert str(err.value) == (f"{shown(b)}: extends: 'a' closes a circle of profiles "
                              f"({shown(a)} -> {shown(b)} -> {shown(a)})")


@pytest.mark.parametrize("sweep, profile, expected", [
    ("attention_ablation", "paper", ("slurm", None, "gpu_node_8")),
    ("attention_ablation", "mini", ("auto", 2, "cpu_small")),
    ("lr_stability", "paper", ("slurm", None, "gpu_node_8")),
    ("lr_stability", "mini", ("auto", None, "cpu_small")),  # one run at a time with all cores, as before
    ("width_vs_depth", "paper_study", ("slurm", None, "gpu_node_8")),
    ("width_vs_depth", "long", ("auto", 2, "cpu_small")),
    ("width_vs_depth", "study", ("auto", 2, "cpu_small")),
])
def test_executor_settings_of_the_sweeps_are_as_their_profiles_were_written(sweep, profile, expected):
    path = f"sweeps/{sweep}.yaml"
    loaded = load_sweep(path)
    s = executor_settings(loaded, loaded.profiles[profile], path)
    assert (s.kind, s.parallelism, s.slurm_profile, s.slurm) == (*expected, {})


def test_study_designs_of_the_sweeps():
    profiles = load_sweep("sweeps/width_vs_depth.yaml").profiles
    assert profiles["paper"].study is None and profiles["long"].study is None
    assert (profiles["paper_study"].study.budgets, profiles["paper_study"].study.max_steps) == (
        [8.0e20, 2.5e21, 8.0e21], 300000)
    assert (profiles["mini"].study.budgets, profiles["mini"].study.lr, profiles["mini"].study.max_steps) == (
        [5.0e10, 1.6e11], "config", 100_000)
    study = profiles["study"].study
    assert (study.budgets, study.steps, study.lr, study.scan.factors, study.scan.seeds, study.max_steps) == (
        [8.0e10, 2.5e11, 8.0e11], [300], "scan", [0.5, 1.0, 2.0, 4.0, 8.0], [0], 5000)
