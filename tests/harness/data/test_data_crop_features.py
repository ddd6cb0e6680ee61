"""Croppers and featurisation on cached real entries; batches satisfy models.features.check_example."""

from __future__ import annotations

import numpy as np
import pytest

from harness.data.cache import load_example
from harness.data.collate import collate
from harness.data.crop import contiguous_crop, interface_tokens, spatial_crop, spatial_interface_crop
from harness.data.featurize import featurize
from models.features import check_example


@pytest.fixture(scope="module")
def arrays_7cth(starter_cache):
    return load_example(starter_cache, "7cth_hl")


def test_spatial_crop_keeps_only_tokens_near_the_centre(arrays_7cth):
    a = arrays_7cth
    rng = np.random.default_rng(0)
    kept = spatial_crop(a, 96, 10_000, rng)
    assert len(kept) == 96
    centre = a["gt_coords"][a["center_atom"]]
    resolved = a["gt_atom_mask"][a["center_atom"]]
    # Re-derive the reference token: the kept token whose farthest kept neighbour is nearest.
    d = np.linalg.norm(centre[kept][:, None] - centre[None], axis=-1)
    dropped = np.setdiff1d(np.flatnonzero(resolved), kept)
    ok = [i for i in range(len(kept)) if d[i, kept].max() <= d[i, dropped].min() + 1e-3]
    assert ok, "no kept token is a centre whose 96 nearest tokens are exactly the crop"


def test_atom_budget_is_respected(arrays_7cth):
    rng = np.random.default_rng(1)
    for cropper in (spatial_crop, contiguous_crop, spatial_interface_crop):
        kept = cropper(arrays_7cth, 200, 500, rng)
        assert arrays_7cth["atom_count"][kept].sum() <= 500
        assert 0 < len(kept) <= 200


def test_contiguous_crop_is_one_segment_per_chain(arrays_7cth):
    kept = contiguous_crop(arrays_7cth, 128, 100_000, np.random.default_rng(2))
    assert len(kept) == 128
    for asym in np.unique(arrays_7cth["asym_id"][kept]):
        idx = kept[arrays_7cth["asym_id"][kept] == asym]
        assert (np.diff(idx) == 1).all()


def test_interface_crop_centres_on_an_interface(arrays_7cth):
    iface = interface_tokens(arrays_7cth)
    asym = arrays_7cth["asym_id"]
    assert len(np.unique(asym[iface])) >= 2  # antibody and antigen both contribute
    kept = spatial_interface_crop(arrays_7cth, 64, 100_000, np.random.default_rng(3))
    assert len(np.unique(asym[kept])) >= 2


def test_features_after_crop_index_the_examples_own_atoms(arrays_7cth):
    kept = spatial_crop(arrays_7cth, 80, 10_000, np.random.default_rng(4))
    ex = featurize(arrays_7cth, kept, 8, np.random.default_rng(4))
    check_example(ex)
    n_atoms = ex["atom_mask"].shape[0]
    assert ex["token_center_atom"].max() < n_atoms
    assert (ex["atom_to_token"][ex["token_center_atom"]] == ex["token_index"]).all()
    assert (ex["atom_to_token"][ex["token_disto_atom"]] == ex["token_index"]).all()
    chars = ex["ref_atom_name_chars"][ex["token_center_atom"]][ex["is_protein"]]
    assert (chars[:, :2] == chars.new_tensor([ord("C") - 32, ord("A") - 32])).all()


def test_msa_features_of_2q2k(starter_cache):
    a = load_example(starter_cache, "2q2k")
    ex = featurize(a, np.arange(len(a["restype"])), 8, np.random.default_rng(0))
    check_example(ex)
    assert ex["msa"].shape[0] == 8
    assert (ex["msa"][0] == ex["restype"]).all()
    dna = ex["is_dna"] | (ex["asym_id"] == 1)
    assert not ex["msa_mask"][1:, dna].any()  # DNA has no MSA: query only
    np.testing.assert_allclose(ex["profile"].sum(-1).numpy(), 1.0, rtol=1e-5)
    assert float(ex["deletion_value"].max()) < 1.0


def test_collate_pads_and_keeps_masks(starter_cache):
    exs = [featurize(load_example(starter_cache, e), np.arange(20 + 10 * i), 4, np.random.default_rng(i))
           for i, e in enumerate(["1ubq", "3zee"])]
    batch = collate(exs)
    check_example(batch, batched=True)
    assert batch["token_mask"].sum(1).tolist() == [20, 30]
    assert batch["atom_mask"].sum(1).tolist() == [len(exs[0]["atom_mask"]), len(exs[1]["atom_mask"])]
