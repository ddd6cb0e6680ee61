"""MSA depth: a run cannot ask for more MSA rows per example than its prepared cache keeps (one config error),
and the paper profiles sample AF3's depth."""

import shutil

import pytest

from harness.config import RunConfig, parse_config
from harness.data.cache import prepare, prepared_msa_rows
from harness.data.starter import starter_dir
from harness.errors import ConfigError


def test_msa_depth_above_what_the_cache_keeps_is_one_config_error(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    shutil.copy(starter_dir() / "structures" / "2q2k.cif.gz", src)
    cache = tmp_path / "cache"
    prepare(src, cache, msa_dir=starter_dir() / "msas", max_msa_rows=32, cluster_with_mmseqs=False, progress=False)
    assert prepared_msa_rows(cache) == 32 and prepared_msa_rows(src) is None

    def config(rows: int) -> RunConfig:
        return parse_config(RunConfig, {"data": {"datasets": [{"name": "pdb", "path": str(cache)}],
                                                 "max_msa_rows": rows}}, "run.yaml")

    assert config(32).data.max_msa_rows == 32
    with pytest.raises(ConfigError) as err:
        config(33)
    assert err.value.problems == [
        f"data: Value error, data.max_msa_rows=33 exceeds the 32 MSA rows per example that data.datasets.0 "
        f"('pdb', cache {cache}) was prepared with; lower it or prepare the cache with --max-msa-rows 33"]


def test_paper_profiles_sample_af3s_msa_depth():
    from harness.sweep.expand import load_and_expand

    for sweep in ("width_vs_depth", "attention_ablation", "lr_stability"):
        _, specs = load_and_expand(f"sweeps/{sweep}.yaml", "paper")
        assert {(s.config.data.max_msa_rows, s.config.data.max_msa_rows_cached) for s in specs} == {(1024, 16384)}
