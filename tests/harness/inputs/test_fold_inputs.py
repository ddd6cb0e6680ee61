"""Fold inputs as users write them (AF3 JSON, FASTA) give the same tokens as the structure they describe."""

import json

import numpy as np
import pytest

from harness.data.constants import DNA, LIGAND, PROTEIN, RNA, STANDARD_RESIDUES, THREE_TO_ONE
from harness.data.example import build_example
from harness.data.parse import read_structure
from harness.data.starter import starter_dir
from harness.errors import ConfigError
from harness.inputs import FoldInputError, assemble, read_fold_jobs

STARTER = starter_dir()
_KIND = {PROTEIN: "protein", DNA: "dna", RNA: "rna"}


def _one_letter(names, mol_type):
    if mol_type == PROTEIN:
        return "".join(THREE_TO_ONE.get(n, "X") for n in names)
    return "".join(n[-1] if n in STANDARD_RESIDUES else "N" for n in names)  # DA -> A, A -> A


def _modifications(names, mol_type):
    """Non-standard residues of the entry as AF3 modifications (they replace the one-letter placeholder)."""
    nonstandard = [(i + 1, n) for i, n in enumerate(names) if n not in STANDARD_RESIDUES]
    if mol_type == PROTEIN:
        return [{"ptmType": n, "ptmPosition": i} for i, n in nonstandard]
    return [{"modificationType": n, "basePosition": i} for i, n in nonstandard]


def _af3_json_of(entry: str, tmp_path, **extra) -> dict:
    """The AF3 input JSON that describes a starter entry: its chains in file order, polymers by author id (the
    MSA folder's names), ligands by label id (they share their polymer's author id)."""
    structure = read_structure(STARTER / "structures" / f"{entry}.cif.gz")
    sequences = []
    for chain in structure.chains:
        if chain.mol_type == LIGAND:
            sequences.append({"ligand": {"id": chain.label_id, "ccdCodes": chain.sequence}})
        else:
            seq = _one_letter(chain.sequence, chain.mol_type)
            mods = _modifications(chain.sequence, chain.mol_type)
            sequences.append({_KIND[chain.mol_type]: {"id": chain.auth_id, "sequence": seq, "modifications": mods}})
    return {"dialect": "alphafold3", "version": 2, "name": entry, "modelSeeds": [7], "sequences": sequences} | extra


def _write(tmp_path, doc, name="job.json"):
    path = tmp_path / name
    path.write_text(json.dumps(doc) if not isinstance(doc, str) else doc)
    return path


@pytest.mark.parametrize("entry", ["2q2k", "1y57"])
def test_af3_json_of_an_entry_tokenises_like_the_entry(entry, tmp_path):
    """Protein-DNA with real MSAs (2q2k) and protein-ligand (1y57): every token, atom, reference conformer,
    bond and MSA row equals what `harness data` builds from the mmCIF file."""
    msa_dir = STARTER / "msas"
    _, reference, _ = build_example(STARTER / "structures" / f"{entry}.cif.gz", msa_dir)
    job = read_fold_jobs(_write(tmp_path, _af3_json_of(entry, tmp_path)))[0]
    built = assemble(job, msa_dir=msa_dir)
    ours, ref = built.tokens.arrays, reference.arrays
    for key in ("restype", "residue_index", "asym_id", "entity_id", "sym_id", "mol_type", "atom_to_token",
                "ref_pos", "ref_element", "ref_charge", "ref_atom_name_chars", "center_atom", "disto_atom", "msa",
                "deletions", "profile"):
        np.testing.assert_array_equal(ours[key], ref[key], err_msg=key)
    assert not ours["gt_atom_mask"].any()  # nothing resolved: the model sees no coordinates
    assert job.seeds == [7]
    if entry == "2q2k":
        assert ours["msa"].shape[0] > 1  # the real alignments were found by chain id
        assert built.msa_sources["A"].startswith("bfd_uniclust_hits")


