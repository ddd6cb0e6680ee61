"""Structure metrics: lDDT, DockQ v2, ligand RMSD / lDDT-PLI, with the chain/residue/atom pairing they
share."""
