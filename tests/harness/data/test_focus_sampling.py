"""AF3 sampling draws chains and interfaces (SI §2.5.1), and the crop is centred on the drawn one (§2.7)."""

import numpy as np
import pytest

from harness.data.crop import crop, focus_tokens
from harness.data.dataset import CachedDataset, MixtureDataset
from harness.data.mixing import MixtureSampler


@pytest.fixture(scope="module")
def units_set(starter_cache):
    return CachedDataset(starter_cache, split="train", crop_size=32, max_atoms=384, max_msa_rows=4, units=True)


def test_units_carry_the_index_weights(units_set):
    t = units_set.unit_table
    assert units_set.n_draws == len(t["weight"]) > len(units_set)
    assert (t["weight"] > 0).all()
    # An entry's AF3 weight is the sum of its chains' and interfaces' weights: the unit draws refine it.
    per_entry = np.bincount(t["example"], weights=t["weight"], minlength=len(units_set))
    np.testing.assert_allclose(per_entry, units_set.sample_weights, rtol=1e-9)
    assert (t["asym_b"] >= 0).sum() > 0  # interfaces are units too


def _multichain(units_set, min_chains=4):
    t = units_set.unit_table
    for i in range(len(units_set)):
        chains = np.unique(t["asym_a"][(t["example"] == i) & (t["asym_b"] < 0)])
        arrays = units_set.index.load(int(units_set.rows[i]))
        if len(chains) >= min_chains and len(arrays["asym_id"]) > 4 * units_set.crop_size:
            return i, arrays, chains
    pytest.skip("no large multi-chain entry in the starter train split")


def test_chain_focus_puts_the_chain_in_every_crop(units_set):
    _, arrays, chains = _multichain(units_set)
    target = int(chains[-1])
    spatial = {"spatial": 1.0}
    focused = [crop(arrays, 32, 384, spatial, np.random.default_rng(s), focus=(target,)) for s in range(40)]
    assert all((arrays["asym_id"][k] == target).any() for k in focused)
    unfocused = [crop(arrays, 32, 384, spatial, np.random.default_rng(s)) for s in range(40)]
    share = np.mean([(arrays["asym_id"][k] == target).any() for k in unfocused])
    assert share < 0.9  # without the focus the chain is often left out: the focus is what puts it in


def test_interface_focus_brings_both_chains_into_the_crop(units_set):
    """The reference token is an interface token of the drawn pair, so the crop holds both chains far more often
    than an unfocused interface crop (not always: at 32 tokens one chain's side can fill the crop)."""
    t = units_set.unit_table
    focused, unfocused = [], []
    for u in np.flatnonzero(t["asym_b"] >= 0):
        arrays = units_set.index.load(int(units_set.rows[t["example"][u]]))
        if len(arrays["asym_id"]) <= 4 * units_set.crop_size:
            continue
        pair = (int(t["asym_a"][u]), int(t["asym_b"][u]))
        contact = focus_tokens(arrays, pair)
        assert set(np.unique(arrays["asym_id"][contact])) == set(pair)
        for s in range(10):
            for with_focus, out in ((pair, focused), (None, unfocused)):
                kept = crop(arrays, 32, 384, {"spatial_interface": 1.0}, np.random.default_rng(s), focus=with_focus)
                out.append(set(pair) <= set(arrays["asym_id"][kept].tolist()))
        if len(focused) >= 200:
            break
    assert len(focused) >= 50, "too few interfaces in entries larger than the crop"
    assert np.mean(focused) > 0.6 and np.mean(focused) > np.mean(unfocused) + 0.3


def test_sampler_draws_units_and_the_dataset_crops_their_entry(units_set):
    sampler = MixtureSampler([units_set.n_draws], [1.0], [None], samples_per_epoch=50, seed=3,
                             example_weights=[units_set.draw_weights], rank=0, world_size=1)
    mixture = MixtureDataset({"pdb": units_set})
    t = units_set.unit_table
    for d, u, seed in list(sampler)[:6]:
        example = mixture[(d, u, seed)]
        entry = units_set.entry_ids[t["example"][u]]
        assert example["entry_id"] == entry and example["dataset"] == "pdb"
        assert int(example["token_mask"].sum()) <= 32
