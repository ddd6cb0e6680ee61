"""Gradient accumulation from ``train.global_batch`` in the real training loop, on the bundled starter set.

The model's loss is replaced by one whose gradient is known in closed form (||θ||² x tokens of the example), so
the test can check what the loop does with micro-batches: loss scaling, one clip/guard/optimizer step per window,
the FLOPs and examples it counts, and that the FLOPs equal the dry-run formula at the sizes seen.
"""

import math

import pytest
import yaml

from harness.config import RunConfig
from harness.sizes import ExampleSize, estimate
from harness.tracking import names
from harness.tracking.run_folder import RunFolder
from harness.train.guard import StabilityGuard
from harness.train.module import SeedFoldModule
from harness.train.run import train_run
from tests.harness.train.test_train import read_metrics


class Recorder:
    def __init__(self):
        self.sizes: list[ExampleSize] = []
        self.theta_sq: float | None = None
        self.observed = 0
        self.bad_calls: set[int] = set()


@pytest.fixture
def recorder(monkeypatch):
    rec = Recorder()

    def loss(module, batch, n_cycles, diffusion_batch):
        params = [p for p in module.model.parameters() if p.requires_grad]
        theta_sq = sum((p.float() ** 2).sum() for p in params)
        if rec.theta_sq is None:
            rec.theta_sq = float(theta_sq.detach())
        call = len(rec.sizes)
        rec.sizes.append(ExampleSize(int(batch["token_mask"].sum()), int(batch["atom_mask"].sum()),
                                     int(batch["msa_mask"].any(-1).sum())))
        value = theta_sq * float(batch["token_mask"].sum())
        if call in rec.bad_calls:
            value = value * float("nan")
        return {"loss": value}

    real_observe = StabilityGuard.observe

    def observe(guard, loss_value, grad_norm):
        rec.observed += 1
        return real_observe(guard, loss_value, grad_norm)

    monkeypatch.setattr(SeedFoldModule, "_loss", loss)
    monkeypatch.setattr(StabilityGuard, "observe", observe)
    return rec


def _config(make_config, **train):
    return make_config(devices=1, accelerator="cpu", global_batch=2, max_steps=2, val_every=100, val_batches=1,
                       checkpoint_every=100, log_every=1, grad_clip=1e9, **train)


def test_accumulation_scales_the_loss_and_steps_once_per_window(make_config, tmp_path, recorder):
    config = _config(make_config)
    state = train_run(config, tmp_path / "run")
    assert state["status"] == "finished" and state["step"] == 2
    # 2 optimizer steps x 2 micro-batches; the guard decides once per step.
    assert len(recorder.sizes) == 4 and recorder.observed == 2
    metrics = {k: dict(v) for k, v in read_metrics(RunFolder(tmp_path / "run")).items()}
    t1, t2 = recorder.sizes[0].n_tokens, recorder.sizes[1].n_tokens
    # Step 1's gradient is that of the window's mean loss: 2θ · mean(tokens); its loss the mean of both.
    expected_norm = 2 * math.sqrt(recorder.theta_sq) * (t1 + t2) / 2
    assert metrics[names.GRAD_NORM][1] == pytest.approx(expected_norm, rel=1e-4)
    assert metrics[names.LOSS][1] == pytest.approx(recorder.theta_sq * (t1 + t2) / 2, rel=1e-4)
    assert metrics[names.EXAMPLES_SEEN][1] == 2 and metrics[names.EXAMPLES_SEEN][2] == 4
    # FLOPs per step: the dry-run formula at each micro-batch's real sizes, summed over the window.
    dry = [estimate(config, example=size, memory=False).flops_per_example for size in recorder.sizes]
    assert metrics[names.FLOPS_PER_STEP][1] == pytest.approx(dry[0] + dry[1], rel=1e-12)
    assert metrics[names.FLOPS_PER_STEP][2] == pytest.approx(dry[2] + dry[3], rel=1e-12)
    assert metrics[names.FLOPS_CUMULATIVE][2] == pytest.approx(sum(dry), rel=1e-12)
    # The run folder records what the config derived, and the record reloads.
    saved = yaml.safe_load((tmp_path / "run" / "config.yaml").read_text())
    assert saved["derived"]["accumulation"] == 2 and saved["derived"]["global_batch"] == 2
    assert RunConfig.model_validate(saved).config_hash() == config.config_hash()


def test_a_nonfinite_micro_batch_skips_the_whole_step(make_config, tmp_path, recorder):
    recorder.bad_calls = {1}  # second micro-batch of the first window
    config = _config(make_config)
    state = train_run(config, tmp_path / "run")
    assert state["step"] == 2 and state["guard_events"] == [{"step": 0, "event": "skip", "lr_scale": 1.0}]
    # The skipped window ran 2 micro-batches, then 2 full windows: 6 micro-batches, 3 guard decisions.
    assert len(recorder.sizes) == 6 and recorder.observed == 3
    metrics = {k: dict(v) for k, v in read_metrics(RunFolder(tmp_path / "run")).items()}
    assert metrics[names.EXAMPLES_SEEN][2] == 4  # examples of the skipped step are not counted as seen
    assert all(v == v for v in metrics[names.LOSS].values())


def test_the_world_size_must_give_the_global_batch(make_config, tmp_path, recorder):
    from harness.recipe import accumulation_for

    config = _config(make_config)
    with pytest.raises(ValueError, match="train.global_batch=2 is not a multiple"):
        accumulation_for(config, world_size=3)
    assert accumulation_for(config, world_size=2) == 1


def test_stage_loss_weights_reach_the_loss(make_config):
    from harness.recipe import plan_stages

    config = make_config(max_steps=10, confidence_loss=True,
                         stages=[{"start_step": 0}, {"start_step": 5, "fine_tune": True}])
    first, second = plan_stages(config)
    assert SeedFoldModule(config, stage=first).loss_weights == {
        "diffusion": 4.0, "distogram": 0.03, "confidence": 1e-4, "bond": 0.0, "pae": 0.0}
    assert SeedFoldModule(config, stage=second).loss_weights["bond"] == 1.0
    assert SeedFoldModule(config, stage=second).loss_weights["pae"] == 1.0
