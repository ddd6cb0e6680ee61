"""The validation estimator (harness/train/validation.py): quadrature, schedule, noise figure, determinism,
sharding and the geometric baseline, on the bundled starter set's fixed validation examples."""

import math
import statistics

import numpy as np
import pytest
import torch

from harness.data.datamodule import StructureDataModule
from harness.tracking import names
from harness.train.validation import (
    Validator,
    helix_baseline_coords,
    lddt_steps,
    noise_of_mean,
    shard,
    sigma_quadrature,
    validation_schedule,
)
from models.model import SeedFold


def lognormal_moment(m: int, sigma_data=16.0, mu=-1.2, s=1.5) -> float:
    return sigma_data**m * math.exp(m * mu + m * m * s * s / 2)


def test_quadrature_reproduces_the_training_sigma_distribution():
    q = sigma_quadrature(7, 16.0)
    assert q.weights.sum() == pytest.approx(1.0, abs=1e-14)
    assert (q.weights > 0).all() and (np.diff(q.sigmas) > 0).all()
    log_sigma = np.log(q.sigmas / 16.0)
    # ln σ is exactly normal(-1.2, 1.5²): its low moments are polynomials in ξ, which Gauss-Hermite integrates exactly.
    assert (q.weights * log_sigma).sum() == pytest.approx(-1.2, abs=1e-12)
    assert (q.weights * (log_sigma + 1.2) ** 2).sum() == pytest.approx(1.5**2, rel=1e-12)
    assert (q.weights * (log_sigma + 1.2) ** 4).sum() == pytest.approx(3 * 1.5**4, rel=1e-12)
    # The log-normal moments themselves: E[σ] to 1e-5 at 7 nodes; the heavier E[σ²] converges with the nodes.
    assert (q.weights * q.sigmas).sum() == pytest.approx(lognormal_moment(1), rel=1e-4)
    assert (q.weights * q.sigmas**2).sum() == pytest.approx(lognormal_moment(2), rel=0.03)
    q12 = sigma_quadrature(12, 16.0)
    assert (q12.weights * q12.sigmas**2).sum() == pytest.approx(lognormal_moment(2), rel=1e-4)
    # The grid covers the distribution: beyond the 0.1 % and 99.9 % quantiles on both sides.
    assert q.sigmas[0] < 16 * math.exp(-1.2 - 3.09 * 1.5) and q.sigmas[-1] > 16 * math.exp(-1.2 + 3.09 * 1.5)


def test_schedule_is_log_spaced_plus_interval_and_ends():
    assert validation_schedule(400, 100, 8) == [0, 1, 2, 6, 13, 31, 72, 100, 170, 200, 300, 400]
    assert validation_schedule(12, 100, 0) == [0, 12]
    assert validation_schedule(10, None, 3) == [0, 1, 3, 10]
    assert validation_schedule(10, None, 0, at_start=False) == [10]  # a lr scan run: its end only
    assert validation_schedule(400, 100, 8, at_start=False) == [1, 2, 6, 13, 31, 72, 100, 170, 200, 300, 400]
    sched = validation_schedule(400, 100, 8)
    assert lddt_steps(sched, 3) == {0, 6, 72, 200, 400}
    assert lddt_steps(sched, 1) == set(sched)


def test_noise_of_mean_matches_the_known_variance():
    """Draws with known per-node standard deviations: the estimate must average to Σ w² s² / R."""
    gen = torch.Generator().manual_seed(0)
    sd = torch.tensor([0.5, 2.0, 8.0])
    w = torch.tensor([0.2, 0.5, 0.3])
    r = 4
    truth = float((w**2 * sd**2 / r).sum())
    estimates, values = [], []
    for _ in range(4000):
        draws = 10.0 + sd[:, None] * torch.randn(3, r, generator=gen)
        estimates.append(float(noise_of_mean(draws, w)))
        values.append(float((w * draws.mean(-1)).sum()))
    assert statistics.fmean(estimates) == pytest.approx(truth, rel=0.03)
    assert statistics.variance(values) == pytest.approx(truth, rel=0.06)  # and it is the variance of the mean
    assert math.isnan(float(noise_of_mean(torch.ones(3, 1), w)))  # one draw: no noise figure, not 0


