"""Model configuration: every architectural choice of SeedFold as one validated object.

Defaults are AlphaFold3's (SPEC.md §2.3). The paper's configurations are data in ``models.presets``.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from models.policy import MemoryPolicy

TriangleAttentionVariant = Literal["vanilla", "additive", "gated"]
KernelImpl = Literal["auto", "torch", "triton", "cueq"]
BlockOrder = Literal["sequential", "parallel"]


class SamplerConfig(BaseModel):
    """AF3 Algorithm 18's constants: γ₀, γ_min, noise scale λ, step scale η. Used by every sampled structure:
    validation lDDT, the confidence head's mini-rollout and ``harness predict``.

    AF3's η = 1.5 (a step 1.5x the probability-flow step) sharpens samples of a well-trained denoiser; a CPU
    miniature's denoiser pulls towards a mean structure, and there η = 1.5 degrades its own x₀ prediction along
    the trajectory (BENCHMARKS.md, "sampler": final lDDT 0.19 at η 1.5 vs 0.28 at η 1.0)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    gamma_0: float = Field(0.8, ge=0.0, description="churn: noise added per step is γ₀ while σ > gamma_min")
    gamma_min: float = Field(1.0, ge=0.0, description="σ (Å) below which no churn is added")
    noise_scale: float = Field(1.003, gt=0.0, description="λ, scale of the added noise")
    step_scale: float = Field(1.5, gt=0.0, description="η, multiplier of the denoising step (AF3: 1.5)")


