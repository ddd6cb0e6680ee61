"""``benchmarks/bench_predict_memory.py``: what chunking saves at inference, measured as the resident set a
fresh process adds during one call (the benchmark's own measurement, at a size a test can afford)."""

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "benchmarks"))
import bench_predict_memory  # noqa: E402


def test_chunking_cuts_the_pairformer_blocks_inference_peak():
    n, c_z = 192, 64
    full = bench_predict_memory.measure("pairformer_block", n, c_z, None, threads=1)
    chunked = bench_predict_memory.measure("pairformer_block", n, c_z, 24, threads=1)
    z = full["z_bytes"]
    # Unchunked, the pair transition alone holds 12 z-sized tensors; chunked, the block holds z's successor,
    # one update, the normalised z and the multiplication's buffer: a handful of z.
    assert full["peak_extra_bytes"] > 12 * z
    assert chunked["peak_extra_bytes"] < 8 * z
    assert chunked["peak_extra_bytes"] < full["peak_extra_bytes"] / 2
