"""Bad inputs: each is skipped with a recorded reason and never crashes preparation; a wrong path is an error."""

from __future__ import annotations

import gzip
import json
import shutil

import pytest

from harness.data.cache import REJECTS, load_index, prepare
from harness.data.errors import (
    DataPathError,
    EmptyChainError,
    MSAError,
    StructureParseError,
    UnknownCCDError,
)
from harness.data.parse import read_structure
from harness.data.starter import starter_dir
from harness.data.tokenize import tokenize


def _cif_text(structures, name):
    return gzip.decompress((structures / f"{name}.cif.gz").read_bytes()).decode()


@pytest.fixture
def bad_folder(tmp_path, structures):
    src = tmp_path / "src"
    src.mkdir()
    shutil.copy(structures / "1ubq.cif.gz", src)  # the one good entry
    good = (structures / "1a8q.cif.gz").read_bytes()
    (src / "trunc.cif.gz").write_bytes(good[: len(good) // 3])
    (src / "empty.cif").write_bytes(b"")
    (src / "notes.pdb").write_text("these are my lab notes, not coordinates\n")
    (src / "junk.cif").write_text("this is not\nan mmCIF file {{{\n")
    (src / "binary.cif").write_bytes(bytes(range(256)) * 16)
    header = _cif_text(structures, "1ubq").split("_atom_site.group_PDB")[0].rsplit("loop_", 1)[0]
    (src / "noatoms.cif").write_text(header)  # a valid mmCIF block without any atom_site
    text = _cif_text(structures, "1pzp")
    (src / "unknownccd.cif").write_text(text.replace(" FTA ", " ZZZZZ "))
    # 4i6p with every atom of chain B at zero occupancy: chain B has no resolved atom.
    lines = []
    for line in _cif_text(structures, "4i6p").splitlines():
        fields = line.split()
        if line.startswith("ATOM") and fields[6] == "B":
            line = line.replace(" 1.00 ", " 0.00 ", 1) if " 1.00 " in line else line
        lines.append(line)
    (src / "emptychain.cif").write_text("\n".join(lines) + "\n")
    return src


def test_each_bad_input_raises_its_typed_error(bad_folder):
    with pytest.raises(StructureParseError):
        read_structure(bad_folder / "trunc.cif.gz")
    with pytest.raises(StructureParseError, match="empty"):
        read_structure(bad_folder / "empty.cif")
    with pytest.raises(StructureParseError):
        read_structure(bad_folder / "notes.pdb")
    with pytest.raises(StructureParseError):
        read_structure(bad_folder / "junk.cif")
    with pytest.raises(StructureParseError):
        read_structure(bad_folder / "binary.cif")
    with pytest.raises(StructureParseError, match="no atoms"):
        read_structure(bad_folder / "noatoms.cif")
    with pytest.raises(UnknownCCDError, match="ZZZZZ"):
        tokenize(read_structure(bad_folder / "unknownccd.cif"))
    with pytest.raises(EmptyChainError, match="chain B"):
        read_structure(bad_folder / "emptychain.cif")
    with pytest.raises(DataPathError):
        read_structure(bad_folder / "does_not_exist.cif")


def test_prepare_skips_bad_inputs_and_records_reasons(bad_folder, tmp_path):
    report = prepare(bad_folder, tmp_path / "cache")
    assert [e["entry_id"] for e in report.kept] == ["1ubq"]
    rejects = json.loads((tmp_path / "cache" / REJECTS).read_text())
    kinds = {r["path"].rsplit("/", 1)[1]: r["kind"] for r in rejects}
    assert kinds == {
        "trunc.cif.gz": "parse", "empty.cif": "parse", "notes.pdb": "parse", "junk.cif": "parse",
        "unknownccd.cif": "unknown_ccd", "emptychain.cif": "empty_chain", "binary.cif": "parse",
        "noatoms.cif": "parse",
    }
    assert all(r["reason"] for r in rejects)
    assert len(load_index(tmp_path / "cache")["entries"]) == 1


def test_msa_query_mismatch_is_recorded_and_entry_kept_query_only(tmp_path, structures):
    src = tmp_path / "src"
    src.mkdir()
    shutil.copy(structures / "2q2k.cif.gz", src)
    msas = tmp_path / "msas"
    shutil.copytree(starter_dir() / "msas", msas)
    for chain in "AB":  # both copies of the entity, so no valid MSA remains for it
        a3m = msas / f"2q2k_{chain}" / "bfd_uniclust_hits.a3m.gz"
        text = gzip.decompress(a3m.read_bytes()).decode().split("\n")
        text[1] = "W" + text[1][1:]  # the query no longer matches the chain's sequence
        a3m.write_bytes(gzip.compress("\n".join(text).encode()))
    report = prepare(src, tmp_path / "cache", msa_dir=msas)
    assert [e["entry_id"] for e in report.kept] == ["2q2k"]
    assert [r["kind"] for r in report.rejects] == ["msa", "msa"]
    assert "does not match" in report.rejects[0]["reason"]
    assert report.kept[0]["msa_depth"] == 1


def test_wrong_paths_are_clear_errors(tmp_path):
    with pytest.raises(DataPathError, match="expected a folder"):
        prepare(tmp_path / "missing", tmp_path / "cache")
    (tmp_path / "emptydir").mkdir()
    with pytest.raises(DataPathError, match="no structure files"):
        prepare(tmp_path / "emptydir", tmp_path / "cache")
    with pytest.raises(DataPathError, match="not a feature cache"):
        load_index(tmp_path / "emptydir")
    with pytest.raises(MSAError):
        from harness.data.msa import read_msa

        (tmp_path / "x.a3m").write_text("")
        read_msa(tmp_path / "x.a3m")