class ModelConfig(BaseModel):
    """Widths (c_*), depths (n_*_blocks) and switches of the model.

    Width rule (SPEC.md §2.3): triangle-attention heads = c_z / tri_att_head_dim and triangle-multiplication
    hidden = c_z in every pair stack, unless ``tri_mul_hidden`` is set explicitly.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    # Widths.
    c_s: int = Field(384, ge=8, description="single representation width")
    c_z: int = Field(128, ge=8, description="pair representation width")
    c_m: int = Field(64, ge=8, description="MSA representation width")
    c_atom: int = Field(128, ge=4, description="atom single width")
    c_atompair: int = Field(16, ge=2, description="atom pair width")
    c_token: int = Field(768, ge=8, description="diffusion transformer token width")
    c_s_inputs: int | None = Field(None, description="width of s_inputs; None = c_s + 65 (AF3: 449)")
    tri_att_head_dim: int = Field(32, ge=4, description="triangle attention head dim; heads = c_z / this")
    tri_mul_hidden: int | None = Field(None, ge=4, description="triangle multiplication hidden; None = c_z")
    n_single_heads: int = Field(16, ge=1, description="heads of AttentionPairBias in the Pairformer")
    opm_hidden: int = Field(32, ge=2, description="OuterProductMean hidden width")
    pwa_heads: int = Field(8, ge=1, description="PairWeightedAveraging heads")
    pwa_head_dim: int = Field(8, ge=1, description="PairWeightedAveraging head dim")
    transition_expansion: int = Field(4, ge=1)
    diffusion_transition_expansion: int = Field(
        2, ge=1, description="hidden = this x width in the diffusion/atom transformers' transitions (AF3: 2)"
    )
    c_template: int = Field(64, ge=8, description="template pair stack width")
    n_fourier: int = Field(256, ge=2, description="Fourier noise embedding width")
    max_atoms_per_token: int = Field(24, ge=1, description="per-atom slots of the pLDDT/resolved heads")
    n_plddt_bins: int = Field(50, ge=2)
    n_pae_bins: int = Field(64, ge=2)
    n_pde_bins: int = Field(64, ge=2)

    # Depths.
    n_pairformer_blocks: int = Field(48, ge=1)
    n_msa_blocks: int = Field(4, ge=0)
    n_template_blocks: int = Field(2, ge=0)
    n_diffusion_blocks: int = Field(24, ge=1)
    n_diffusion_heads: int = Field(16, ge=1)
    n_atom_encoder_blocks: int = Field(3, ge=1)
    n_atom_decoder_blocks: int = Field(3, ge=1)
    n_atom_heads: int = Field(4, ge=1)
    n_confidence_blocks: int = Field(4, ge=0)

    # Atom attention windows (sequence-local).
    atom_window_queries: int = Field(32, ge=4)
    atom_window_keys: int = Field(128, ge=4)

    # Switches.
    triangle_attention: TriangleAttentionVariant = "vanilla"
    linear_bias_activation: Literal["relu", "identity", "softplus"] = Field(
        "relu", description="psi applied to the pair bias in the additive linear form (SPEC.md §2.5)"
    )
    kernel_impl: KernelImpl = "auto"
    transformer_block_order: BlockOrder = Field(
        "sequential", description="residual order of the diffusion and atom transformer blocks: sequential "
        "a ← a + Attn(a); a ← a + Trans(a) (AF3's released code); parallel a ← a + Attn(a) + Trans(a) (the "
        "order of runs recorded before this key existed, kept to reproduce them)")
    use_templates: bool = False
    init: Literal["af3", "torch_default"] = Field(
        "af3", description="parameter init: AF3's (LeCun normal, zero gates and final projections) or PyTorch's"
    )
    zero_init_conditioning: bool = Field(
        True, description="AF3's zero init of the conditioning layers (AdaLN scale and shift, the diffusion and "
        "atom blocks' output gates, the trunk -> atom projections; models.init); false: LeCun there, as runs "
        "recorded before this key")
    use_confidence_head: bool = True
    confidence_pair_readout: bool = Field(
        False, description="add each token's masked mean over j of the confidence head's final pair "
        "representation to its single before the pLDDT / resolved projections (not in AF3; see ConfidenceHead)")
    policy: MemoryPolicy = Field(
        default_factory=MemoryPolicy, description="precision and activation memory of every stack (models.policy)"
    )
    sampler: SamplerConfig = Field(default_factory=SamplerConfig, description="AF3 sampler constants")
    chunk_size: int | None = Field(
        None, ge=1, description="rows per chunk of the pair ops at inference (triangle attention and "
        "multiplication, pair transitions, diffusion pair conditioning)")

    # Regularisation and encodings.
    pair_dropout: float = Field(0.25, ge=0.0, lt=1.0)
    msa_dropout: float = Field(0.15, ge=0.0, lt=1.0)
    max_relative_idx: int = Field(32, ge=1)
    max_relative_chain: int = Field(2, ge=0)
    n_distogram_bins: int = Field(64, ge=2)
    sigma_data: float = Field(16.0, gt=0)

    @property
    def tri_att_heads(self) -> int:
        return self.c_z // self.tri_att_head_dim

    @property
    def tri_mul_c(self) -> int:
        return self.tri_mul_hidden if self.tri_mul_hidden is not None else self.c_z

    @property
    def s_inputs_dim(self) -> int:
        return self.c_s_inputs if self.c_s_inputs is not None else self.c_s + 65

    @model_validator(mode="before")
    @classmethod
    def _legacy_policy_keys(cls, raw: Any) -> Any:
        # Checkpoints and run folders written before models.policy carry the two flat switches it replaced.
        if not isinstance(raw, dict) or not ({"trunk_bf16", "gradient_checkpointing"} & set(raw)):
            return raw
        raw = dict(raw)
        policy = dict(raw.get("policy") or {})
        if raw.pop("trunk_bf16", False):
            policy["trunk_precision"] = "bf16"
        if raw.pop("gradient_checkpointing", False):
            policy["checkpoint_blocks"] = True
        raw["policy"] = policy
        return raw

    @model_validator(mode="after")
    def _check_divisibility(self) -> ModelConfig:
        if self.c_z % self.tri_att_head_dim:
            raise ValueError(
                f"c_z={self.c_z} must be a multiple of tri_att_head_dim={self.tri_att_head_dim} (width rule)"
            )
        if self.c_s % self.n_single_heads:
            raise ValueError(f"c_s={self.c_s} must be a multiple of n_single_heads={self.n_single_heads}")
        if self.c_token % self.n_diffusion_heads:
            raise ValueError(
                f"c_token={self.c_token} must be a multiple of n_diffusion_heads={self.n_diffusion_heads}"
            )
        if self.c_atom % self.n_atom_heads:
            raise ValueError(f"c_atom={self.c_atom} must be a multiple of n_atom_heads={self.n_atom_heads}")
        if self.atom_window_keys < self.atom_window_queries:
            raise ValueError("atom_window_keys must be >= atom_window_queries")
        if self.confidence_pair_readout and not self.use_confidence_head:
            raise ValueError("confidence_pair_readout needs use_confidence_head: true (it is part of the head)")
        return self
