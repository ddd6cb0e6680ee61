"""Data-pipeline throughput: parse + featurise the starter set, and cropped examples/s per worker from the cache.

Usage: ``python benchmarks/bench_data.py [--crop 384] [--draws 300] [--workers 0 1 2]``. Prints one JSON line
per measurement; the results table lives in BENCHMARKS.md ("Data").
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
from torch.utils.data import DataLoader

from harness.data.cache import prepare
from harness.data.ccd import component
from harness.data.collate import collate
from harness.data.dataset import CachedDataset, MixtureDataset
from harness.data.mixing import MixtureSampler
from harness.data.parse import read_structure
from harness.data.starter import load_manifest, starter_dir, starter_splits
from harness.data.tokenize import tokenize


def bench_parse(entries) -> dict:
    component("ALA")  # load the CCD once, outside the timing (a one-off ~2 s per process)
    t0 = time.perf_counter()
    tokens = 0
    for e in entries:
        tokens += tokenize(read_structure(starter_dir() / e.file)).n_tokens
    dt = time.perf_counter() - t0
    return {"what": "parse+tokenise", "entries": len(entries), "seconds": round(dt, 2),
            "entries_per_s": round(len(entries) / dt, 1), "tokens_per_s": round(tokens / dt)}


def bench_loader(cache: Path, crop: int, draws: int, workers: int) -> dict:
    ds = CachedDataset(cache, split="train", crop_size=crop, max_atoms=crop * 12,
                       cropper={"contiguous": 0.2, "spatial": 0.4, "spatial_interface": 0.4}, max_msa_rows=128)
    sampler = MixtureSampler([len(ds)], [1.0], [ds.clusters], draws, seed=0)
    loader = DataLoader(MixtureDataset({"pdb": ds}), batch_size=1, sampler=sampler, collate_fn=collate,
                        num_workers=workers, persistent_workers=False)
    it = iter(loader)
    next(it)  # worker start-up excluded
    t0 = time.perf_counter()
    n = 1
    sizes = []
    for batch in it:
        n += 1
        sizes.append(int(batch["token_mask"].sum()))
    dt = time.perf_counter() - t0
    rate = (n - 1) / dt
    return {"what": "cached crops", "crop": crop, "workers": workers, "examples": n - 1,
            "examples_per_s": round(rate, 1), "per_worker": round(rate / max(workers, 1), 1),
            "mean_tokens": round(float(np.mean(sizes)), 1)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--crop", type=int, default=384)
    parser.add_argument("--draws", type=int, default=300)
    parser.add_argument("--workers", type=int, nargs="+", default=[0, 1, 2])
    args = parser.parse_args()
    entries = load_manifest()
    print(json.dumps(bench_parse(entries)))
    with tempfile.TemporaryDirectory() as tmp:
        cache = Path(tmp) / "cache"
        t0 = time.perf_counter()
        prepare(starter_dir(), cache, msa_dir=starter_dir() / "msas", splits=starter_splits())
        print(json.dumps({"what": "prepare (parse+tokenise+MSA+compress, 1 process)",
                          "seconds": round(time.perf_counter() - t0, 1)}))
        for w in args.workers:
            print(json.dumps(bench_loader(cache, args.crop, args.draws, w)))


if __name__ == "__main__":
    main()
