"""Fixtures for the analysis tests: real PDB entries (tests/analysis/data/README.md) and reference tools."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from analysis.structure_io import read_structure

DATA = Path(__file__).parent / "data"
CACHE = Path(os.environ.get("SEEDFOLD_CACHE", Path.home() / ".cache" / "seedfold-harness"))
DOCKQ_VENV = CACHE / "dockq-venv"


@pytest.fixture(scope="session")
def data_dir() -> Path:
    return DATA


@pytest.fixture(scope="session")
def load():
    """load("1ubq") → heavy-atom AtomArray of the bundled entry (a fresh copy each call)."""
    cache = {}

    def _load(entry: str):
        if entry not in cache:
            cache[entry] = read_structure(DATA / f"{entry}.cif.gz")
        return cache[entry].copy()

    return _load


def _venv_python(venv: Path) -> Path:
    return venv / ("Scripts/python.exe" if sys.platform == "win32" else "bin/python")


@pytest.fixture(scope="session")
def dockq_exe() -> Path:
    """The DockQ 2.1.3 command in an isolated venv (it needs numpy < 2), created once and cached."""
    exe = DOCKQ_VENV / "bin" / "DockQ"
    if not exe.exists():
        shutil.rmtree(DOCKQ_VENV, ignore_errors=True)
        DOCKQ_VENV.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run([sys.executable, "-m", "venv", str(DOCKQ_VENV)], check=True)
        install = subprocess.run(
            [str(_venv_python(DOCKQ_VENV)), "-m", "pip", "install", "-q", "numpy<2", "DockQ==2.1.3"],
            capture_output=True,
            text=True,
            timeout=900,
        )
        if install.returncode != 0 or not exe.exists():
            pytest.skip(f"could not install the DockQ reference: {install.stderr[-500:]}")
    return exe


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(20251125)
