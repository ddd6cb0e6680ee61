"""Symmetry of chemically equivalent atoms: side-chain naming swaps and ligand graph automorphisms."""

from __future__ import annotations

from collections.abc import Iterator

import networkx as nx
import numpy as np
from networkx.algorithms.isomorphism import GraphMatcher

# Atoms whose names are interchangeable because the side chain is symmetric (docs/DESIGN.md §3). Each entry lists the
# name pairs swapped together; PHE/TYR ring flips swap both the δ and the ε pair.
SYMMETRIC_SIDE_CHAINS: dict[str, tuple[tuple[str, str], ...]] = {
    "ASP": (("OD1", "OD2"),),
    "GLU": (("OE1", "OE2"),),
    "LEU": (("CD1", "CD2"),),
    "VAL": (("CG1", "CG2"),),
    "ARG": (("NH1", "NH2"),),
    "PHE": (("CD1", "CD2"), ("CE1", "CE2")),
    "TYR": (("CD1", "CD2"), ("CE1", "CE2")),
}


def side_chain_swaps(res_name: np.ndarray, atom_name: np.ndarray, residue_key: np.ndarray) -> list[np.ndarray]:
    """Index permutations, one per swappable residue, for atoms described by (M,) annotation arrays.

    Returns a list of (2, k) int arrays: row 0 the atom indices, row 1 the indices they swap with. Only
    residues whose every swapped atom is present in the arrays are listed.
    """
    swaps: list[np.ndarray] = []
    candidates = np.flatnonzero(np.isin(res_name, list(SYMMETRIC_SIDE_CHAINS)))
    by_residue: dict[int, dict[str, int]] = {}
    for i in candidates:
        by_residue.setdefault(int(residue_key[i]), {})[str(atom_name[i])] = int(i)
    for names in by_residue.values():
        first = names[next(iter(names))]
        pairs = SYMMETRIC_SIDE_CHAINS[str(res_name[first])]
        if not all(a in names and b in names for a, b in pairs):
            continue
        src = [names[a] for a, b in pairs] + [names[b] for a, b in pairs]
        dst = [names[b] for a, b in pairs] + [names[a] for a, b in pairs]
        swaps.append(np.array([src, dst], dtype=np.int64))
    return swaps


def molecular_graph(elements: np.ndarray, bonds: np.ndarray) -> nx.Graph:
    """Graph: one node per atom (attribute ``element``), one edge per (i, j) row of ``bonds`` (K, 2)."""
    graph = nx.Graph()
    for i, element in enumerate(elements):
        graph.add_node(i, element=str(element))
    graph.add_edges_from((int(i), int(j)) for i, j in np.asarray(bonds).reshape(-1, 2))
    return graph


def automorphisms(graph: nx.Graph, max_count: int = 10_000) -> Iterator[np.ndarray]:
    """Element-preserving automorphisms of ``graph`` as permutations p (n,): atom i maps onto atom p[i].

    Stops after ``max_count`` (highly symmetric ligands, e.g. fullerenes, have astronomically many).
    """
    matcher = GraphMatcher(graph, graph, node_match=lambda a, b: a["element"] == b["element"])
    order = sorted(graph.nodes)
    for count, mapping in enumerate(matcher.isomorphisms_iter()):
        if count >= max_count:
            return
        yield np.array([mapping[i] for i in order], dtype=np.int64)
