"""``DataConfig``: the ``data:`` section of a run config. Defaults suit CPU miniature runs on the starter set.

Paper values (SPEC.md §2.8): crop 384 tokens (stage 1) / 640 (stage 2), AF3's atom budget 4608 at 384
tokens, batch 256 across GPUs; mixture pdb 0.50 / afdb_distill 0.08 / mgnify_distill 0.42. MSA: AF3 keeps up to
16,384 rows per example (SI §2.3: the query, species-paired rows, then each chain's own) and its MSA module sees
a random subset of 1,024 of them (``num_msa`` of its released code); the paper profiles set
``max_msa_rows_cached: 16384`` and ``max_msa_rows: 1024``. Here the subset is drawn once per example (AF3 draws
one per recycling iteration; only the last iteration carries gradients).

The atom budget follows the crop: ``max_atoms`` unset means ``crop_size × atoms_per_token`` (AF3: 12 per token,
4608 atoms at 384 tokens), re-derived for every stage's crop. A budget that would stop a crop before its token
limit is an error, not a silent ~4x smaller crop.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from harness.data.crop import CROPPERS
from harness.data.filters import FilterConfig

AF3_ATOMS_PER_TOKEN = 12.0  # AF3's crop: 4608 atoms at 384 tokens
# Below this many atoms per token the atom budget, not the token count, ends real crops: heavy atoms per token
# in the bundled starter set are 7.8 on average and 10.1 in the densest entry (nucleic acids, ligands).
MIN_ATOMS_PER_TOKEN = 10.5


def atom_budget_problem(key: str, max_atoms: int, crop_size: int, crop_key: str) -> str | None:
    """Why ``max_atoms`` would bind before ``crop_size`` tokens (None when it does not)."""
    if max_atoms >= crop_size * MIN_ATOMS_PER_TOKEN:
        return None
    return (f"{key}={max_atoms} binds before {crop_key}={crop_size}: a crop would keep ~{max_atoms / 7.8:.0f} "
            f"protein tokens (7.8 heavy atoms per token); need >= {crop_size * MIN_ATOMS_PER_TOKEN:.0f} "
            f"({MIN_ATOMS_PER_TOKEN} per token) or leave {key} unset to derive crop_size x atoms_per_token")


class DatasetSpec(BaseModel):
    """One named dataset of the training mixture."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1)
    path: Path | None = Field(
        None, description="cache dir or folder of structures; None = bundled starter set"
    )
    weight: float = Field(1.0, gt=0, description="relative sampling weight")
    sampling: Literal["uniform", "cluster", "af3"] = Field(
        "af3",
        description="uniform over entries; uniform over clusters; or AF3 chain+interface cluster weights",
    )
    msa_dir: Path | None = Field(None, description="MSAs for a structure folder (ignored for caches)")
    predicted: bool = Field(False, description="distillation set: pLDDT in the B-factor column")
    plddt_min: float | None = Field(None, ge=0, le=100, description="mask residues below this pLDDT")
    validate_on: bool = Field(True, description="its 'val' split joins the validation set")
    filters: FilterConfig = Field(
        default_factory=FilterConfig, description="AF3 training filters applied when preparing this source"
    )


class DataConfig(BaseModel):
    """Everything the data module needs; ``datasets=[]`` means the bundled starter set."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    datasets: list[DatasetSpec] = Field(default_factory=list)
    crop_size: int = Field(64, ge=4, description="tokens per training crop (paper: 384, then 640)")
    max_atoms: int | None = Field(
        None, ge=16, description="atom budget per crop; None = crop_size x atoms_per_token (AF3: 4608 at 384)"
    )
    atoms_per_token: float = Field(
        AF3_ATOMS_PER_TOKEN, description="atom allowance per crop token when max_atoms is unset (AF3: 12)"
    )
    cropper: dict[str, float] = Field(
        default_factory=lambda: {"contiguous": 0.2, "spatial": 0.4, "spatial_interface": 0.4},
        description="cropper -> weight (AF3 SI §2.7)",
    )
    max_msa_rows: int = Field(16, ge=1, description="MSA rows per example (query + rows sampled without "
                              "replacement; AF3's MSA module: 1024)")
    max_msa_rows_cached: int = Field(1024, ge=1, description="MSA rows kept per example in the cache (AF3: 16384)")
    batch_size: int = Field(1, ge=1)
    num_workers: int = Field(0, ge=0)
    samples_per_epoch: int = Field(1000, ge=1, description="training draws per rank per epoch")
    val_max_tokens: int = Field(
        256, ge=4, description="validation examples larger than this are spatially cropped"
    )
    val_max_atoms: int = Field(4096, ge=16)
    val_fraction: float = Field(0.1, ge=0, lt=1, description="val share for sets without a fixed split")
    drop_crystallization_aids: bool = True
    cache_dir: Path | None = Field(
        None, description="where caches are prepared; None = ~/.cache/seedfold-harness"
    )

    @field_validator("cropper")
    @classmethod
    def _known_croppers(cls, value: dict[str, float]) -> dict[str, float]:
        unknown = set(value) - set(CROPPERS)
        if unknown:
            raise ValueError(f"unknown cropper(s) {sorted(unknown)}; expected some of {sorted(CROPPERS)}")
        if any(w < 0 for w in value.values()) or sum(value.values()) <= 0:
            raise ValueError("cropper weights must be >= 0 with a positive sum")
        return value

    @model_validator(mode="after")
    def _unique_names(self) -> DataConfig:
        names = [d.name for d in self.datasets]
        if len(set(names)) != len(names):
            raise ValueError(f"dataset names must be unique, got {names}")
        if self.atoms_per_token < MIN_ATOMS_PER_TOKEN:
            raise ValueError(f"data.atoms_per_token={self.atoms_per_token} binds before the token limit; "
                             f"expected >= {MIN_ATOMS_PER_TOKEN} (AF3: {AF3_ATOMS_PER_TOKEN})")
        if self.max_atoms is not None and (p := atom_budget_problem("data.max_atoms", self.max_atoms,
                                                                     self.crop_size, "data.crop_size")):
            raise ValueError(p)
        if self.max_msa_rows > self.max_msa_rows_cached:
            raise ValueError(f"data.max_msa_rows={self.max_msa_rows} exceeds data.max_msa_rows_cached="
                             f"{self.max_msa_rows_cached}: the cache keeps fewer rows than a crop would sample")
        for i, spec in enumerate(self.datasets):
            if spec.path is None:
                continue
            from harness.data.cache import prepared_msa_rows

            kept = prepared_msa_rows(spec.path)
            if kept is not None and self.max_msa_rows > kept:
                raise ValueError(f"data.max_msa_rows={self.max_msa_rows} exceeds the {kept} MSA rows per example "
                                 f"that data.datasets.{i} ({spec.name!r}, cache {spec.path}) was prepared with; "
                                 f"lower it or prepare the cache with --max-msa-rows {self.max_msa_rows}")
        return self

    def atom_budget_for(self, crop_size: int) -> int:
        """Atoms per crop of ``crop_size`` tokens: ``max_atoms`` when set, else crop_size x atoms_per_token."""
        return self.max_atoms if self.max_atoms is not None else int(round(crop_size * self.atoms_per_token))

    @property
    def atom_budget(self) -> int:
        """The atom budget in effect for ``crop_size``."""
        return self.atom_budget_for(self.crop_size)

    def resolved_datasets(self) -> list[DatasetSpec]:
        return self.datasets or [DatasetSpec(name="pdb")]