def test_every_entity_kind_modifications_smiles_and_bonds(tmp_path):
    doc = {
        "dialect": "alphafold3", "version": 1, "name": "demo", "modelSeeds": [1],
        "sequences": [
            {"protein": {"id": ["A", "B"], "sequence": "MKTAYIAKQR",
                         "modifications": [{"ptmType": "SEP", "ptmPosition": 5}]}},
            {"dna": {"id": "C", "sequence": "GATTACA"}},
            {"rna": {"id": "D", "sequence": "GGCU", "modifications": [{"modificationType": "PSU",
                                                                          "basePosition": 4}]}},
            {"ligand": {"id": "E", "ccdCodes": ["ATP"]}},
            {"ligand": {"id": "F", "smiles": "CC(=O)Oc1ccccc1C(=O)O"}},  # aspirin: 13 heavy atoms
        ],
        "bondedAtomPairs": [[["A", 1, "N"], ["F", 1, "C1"]]],
    }
    built = assemble(read_fold_jobs(_write(tmp_path, doc))[0])
    a = built.tokens.arrays
    chains = {c["auth_id"]: c for c in built.tokens.chains}
    sizes = {cid: c["token_end"] - c["token_start"] for cid, c in chains.items()}
    # SEP is tokenised per atom (10 heavy atoms without OXT); PSU likewise (20 without OP3); ATP: 31.
    assert sizes == {"A": 9 + 10, "B": 9 + 10, "C": 7, "D": 3 + 20, "E": 31, "F": 13}
    assert chains["A"]["entity_id"] == chains["B"]["entity_id"] != chains["C"]["entity_id"]
    assert a["sym_id"][chains["B"]["token_start"]] == 2
    lig = slice(chains["F"]["token_start"], chains["F"]["token_end"])
    atoms = np.flatnonzero(np.isin(a["atom_to_token"], np.arange(a["restype"].size)[lig]))
    pos = a["ref_pos"][atoms]
    d = np.linalg.norm(pos[:, None] - pos[None], axis=-1)
    nearest = np.sort(d + 100 * np.eye(len(pos)), axis=1)[:, 0]
    assert np.all((nearest > 1.15) & (nearest < 1.6))  # covalent bond lengths: a real 3D conformer
    bonds = {tuple(sorted(b)) for b in a["token_bonds"].tolist()}
    assert (chains["A"]["token_start"], chains["F"]["token_start"]) in bonds


def test_fasta_boltz_and_plain(tmp_path):
    boltz = _write(tmp_path, ">A|protein|empty\nMKTAYIAKQR\n>B|protein\nMKTAYIAKQR\n>C|ccd\nATP\n>D|smiles\nCCO\n",
                   "boltz.fasta")
    job = read_fold_jobs(boltz)[0]
    assert [(e.kind, e.chain_ids) for e in job.entities] == [("protein", ["A"]), ("protein", ["B"]),
                                                            ("ligand", ["C"]), ("ligand", ["D"])]
    assert job.entities[0].msa_a3m == "" and job.entities[1].msa_a3m is None
    plain = _write(tmp_path, ">complex\nMKTAYIAKQR:MKTAYIAKQR:GGSG\n", "plain.fa")
    job = read_fold_jobs(plain)[0]
    assert job.name == "plain" and [e.chain_ids for e in job.entities] == [["A", "B"], ["C"]]
    assert assemble(job).tokens.arrays["restype"].size == 24


@pytest.mark.parametrize(("doc", "message"), [
    ({"sequnces": []}, "sequnces"),
    ({"sequences": [{"protein": {"id": "A", "sequence": "MKV", "modifications": [
        {"ptmType": "SEP", "ptmPosition": 9}]}}]}, "position 9 is past the sequence end"),
    ({"sequences": [{"ligand": {"id": "A", "ccdCodes": ["ZZZZZ"]}}]}, "'ZZZZZ' is not in the Chemical"),
    ({"sequences": [{"ligand": {"id": "A", "smiles": "C1CC"}}]}, "cannot be parsed by RDKit"),
    ({"sequences": [{"protein": {"id": "A", "sequence": "MKV"}}, {"dna": {"id": "A", "sequence": "GA"}}]},
     "chain id 'A' is used twice"),
    ({"sequences": [{"protein": {"id": "A", "sequence": "MKV"}}],
      "bondedAtomPairs": [[["A", 1, "N"], ["B", 1, "C1"]]]}, "names chain 'B'"),
    ({"sequences": [{"protein": {"id": "A", "sequence": "MKV"}}, {"ligand": {"id": "B", "ccdCodes": ["ATP"]}}],
      "bondedAtomPairs": [[["A", 1, "N"], ["B", 1, "XX9"]]]}, "ATP has no heavy atom 'XX9'"),
    ({"sequences": [{"protein": {"id": "A", "sequence": "MKV", "unpairedMsa": ">q\nMKW\n"}}]},
     "chain A MSA: query of length 3 does not match"),
    ({"sequences": [{"protein": {"id": "A", "sequence": "MKV"}}], "userCCD": "data_X"}, "userCCD"),
])
def test_bad_inputs_name_what_is_wrong(doc, message, tmp_path):
    base = {"dialect": "alphafold3", "version": 1, "name": "bad", "modelSeeds": [1]}
    path = _write(tmp_path, base | doc)
    with pytest.raises((FoldInputError, ConfigError), match=message) as info:
        assemble(read_fold_jobs(path)[0])
    assert str(path) in str(info.value)


def test_unreadable_and_server_dialect(tmp_path):
    with pytest.raises(FoldInputError, match="not a readable JSON"):
        read_fold_jobs(_write(tmp_path, "{not json"))
    with pytest.raises(FoldInputError, match="AlphaFold Server dialect"):
        read_fold_jobs(_write(tmp_path, [{"dialect": "alphafoldserver", "name": "x"}]))
    with pytest.raises(FoldInputError, match="entity type 'protien'"):
        read_fold_jobs(_write(tmp_path, ">A|protien\nMKV\n", "x.fasta"))
