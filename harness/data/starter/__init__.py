"""The bundled starter set: real PDB entries (CC0) with their MSAs, shipped inside the package.

``starter_dir()`` is the folder (``structures/``, ``msas/``, ``manifest.json``); ``load_manifest()`` its
entries. ``harness data build-starter`` regenerates it from pinned registry packages (``build.py``).
"""

from __future__ import annotations

import json
from pathlib import Path

from pydantic import BaseModel, ConfigDict

from harness.data.errors import DataPathError


class StarterEntry(BaseModel):
    """One manifest record (see ``build.py`` for how each field is produced)."""

    model_config = ConfigDict(extra="allow", frozen=True)

    entry_id: str
    pdb_id: str
    file: str
    sha256: str
    split: str
    categories: list[str]
    molecule_types: list[str]
    chains: list[dict]
    ligands: list[str]
    msas: dict[str, list[dict]]
    source_package: str
    source_version: str
    licence: str


def starter_dir() -> Path:
    """Folder of the bundled starter set."""
    return Path(__file__).resolve().parent


def load_manifest(directory: str | Path | None = None) -> list[StarterEntry]:
    """Entries of the starter manifest (the bundled one unless ``directory`` is given)."""
    path = Path(directory or starter_dir()) / "manifest.json"
    if not path.is_file():
        raise DataPathError(path, "starter manifest missing; run `harness data build-starter`")
    return [StarterEntry(**e) for e in json.loads(path.read_text())["entries"]]


def starter_splits(directory: str | Path | None = None) -> dict[str, str]:
    """entry id -> ``"train"``/``"val"`` as fixed in the manifest."""
    return {e.entry_id: e.split for e in load_manifest(directory)}
