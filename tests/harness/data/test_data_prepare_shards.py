"""Sharded, resumable preparation on real starter files: mirror layouts, resume after a kill, concurrent
starters on one folder, unexpected exceptions recorded, manifest contents, stats on the sharded format."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest

from harness.data.cache import PLAN, CacheIndex, cache_digest, load_index, prepare
from harness.data.errors import DataPathError
from harness.data.stats import cache_stats

FILES = ("1ubq.cif.gz", "3zee.cif.gz", "4i6p.cif.gz", "1a8q.cif.gz", "5pti.cif.gz", "3mht.pdb.gz")


@pytest.fixture
def mirror(tmp_path, structures):
    """Six starter files in the PDB mirror's divided layout (``ub/1ubq.cif.gz``; PDB format as pdb3mht.ent.gz)."""
    src = tmp_path / "mirror"
    for name in FILES:
        entry, suffix = name.split(".", 1)
        if suffix == "pdb.gz":
            target = src / entry[1:3] / f"pdb{entry}.ent.gz"
        else:
            target = src / entry[1:3] / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(structures / name, target)
    return src


def test_mirror_layout_gives_the_flat_layouts_examples(mirror, tmp_path, structures):
    flat = tmp_path / "flat"
    flat.mkdir()
    for name in FILES:
        shutil.copy(structures / name, flat)
    a = prepare(mirror, tmp_path / "a", shard_size=4)
    b = prepare(flat, tmp_path / "b", shard_size=4)
    ids = sorted(e["entry_id"] for e in a.kept)
    assert ids == sorted(e["entry_id"] for e in b.kept) == sorted(n.split(".")[0] for n in FILES)
    manifest = load_index(tmp_path / "a")
    assert manifest["source"]["layout"] == "divided" and load_index(tmp_path / "b")["source"]["layout"] == "flat"
    assert a.counts["shards"] == 2 and a.counts["entries"] == 6
    ia, ib = CacheIndex(tmp_path / "a"), CacheIndex(tmp_path / "b")
    for eid in ids:
        ra = int((ia.columns["entry_id"] == eid).nonzero()[0][0])
        rb = int((ib.columns["entry_id"] == eid).nonzero()[0][0])
        xa, xb = ia.load(ra), ib.load(rb)
        assert xa.keys() == xb.keys()
        assert all((xa[k] == xb[k]).all() or k == "token_plddt" for k in xa)


def test_manifest_records_sources_settings_tools_and_counts(mirror, tmp_path):
    prepare(mirror, tmp_path / "c", source_name="pdb", shard_size=4)
    m = json.loads((tmp_path / "c" / "manifest.json").read_text())
    assert m["source"]["name"] == "pdb" and m["source"]["files"] == 6
    assert m["settings"]["filters"]["resolution_max"] is None
    assert {"gemmi", "biotite", "numpy", "pyarrow", "mmseqs"} <= set(m["tools"])
    assert m["counts"]["entries"] == 6 and m["counts"]["chains"] >= 6
    assert m["clustering"]["ligand"] == "CCD code"
    stats = cache_stats(tmp_path / "c")
    assert stats["entries"] == 6 and stats["shards"] == 2 and stats["chain_clusters"] == m["counts"]["chain_clusters"]


def test_rerun_skips_finished_shards_and_redoes_an_interrupted_one(mirror, tmp_path):
    cache = tmp_path / "r"
    prepare(mirror, cache, shard_size=2)
    reference = cache_digest(cache)
    shards = cache / "shards"
    untouched = (shards / "00000.npz").stat().st_mtime_ns
    # What a kill in shard 2 and before the merge leaves: no shard record, a temporary file, no index.
    (shards / "00002.json").unlink()
    (shards / ".00002.npz.tmp-host-1").write_bytes(b"half a zip")
    for name in ("manifest.json", "entries.arrow", "rejects.json"):
        (cache / name).unlink()
    prepare(mirror, cache, shard_size=2)
    assert cache_digest(cache) == reference
    assert (shards / "00000.npz").stat().st_mtime_ns == untouched
    assert not list(shards.glob(".*tmp-*"))


def test_a_different_plan_is_refused_unless_overwrite(mirror, tmp_path):
    cache = tmp_path / "p"
    prepare(mirror, cache, shard_size=3)
    with pytest.raises(DataPathError, match="planned from other inputs"):
        prepare(mirror, cache, shard_size=3, val_fraction=0.5)
    report = prepare(mirror, cache, shard_size=3, val_fraction=0.5, overwrite=True)
    assert json.loads((cache / PLAN).read_text())["val_fraction"] == 0.5 and report.counts["entries"] == 6


def test_unexpected_exception_in_one_file_is_a_reject(mirror, tmp_path, monkeypatch):
    import harness.data.example as example_module

    real = example_module.tokenize

    def flaky(structure):  # a bug that only one input triggers
        if structure.entry_id == "3zee":
            raise ZeroDivisionError("division by zero")
        return real(structure)

    monkeypatch.setattr(example_module, "tokenize", flaky)
    report = prepare(mirror, tmp_path / "e", shard_size=4)
    assert sorted(e["entry_id"] for e in report.kept) == ["1a8q", "1ubq", "3mht", "4i6p", "5pti"]
    (reject,) = report.rejects
    assert reject["kind"] == "error" and "ZeroDivisionError" in reject["reason"]
    assert reject["path"].endswith("3zee.cif.gz") and report.counts["rejects"] == {"error": 1}


_PREPARE = (
    "import sys; from harness.data.cache import prepare; "
    "prepare(sys.argv[1], sys.argv[2], shard_size=1, workers=int(sys.argv[3]), progress=False)"
)


def _start(src, cache, workers=1):
    env = os.environ | {"PYTHONPATH": os.getcwd()}
    return subprocess.Popen([sys.executable, "-c", _PREPARE, str(src), str(cache), str(workers)], env=env,
                            start_new_session=True, stderr=subprocess.PIPE, text=True)


@pytest.mark.slow
def test_sigkill_then_rerun_equals_an_uninterrupted_run(mirror, tmp_path):
    reference = tmp_path / "ref"
    prepare(mirror, reference, shard_size=1)
    cache = tmp_path / "killed"
    proc = _start(mirror, cache)
    deadline = time.time() + 120
    while len(list((cache / "shards").glob("*.json"))) < 2 and time.time() < deadline:
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not (cache / "manifest.json").exists()
    prepare(mirror, cache, shard_size=1)
    assert cache_digest(cache) == cache_digest(reference)


@pytest.mark.slow
def test_two_processes_preparing_one_shared_folder_agree(mirror, tmp_path):
    """Two 'nodes' start the same preparation at once on one folder: both finish, nothing is deleted,
    and the cache equals a single run's."""
    cache = tmp_path / "shared"
    procs = [_start(mirror, cache), _start(mirror, cache)]
    for p in procs:
        assert p.wait(timeout=300) == 0, p.stderr.read()
    reference = tmp_path / "single"
    prepare(mirror, reference, shard_size=1)
    assert cache_digest(cache) == cache_digest(reference)
