"""The real test SLURM cluster (slurm/testing/up.sh), as a pytest fixture shared by the SLURM test folders.

Use it when ``sinfo`` answers; FAIL when ``SEEDFOLD_REQUIRE_SLURM=1`` (CI, after up.sh) and it does not; else
skip with the reason.
"""

from __future__ import annotations

import os

import pytest

from harness.dispatch.cluster import slurm_available


@pytest.fixture(scope="session")
def slurm_cluster() -> None:
    if slurm_available():
        return
    reason = "no SLURM cluster answers `sinfo` (start one with slurm/testing/up.sh)"
    if os.environ.get("SEEDFOLD_REQUIRE_SLURM") == "1":
        pytest.fail(f"SEEDFOLD_REQUIRE_SLURM=1 but {reason}", pytrace=False)
    pytest.skip(reason)


@pytest.fixture()
def submitit_folder(tmp_path):
    """A fresh submitit folder per test: job ids restart at 1 when SLURM state is wiped, and a reused folder
    would return an old job's result at once."""
    folder = tmp_path / "submitit"
    folder.mkdir()
    return folder
