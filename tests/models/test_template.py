"""Template embedder features (AF3 Algorithm 16): the pseudo-β distogram's bins."""

import torch

from models.modules.template import N_TEMPLATE_DIST_BINS, TemplateEmbedder
from tests.models.conftest import tiny_config


def test_template_distogram_bins_are_af3s_1_25_angstrom_steps():
    embedder = TemplateEmbedder(tiny_config(use_templates=True))
    # three templates of two tokens at distances 4.0, 5.0 and 60 Å: bins 0, 1 and the last (38)
    pb = torch.zeros(1, 3, 2, 3)
    pb[0, :, 1, 0] = torch.tensor([4.0, 5.0, 60.0])
    seen = {}

    def keep_input(module, args, out) -> None:  # returns None: the output stays as it is
        seen["feats"] = args[0]

    embedder.proj_feat.register_forward_hook(keep_input)
    batch = {"template_pseudo_beta": pb, "template_pseudo_beta_mask": torch.ones(1, 3, 2, dtype=torch.bool),
             "template_restype": torch.zeros(1, 3, 2, dtype=torch.long),
             "token_mask": torch.ones(1, 2, dtype=torch.bool)}
    embedder(batch, torch.zeros(1, 2, 2, embedder.norm_z.normalized_shape[0]))
    bins = seen["feats"][0, :, 0, 1, :N_TEMPLATE_DIST_BINS].argmax(-1)
    assert N_TEMPLATE_DIST_BINS == 39 and bins.tolist() == [0, 1, 38]
