"""The model and losses on real features: a 48-token spatial crop of 1AKE (adenylate kinase + Ap5A ligand)
from the data engineer's starter set, through ``harness.data`` (tests may import harness; ``models`` may not)."""

import shutil

import pytest
import torch

from harness.data.cache import prepare
from harness.data.collate import collate
from harness.data.dataset import CachedDataset
from harness.data.starter import starter_dir
from models.features import check_example
from models.losses import bond_loss, compute_losses
from models.model import SeedFold
from tests.models.conftest import tiny_config


@pytest.fixture(scope="module")
def real_batch(tmp_path_factory):
    root = tmp_path_factory.mktemp("real")
    (root / "src").mkdir()
    shutil.copy(starter_dir() / "structures" / "1ake.cif.gz", root / "src")
    report = prepare(root / "src", root / "cache", msa_dir=starter_dir() / "msas")
    assert report.rejects == []
    ds = CachedDataset(root / "cache", crop_size=48, max_atoms=480, max_msa_rows=4, seed=0)
    batch = collate([ds[0]])
    return {k: v for k, v in batch.items() if isinstance(v, torch.Tensor)}


def test_real_crop_satisfies_the_contract(real_batch):
    check_example(real_batch, batched=True)
    assert bool(real_batch["is_ligand"].any())  # the crop reaches the ligand, so bonds are exercised


def test_forward_backward_on_real_features(real_batch):
    torch.manual_seed(0)
    model = SeedFold(tiny_config(max_atoms_per_token=24))
    out = model(real_batch, n_cycles=2, diffusion_batch=2, generator=torch.Generator().manual_seed(0),
                with_confidence=True)  # fmt: skip
    losses = compute_losses(out, real_batch, confidence=True)
    assert all(bool(torch.isfinite(v)) for v in losses.values())
    losses["loss"].backward()
    assert all(p.grad is None or bool(p.grad.isfinite().all()) for p in model.parameters())
    # the truth against itself: aligned MSE and bond loss vanish on real geometry
    x = out["x_gt_aug"]
    assert float(bond_loss(x, x, real_batch)) == 0.0
    same = compute_losses({**out, "x_denoised": x}, real_batch)
    assert float(same["mse"]) < 1e-6


def test_sampler_on_real_features(real_batch):
    model = SeedFold(tiny_config(max_atoms_per_token=24)).eval()
    out = model.sample(real_batch, n_cycles=1, n_samples=1, n_steps=8, generator=torch.Generator().manual_seed(0))
    coords = out["coords"][0, 0][real_batch["atom_mask"][0]]
    assert bool(coords.isfinite().all())
    assert bool(((out["plddt"] >= 0) & (out["plddt"] <= 100)).all())
