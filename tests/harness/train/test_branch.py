"""Branches (harness/train/branch.py): a WSD run started from a longer run's stable-phase checkpoint is the run
its config trains from scratch, step for step; and a resumed run continues its data stream instead of replaying it."""

import csv
from collections import defaultdict

import pytest

from harness.config import RunConfig
from harness.train.branch import BranchError, parent_checkpoint
from harness.train.run import train_run

WSD = {"kind": "wsd", "decay_fraction": 0.25, "decay_shape": "1-sqrt"}


def series(run_dir) -> dict[str, dict[int, float]]:
    out = defaultdict(dict)
    with open(run_dir / "metrics.csv") as f:
        for row in csv.DictReader(f):
            out[row["key"]][int(row["step"])] = float(row["value"])
    return out


def with_changes(config: RunConfig, **changes) -> RunConfig:
    raw = config.model_dump(mode="json")
    for dotted, value in changes.items():
        *parents, leaf = dotted.split(".")
        node = raw
        for key in parents:
            node = node.setdefault(key, {})
        node[leaf] = value
    return RunConfig.model_validate(raw)


@pytest.fixture
def trunk(make_config, tmp_path):
    """A 12-step WSD run that keeps its step-6 checkpoint (the 8-step run's cooldown starts at 6)."""
    config = make_config(max_steps=12, warmup_steps=2, val_every=None, checkpoint_every=100, log_every=1,
                         schedule=WSD, milestone_steps=[6])
    train_run(config, tmp_path / "trunk")
    return config, tmp_path / "trunk"


def test_branch_equals_the_run_trained_from_scratch(trunk, tmp_path):
    config, trunk_dir = trunk
    short = with_changes(config, **{"train.max_steps": 8, "train.milestone_steps": []})
    scratch_state = train_run(short, tmp_path / "scratch")
    branch = with_changes(short, init_from={"run_dir": str(trunk_dir), "step": 6})
    assert branch.config_hash() == short.config_hash()  # the same run, whichever way it is trained
    state = train_run(branch, tmp_path / "branch")
    assert state["status"] == "finished" and state["step"] == 8
    assert state["branched_from"] == {"run": str(trunk_dir), "step": 6}
    scratch, branched = series(tmp_path / "scratch"), series(tmp_path / "branch")
    # Steps 1..6 are the trunk's rows, 7..8 trained by the branch: every loss and rate equal to the bit, and the
    # final validation too (same weights, same EMA, same data draws after the branch point).
    for key in ("train/loss", "train/lr", "val/loss", "val/distogram_ce", "data/examples_seen", "flops/cumulative"):
        assert branched[key] == scratch[key], key
    assert sorted(branched["train/loss"]) == list(range(1, 9))
    assert scratch_state["step"] == 8


def test_a_branch_of_another_trajectory_or_a_missing_checkpoint_is_refused(trunk, tmp_path):
    config, trunk_dir = trunk
    other_lr = with_changes(config, **{"train.max_steps": 8, "train.lr": 5e-4, "train.milestone_steps": [],
                                       "init_from": {"run_dir": str(trunk_dir), "step": 6}})
    with pytest.raises(BranchError, match=r"trains another trajectory \(differs in train.lr\)"):
        parent_checkpoint(other_lr)
    not_kept = with_changes(config, **{"train.max_steps": 10, "train.milestone_steps": [],
                                       "init_from": {"run_dir": str(trunk_dir), "step": 5}})
    with pytest.raises(BranchError, match=r"step-00000005.ckpt does not exist.*milestone_steps must list 5"):
        parent_checkpoint(not_kept)
    with pytest.raises(ValueError, match="a branch starts in the stable phase"):
        with_changes(config, **{"train.max_steps": 8, "init_from": {"run_dir": str(trunk_dir), "step": 7}})
    with pytest.raises(ValueError, match="a branch needs train.schedule.kind: wsd"):
        with_changes(config, **{"train.schedule": {"kind": "af3"},
                                "init_from": {"run_dir": str(trunk_dir), "step": 6}})


def test_resume_continues_the_data_stream(make_config, tmp_path):
    """Killed after its step-5 checkpoint and resumed, a run trains on the draws it would have drawn: its losses
    equal those of the uninterrupted run (before, a resume restarted the epoch's stream and replayed draws)."""
    config = make_config(max_steps=8, val_every=None, checkpoint_every=5, log_every=1)
    train_run(config, tmp_path / "whole")
    first = with_changes(config, **{"train.max_steps": 5})
    train_run(first, tmp_path / "resumed")
    # The same folder, now asked for 8 steps: it resumes from last.ckpt at step 5.
    (tmp_path / "resumed" / "config.yaml").unlink()
    train_run(config, tmp_path / "resumed")
    assert series(tmp_path / "resumed")["train/loss"] == series(tmp_path / "whole")["train/loss"]
