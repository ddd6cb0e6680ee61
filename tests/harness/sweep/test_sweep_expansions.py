"""Every run of every committed sweep file under every profile, pinned: name, run key and the full resolved
config (the grid as ``expand`` gives it, and the runs ``expand_runs`` dispatches, a study's included) must stay
byte-identical to ``data/expansions.json``, whatever shape the sweep and profile files take.

Regenerate (only when a change of run configs is intended, and say so):
``PYTHONPATH=$PWD python tests/harness/sweep/test_sweep_expansions.py``."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
FIXTURE = Path(__file__).parent / "data" / "expansions.json"
# Sweep files with profiles (tune_lr_warmup.yaml is an Optuna study file, not a sweep).
SWEEPS = ("attention_ablation", "lr_stability", "width_vs_depth")


def _spec_record(spec, workdir: Path) -> dict:
    record = {"label": spec.label, "key": spec.key, "config_hash": spec.config.config_hash(),
              "config": spec.config.model_dump(mode="json"), "tags": dict(spec.tags),
              "after": list(spec.after) if spec.after else None}
    # Study runs name the run they branch off by its absolute folder: pin it relative to the working folder.
    return json.loads(json.dumps(record).replace(str(workdir), "<workdir>"))


def expansions(workdir: Path) -> dict:
    """sweep -> profile -> {"runs": [...], "grid": [...] (only where it differs from the runs)}, expanded with
    ``workdir`` as the working folder (no finished lr scan there, so a scan study lists its scan runs)."""
    from harness.sweep.expand import expand, expand_runs, load_sweep

    here = Path.cwd()
    os.chdir(workdir)
    try:
        out: dict = {}
        for name in SWEEPS:
            path = ROOT / "sweeps" / f"{name}.yaml"
            sweep = load_sweep(path)
            out[name] = {}
            for profile in sorted(sweep.profiles):
                grid = expand(sweep, profile, source=str(path))
                runs, _ = expand_runs(sweep, profile, source=str(path))
                records = {"runs": [_spec_record(s, workdir) for s in runs]}
                if grid != runs:  # a study: the grid it is planned from, then the runs it dispatches
                    records["grid"] = [_spec_record(s, workdir) for s in grid]
                out[name][profile] = records
        return out
    finally:
        os.chdir(here)


def test_every_sweep_and_profile_expands_to_the_pinned_runs(tmp_path):
    pinned = json.loads(FIXTURE.read_text())
    now = expansions(tmp_path.resolve())
    assert sorted(now) == sorted(pinned)
    for sweep in pinned:
        assert sorted(now[sweep]) == sorted(pinned[sweep]), sweep
        for profile, pinned_runs in pinned[sweep].items():
            assert now[sweep][profile] == pinned_runs, (sweep, profile)
    # 3 + 9 (ablation), 2 + 2 (lr_stability), 5 + 15 + 15 + 20 + 25 (width_vs_depth: paper, paper_study, long,
    # mini, study; a study's are its scan or budget runs).
    assert sum(len(p["runs"]) for s in pinned.values() for p in s.values()) == 96


if __name__ == "__main__":
    import tempfile

    sys.path.insert(0, str(ROOT))
    with tempfile.TemporaryDirectory() as tmp:
        data = expansions(Path(tmp).resolve())
    FIXTURE.write_text(json.dumps(data, indent=0, sort_keys=True) + "\n")
    for sweep, profiles in data.items():
        print(sweep, {p: (len(v.get("grid", v["runs"])), len(v["runs"])) for p, v in profiles.items()})
