"""Contact precision from a distogram (analysis/metrics/contacts.py) against values computed by hand."""

import math

import pytest
import torch

from analysis.metrics.contacts import contact_candidates, contact_probability, top_l_precision


def test_contact_probability_counts_bins_below_8_and_part_of_the_straddling_one():
    edges = torch.tensor([4.0, 6.0, 9.0, 12.0])  # bins: <4, [4,6), [6,9), [9,12), >=12
    probs = torch.tensor([0.1, 0.2, 0.3, 0.25, 0.15])
    logits = probs.log()
    # All of bins 0 and 1, two thirds of [6, 9) (8 − 6 of its 3 Å), none above.
    assert float(contact_probability(logits, edges)) == pytest.approx(0.1 + 0.2 + 0.3 * 2 / 3)
    batch = torch.stack([logits, logits])[:, None, None]  # (2, 1, 1, 5): shapes pass through
    assert contact_probability(batch, edges).shape == (2, 1, 1)


def test_candidates_are_same_chain_pairs_far_enough_apart():
    residue_index = torch.tensor([0, 10, 30, 0, 40])
    asym = torch.tensor([0, 0, 0, 1, 1])
    usable = torch.tensor([True, True, True, True, False])
    c = contact_candidates(residue_index, asym, usable, min_separation=24)
    assert c.nonzero().tolist() == [[0, 2]]  # (1, 2) is 20 apart; chain 1's far pair has an unusable residue
    assert contact_candidates(residue_index, asym, usable, 12).nonzero().tolist() == [[0, 2], [1, 2]]


def test_top_l_over_5_precision_and_its_edge_cases():
    n = 10
    p = torch.zeros(n, n)
    d = torch.full((n, n), 20.0)
    candidates = torch.zeros(n, n, dtype=torch.bool)
    for (i, j), prob, dist in (((0, 5), 0.9, 5.0), ((1, 6), 0.8, 12.0), ((2, 7), 0.1, 6.0)):
        p[i, j], d[i, j], candidates[i, j] = prob, dist, True
    # L = 10 → top 2: (0, 5) a contact, (1, 6) not.
    assert top_l_precision(p, d, candidates, n_residues=10) == pytest.approx(0.5)
    # L = 4 → top 1 (at least one pair is scored).
    assert top_l_precision(p, d, candidates, n_residues=4) == pytest.approx(1.0)
    # Fewer candidates than the quota: all are scored.
    assert top_l_precision(p, d, candidates, n_residues=50) == pytest.approx(2 / 3)
    assert math.isnan(top_l_precision(p, d, torch.zeros_like(candidates), n_residues=10))
