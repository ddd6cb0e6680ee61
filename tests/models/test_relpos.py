"""Relative position encoding (AF3 Algorithm 3) by embedding lookups: the values and gradients of the linear map
of the concatenated one-hots, without building them."""

import torch
import torch.nn.functional as F

from models.modules.relpos import RelativePositionEncoding


def _batch() -> dict[str, torch.Tensor]:
    # chain 1: residues 0..5 (residue 3 holds two tokens); chain 2 (same entity, sym 1): residues 0..3;
    # chain 3 (other entity): a 2-token ligand at residue 100
    asym = [1] * 7 + [2] * 4 + [3] * 2
    residue = [0, 1, 2, 3, 3, 4, 5, 0, 1, 2, 3, 100, 100]
    return {"asym_id": torch.tensor([asym]), "residue_index": torch.tensor([residue]),
            "token_index": torch.arange(13)[None], "entity_id": torch.tensor([[1] * 11 + [2] * 2]),
            "sym_id": torch.tensor([[0] * 7 + [1] * 4 + [0] * 2])}


def _one_hot_reference(module: RelativePositionEncoding, batch) -> torch.Tensor:
    """AF3 Algorithm 3 literally: Linear(concat(one-hots))."""
    def pair(name):
        x = batch[name]
        return x[:, :, None] - x[:, None, :]

    r, s = module.r_max, module.s_max
    same_chain = pair("asym_id") == 0
    same_residue = (pair("residue_index") == 0) & same_chain
    d_res = torch.where(same_chain, (pair("residue_index") + r).clamp(0, 2 * r), 2 * r + 1)
    d_tok = torch.where(same_residue, (pair("token_index") + r).clamp(0, 2 * r), 2 * r + 1)
    d_chain = torch.where(~same_chain, (pair("sym_id") + s).clamp(0, 2 * s), 2 * s + 1)
    feats = torch.cat([F.one_hot(d_res, 2 * r + 2), F.one_hot(d_tok, 2 * r + 2), (pair("entity_id") == 0)[..., None],
                       F.one_hot(d_chain, 2 * s + 2)], dim=-1).float()
    return feats @ module.proj.weight.t()


def test_lookup_equals_the_one_hot_linear_map_in_value_and_gradient():
    torch.manual_seed(0)
    module = RelativePositionEncoding(c_z=16, r_max=4, s_max=2)
    batch = _batch()
    got = module(batch)
    want = _one_hot_reference(module, batch)
    torch.testing.assert_close(got, want, rtol=1e-6, atol=1e-6)
    g = torch.randn_like(got)
    (grad_got,) = torch.autograd.grad((got * g).sum(), module.proj.weight)
    (grad_want,) = torch.autograd.grad((_one_hot_reference(module, batch) * g).sum(), module.proj.weight)
    torch.testing.assert_close(grad_got, grad_want, rtol=1e-6, atol=1e-6)


def test_one_pair_is_the_sum_of_its_weight_columns():
    module = RelativePositionEncoding(c_z=8, r_max=4, s_max=2)
    w = module.proj.weight  # columns: residue offset 0..9 | token offset 10..19 | same entity 20 | chain 21..26
    out = module(_batch())
    # token 0 (chain 1, residue 0) to token 8 (chain 2, residue 1): other chain, same entity, sym offset -1
    expected = w[:, 9] + w[:, 19] + w[:, 20] + w[:, 21 + (-1 + 2)]
    torch.testing.assert_close(out[0, 0, 8], expected, rtol=0, atol=1e-7)
    # token 3 to token 4 (same residue 3 of chain 1): residue offset 0, token offset -1
    expected = w[:, 4] + w[:, 10 + 3] + w[:, 20] + w[:, 26]
    torch.testing.assert_close(out[0, 3, 4], expected, rtol=0, atol=1e-7)