@pytest.fixture(scope="module")
def val_examples():
    from harness.data.config import DataConfig

    dm = StructureDataModule(DataConfig(crop_size=32, max_msa_rows=8, val_max_tokens=32, val_max_atoms=512),
                             seed=0, val_seed=0)
    dm.setup("validate")
    return dm


def make_validator(**train):
    from harness.config import ModelSpec, TrainConfig

    torch.manual_seed(0)
    model = SeedFold(ModelSpec(preset="base", miniature=True).architecture()).eval()
    cfg = TrainConfig(max_cycles=1, **{"val_sigma_nodes": 5, "val_copies": 2, "val_samples": 2,
                                       "val_sampling_steps": 10} | train)
    return Validator(model, cfg)


def test_same_weights_and_seeds_give_identical_numbers_on_any_sharding(val_examples):
    torch.set_num_threads(1)
    v = make_validator()
    one = v.sums(shard(val_examples.val_set, 4, 0, 1), "cpu", with_lddt=True, with_baseline=True)
    again = v.sums(shard(val_examples.val_set, 4, 0, 1), "cpu", with_lddt=True, with_baseline=True)
    assert torch.equal(one, again)
    # Two ranks, each its half: the reduced sums are the same numbers (draws are per entry, not per rank).
    halves = sum(v.sums(shard(val_examples.val_set, 4, rank, 2), "cpu", with_lddt=True, with_baseline=True)
                 for rank in range(2))
    assert torch.allclose(one, halves, rtol=1e-12, atol=0)
    # The global RNG does not enter: scrambling it changes nothing.
    torch.manual_seed(1234)
    np.random.seed(99)
    assert torch.equal(one, v.sums(shard(val_examples.val_set, 4, 0, 1), "cpu", with_lddt=True,
                                   with_baseline=True))
    m = v.estimator.metrics(one, with_lddt=True, with_baseline=True)
    assert m[names.VAL_LOSS] == pytest.approx(4.0 * m[names.VAL_LOSS_DIFFUSION] + 0.03 * m[names.VAL_DISTOGRAM_CE])
    per_node = [m[names.VAL_LOSS_DIFFUSION_AT_SIGMA.format(i=i)] for i in range(5)]
    assert m[names.VAL_LOSS_DIFFUSION] == pytest.approx(float(np.dot(v.estimator.quadrature.weights, per_node)))
    assert 0 < m[names.VAL_SMOOTH_LDDT] < 1 and 0 < m[names.VAL_LDDT] < 1
    assert 0 < m[names.BASELINE_LDDT_GEOMETRIC] < 1
    assert v.estimator.tokens(one)[0] == 4
    # Other seeds: other draws, other numbers.
    other = v.sums(shard(val_examples.val_set, 4, 0, 1), "cpu", with_lddt=True, with_baseline=False, salt=1)
    assert not torch.equal(one[:4], other[:4])


def test_reported_noise_agrees_with_brute_force_redraws(val_examples):
    """The noise the estimator reports from its own draws ≈ the std of the metric over 16 independent seeds."""
    torch.set_num_threads(1)
    v = make_validator(val_samples=4)  # 4 examples x (4 samples - 1) = 12 degrees of freedom for the lDDT figure
    examples = list(shard(val_examples.val_set, 4, 0, 1))
    reported = v.estimator.metrics(v.sums(examples, "cpu", with_lddt=True, with_baseline=False),
                                   with_lddt=True, with_baseline=False)
    redraws = [v.estimator.metrics(v.sums(examples, "cpu", with_lddt=True, with_baseline=False, salt=s),
                                   with_lddt=True, with_baseline=False) for s in range(1, 17)]
    for metric, noise in ((names.VAL_LOSS, names.VAL_LOSS_NOISE), (names.VAL_LDDT, names.VAL_LDDT_NOISE),
                          (names.VAL_LOSS_DIFFUSION, names.VAL_LOSS_DIFFUSION_NOISE),
                          (names.VAL_SMOOTH_LDDT, names.VAL_SMOOTH_LDDT_NOISE)):
        brute = statistics.stdev(r[metric] for r in redraws)
        # 16 draws pin a standard deviation to about ±18 % (1σ); the reported figure is one draw's estimate.
        assert 0.5 < reported[noise] / brute < 2.0, (metric, reported[noise], brute)


