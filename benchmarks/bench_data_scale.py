"""Preparation at scale: peak RSS against the number of entries, entries/s per core, SIGKILL + resume, SLURM.

The starter set's real files are replicated under new ids (symlinks, PDB-mirror divided layout ``ab/<id>.cif.gz``;
MSAs of 2q2k linked for every replica of it) to reach a few thousand entries: volume only, same content.

Usage::

    python benchmarks/bench_data_scale.py --sizes 250 1000 2000 [--kill 1000] [--slurm 232] [--work DIR]

Each preparation runs in a fresh process under ``/usr/bin/time -v`` (1 worker process, so the peak RSS is the
preparation's own). Prints one JSON line per measurement; the table lives in BENCHMARKS.md ("Data at scale").
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

from harness.data.parse import entry_id_of
from harness.data.starter import starter_dir

PREPARE = """
import sys
from harness.data.cache import prepare
from harness.data.filters import FilterConfig
executor = sys.argv[4] if len(sys.argv) > 4 else "local"
prepare(sys.argv[1], sys.argv[2], msa_dir=sys.argv[3], filters=FilterConfig.af3(release_date_max=None),
        shard_size=32, executor=executor, slurm={"array_tasks": 4, "cpus_per_task": 1, "mem_gb": 3},
        progress=False)
"""


def mirror(n: int, root: Path) -> tuple[Path, Path]:
    """``n`` entries in the divided layout (``root/pdb/ab/<id>.<ext>``) + MSA links, replicating the starter."""
    src, msas = root / "pdb", root / "msas"
    if src.is_dir():
        return src, msas
    files = sorted((starter_dir() / "structures").iterdir())
    msas.mkdir(parents=True)
    for i in range(n):
        f = files[i % len(files)]
        eid = entry_id_of(f)
        new_id = f"{i // len(files):03d}{eid}"
        suffix = f.name[len(f.name.split(".")[0]):]
        target = src / new_id[1:3] / f"{new_id}{suffix}"
        target.parent.mkdir(parents=True, exist_ok=True)
        target.symlink_to(f)
        for msa in (starter_dir() / "msas").glob(f"{eid}_*"):
            (msas / f"{new_id}_{msa.name.split('_', 1)[1]}").symlink_to(msa)
    return src, msas


def run_prepare(src: Path, cache: Path, msas: Path, executor: str = "local") -> dict:
    cmd = ["/usr/bin/time", "-v", sys.executable, "-c", PREPARE, str(src), str(cache), str(msas), executor]
    t0 = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - t0
    if done.returncode != 0:
        raise RuntimeError(done.stderr[-3000:])

    def field(name: str) -> float:
        return float(re.search(rf"{name}: ([\d.]+)", done.stderr).group(1))

    cpu = field(r"User time \(seconds\)") + field(r"System time \(seconds\)")
    return {"wall_s": round(wall, 1), "cpu_s": round(cpu, 1),
            "peak_rss_mb": round(field(r"Maximum resident set size \(kbytes\)") / 1024)}


def digest(cache: Path) -> str:
    from harness.data.cache import cache_digest

    return cache_digest(cache)


def kill_and_resume(src: Path, msas: Path, work: Path, reference: Path) -> dict:
    """SIGKILL a preparation once half of its shards are written, rerun it, compare with ``reference``."""
    cache = work / "killed"
    total = len(json.loads((reference / "plan.json").read_text())["shards"])
    proc = subprocess.Popen([sys.executable, "-c", PREPARE, str(src), str(cache), str(msas)],
                            start_new_session=True)
    while len(list((cache / "shards").glob("*.json"))) < total // 2:
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    done_at_kill = len(list((cache / "shards").glob("*.json")))
    tmp_left = len(list((cache / "shards").glob(".*tmp-*")))
    resumed = run_prepare(src, cache, msas)
    return {"what": "sigkill+resume", "shards": total, "done_at_kill": done_at_kill, "tmp_files_left": tmp_left,
            "resume": resumed, "equal_to_uninterrupted": digest(cache) == digest(reference)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", type=int, nargs="+", default=[250, 1000, 2000])
    ap.add_argument("--kill", type=int, default=None, help="size of the SIGKILL test (one of --sizes)")
    ap.add_argument("--slurm", type=int, default=None, help="size of the SLURM job-array test (one of --sizes)")
    ap.add_argument("--work", type=Path, default=Path("/tmp/bench_data_scale"))
    args = ap.parse_args()
    for n in args.sizes:
        src, msas = mirror(n, args.work / f"in{n}")
        cache = args.work / f"cache{n}"
        result = run_prepare(src, cache, msas)
        counts = json.loads((cache / "manifest.json").read_text())["counts"]
        print(json.dumps({"what": "prepare", "entries_in": n, "kept": counts["entries"], "rejects": counts["rejects"],
                          "shards": counts["shards"], **result,
                          "entries_per_cpu_s": round(n / result["cpu_s"], 2)}), flush=True)
        if n == args.kill:
            print(json.dumps(kill_and_resume(src, msas, args.work, cache)), flush=True)
        if n == args.slurm:
            slurm_cache = args.work / f"slurm{n}"
            result = run_prepare(src, slurm_cache, msas, executor="slurm")
            print(json.dumps({"what": "slurm job array", "entries_in": n, **result,
                              "equal_to_local": digest(slurm_cache) == digest(cache)}), flush=True)


if __name__ == "__main__":
    main()
