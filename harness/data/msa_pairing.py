"""Pairing of multimer MSAs by species (AF-Multimer / AF3 SI §2.3): rows of different entities whose hits
come from the same species are put on one MSA row, so co-evolution across chains is visible.

Species come from UniProt-style headers: the taxonomy id ``OX=9606`` when present, else the mnemonic of
``sp|P69905|HBA_HUMAN`` / ``tr|A0A0|A0A0_MOUSE`` (``HUMAN``). Rows without a species are never paired.
"""

from __future__ import annotations

import re

_TAXID = re.compile(r"\bOX=(\d+)")
_MNEMONIC = re.compile(r"^(?:sp|tr)\|[^|]+\|[A-Z0-9]+_([A-Z0-9]{1,5})\b")


def species_of(header: str) -> str:
    """``"taxid:9606"``, ``"mnemonic:HUMAN"`` or ``""`` for one a3m header (without ``>``)."""
    hit = _TAXID.search(header)
    if hit:
        return f"taxid:{hit.group(1)}"
    hit = _MNEMONIC.match(header)
    return f"mnemonic:{hit.group(1)}" if hit else ""


def paired_rows(species: dict[int, list[str]]) -> list[dict[int, int]]:
    """Paired MSA rows: each a dict entity -> row index into that entity's MSA.

    For every species found in at least two entities, the k-th hit of that species in each entity is paired
    (k < the smallest count among those entities); entities without the species get a gap there. Species
    are ordered by their best (lowest) row across entities, so the closest homologues come first. Row 0
    (the query) is never paired; a single entity pairs with nothing.
    """
    if len(species) < 2:
        return []
    hits: dict[str, dict[int, list[int]]] = {}
    for entity, rows in species.items():
        for i, s in enumerate(rows):
            if i and s:
                hits.setdefault(s, {}).setdefault(entity, []).append(i)
    shared = [(min(r[0] for r in per.values()), s) for s, per in hits.items() if len(per) >= 2]
    out = []
    for _, s in sorted(shared):
        per = hits[s]
        for k in range(min(len(r) for r in per.values())):
            out.append({entity: rows[k] for entity, rows in per.items()})
    return out