def test_helix_baseline_has_ideal_helix_geometry(val_examples):
    from harness.data.collate import collate

    batch = collate([val_examples.val_set[0]])
    x = helix_baseline_coords(batch)
    centre = torch.gather(x, 1, batch["atom_to_token"][..., None].expand(-1, -1, 3))
    assert x.shape == batch["gt_coords"].shape
    tok = torch.zeros(batch["token_mask"].shape[1], 3)
    n = torch.zeros(batch["token_mask"].shape[1])
    tok.index_add_(0, batch["atom_to_token"][0], x[0])
    n.index_add_(0, batch["atom_to_token"][0], torch.ones_like(batch["atom_to_token"][0], dtype=torch.float))
    tok = tok / n[:, None]
    same_chain = (batch["asym_id"][0, 1:] == batch["asym_id"][0, :-1]) & (
        batch["residue_index"][0, 1:] - batch["residue_index"][0, :-1] == 1)
    step = (tok[1:] - tok[:-1]).norm(dim=-1)[same_chain]
    # Consecutive residues of the ideal helix: sqrt((2·2.3·sin 50°)² + 1.5²) = 3.83 Å (the Cα–Cα distance ≈ 3.8 Å).
    expected = math.hypot(2 * 2.3 * math.sin(math.radians(50)), 1.5)
    assert step.numel() > 0 and torch.allclose(step, torch.full_like(step, expected), atol=1e-4)
    assert centre.shape == x.shape


def test_a_run_validates_on_its_schedule_and_records_the_estimator(make_config, tmp_path):
    import csv
    import json
    from collections import defaultdict

    from mlflow.tracking import MlflowClient

    from harness.train.run import train_run

    config = make_config(max_steps=6, val_every=None, val_log_points=3, val_lddt_every=2, val_batches=2,
                         val_copies=2, val_sigma_nodes=3, checkpoint_every=3, log_every=3)
    state = train_run(config, tmp_path / "run")
    series = defaultdict(dict)
    with open(tmp_path / "run" / "metrics.csv") as f:
        for row in csv.DictReader(f):
            series[row["key"]][int(row["step"])] = float(row["value"])
    assert sorted(series[names.VAL_LOSS]) == [0, 1, 2, 6]  # 0, log-spaced 1 / 2 / 6, the last
    assert sorted(series[names.VAL_LDDT]) == sorted(series[names.VAL_LDDT_NOISE]) == [0, 2, 6]
    assert sorted(series[names.BASELINE_LDDT_GEOMETRIC]) == [0]
    for key in (names.VAL_LOSS_NOISE, names.VAL_LOSS_DIFFUSION_NOISE, names.VAL_SMOOTH_LDDT_NOISE,
                names.VAL_DISTOGRAM_CE, names.VAL_SMOOTH_LDDT, names.FLOPS_CUMULATIVE,
                names.EXAMPLES_SEEN, names.TOKEN_PAIRS_SEEN, names.VAL_LOSS_DIFFUSION_AT_SIGMA.format(i=2)):
        assert set(series[key]) >= {0, 1, 2, 6}, key
    assert series[names.EXAMPLES_SEEN][0] == 0 and series[names.EXAMPLES_SEEN][6] == 6
    # The train probe (memorisation): the same estimator on fixed training crops, at step 0 and the end only.
    assert sorted(series[names.TRAIN_PROBE_LOSS]) == sorted(series[names.TRAIN_PROBE_LOSS_NOISE]) == [0, 6]
    assert "train_probe/smooth_lddt" in series and "train_probe/lddt" not in series
    assert series[names.TRAIN_PROBE_LOSS][0] != series[names.VAL_LOSS][0]  # other structures, other numbers
    params = MlflowClient(tracking_uri=config.tracking_uri()).get_run(state["mlflow_run_id"]).data.params
    assert params[names.PARAM_VAL_STRUCTURES] == "2" and params[names.PARAM_TRAIN_STRUCTURES] == "50"
    assert int(params[names.PARAM_VAL_TOKENS]) == pytest.approx(2 * 48, abs=48)
    assert len(json.loads(params[names.PARAM_VAL_SIGMAS])) == 3
    assert state["params"][names.PARAM_VAL_STRUCTURES] == "2"
