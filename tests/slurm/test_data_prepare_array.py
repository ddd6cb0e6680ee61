"""Data preparation as a SLURM job array on the real test cluster gives the same cache as a local run."""

from __future__ import annotations

import shutil

import pytest

from harness.data.cache import cache_digest, prepare

pytestmark = [pytest.mark.slurm, pytest.mark.slow, pytest.mark.usefixtures("slurm_cluster")]


def test_job_array_preparation_equals_local(tmp_path):
    from harness.data.starter import starter_dir

    src = tmp_path / "src"
    for name in ("1ubq.cif.gz", "3zee.cif.gz", "4i6p.cif.gz", "1a8q.cif.gz", "2q2k.cif.gz", "3mht.pdb.gz"):
        (src / name[1:3]).mkdir(parents=True, exist_ok=True)
        shutil.copy(starter_dir() / "structures" / name, src / name[1:3] / name)
    msas = starter_dir() / "msas"
    local = prepare(src, tmp_path / "local", msa_dir=msas, shard_size=2, workers=2)
    array = prepare(src, tmp_path / "array", msa_dir=msas, shard_size=2, executor="slurm",
                    slurm={"array_tasks": 3, "cpus_per_task": 1, "mem_gb": 3, "time_min": 20})
    assert array.counts == local.counts and array.counts["shards"] == 3
    logs = list((tmp_path / "array" / "slurm").rglob("*_log.out"))
    assert len(logs) == 3  # three array tasks ran
    assert cache_digest(tmp_path / "array") == cache_digest(tmp_path / "local")
